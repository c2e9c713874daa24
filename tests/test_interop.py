"""Tests for tinyrnn.interop: weights to and from PyTorch and Keras.

Each converter is checked three ways: the layout rule itself on known
entries, a round trip tinyrnn -> torch -> tinyrnn that must be exact, and
the outputs of the torch module against ours in float64.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy
import pytest
from helpers import assert_close, randomize_params

from tinyrnn import backend, interop
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    Dense,
    Flatten,
    LNSimpleRNNCell,
    PeepholeLSTMCell,
    SimpleRNN,
    TimeDistributed,
)

try:
    from tinyrnn.layers.convolutional import Conv1D
except ImportError:  # written separately; its converter is tested when it exists
    Conv1D = None

B, T, D, H = 2, 5, 3, 4
ROOT = pathlib.Path(__file__).resolve().parents[1]
needs_conv = pytest.mark.skipif(Conv1D is None, reason="tinyrnn.layers.convolutional.Conv1D not available")

LAYERS = {
    "SimpleRNN": lambda: SimpleRNN(H, return_sequences=True),
    "SimpleRNN(relu)": lambda: SimpleRNN(H, activation="relu", return_sequences=True),
    "SimpleRNN(no bias)": lambda: SimpleRNN(H, use_bias=False, return_sequences=True),
    "LSTM": lambda: LSTM(H, return_sequences=True),
    "LSTM(no bias)": lambda: LSTM(H, use_bias=False, return_sequences=True),
    "GRU": lambda: GRU(H, return_sequences=True),
    "GRU(no bias)": lambda: GRU(H, use_bias=False, return_sequences=True),
    "Dense": lambda: Dense(H),
    "Dense(tanh)": lambda: Dense(H, activation="tanh"),
    "Dense(no bias)": lambda: Dense(H, use_bias=False),
}
if Conv1D is not None:
    LAYERS.update({
        "Conv1D(valid)": lambda: Conv1D(H, 2),
        "Conv1D(same, relu)": lambda: Conv1D(H, 3, padding="same", activation="relu"),
        "Conv1D(causal, dilated)": lambda: Conv1D(H, 2, padding="causal", dilation_rate=2),
        "Conv1D(strided)": lambda: Conv1D(H, 2, strides=2, use_bias=False),
    })


def inputs(seed=0):
    return numpy.random.default_rng(seed).normal(size=(B, T, D))


def built(name, seed=3, dtype="float64"):
    with backend.float_precision(dtype):
        layer = LAYERS[name]()
        layer.build((None, None, D) if not name.startswith("Dense") else (None, D))
    randomize_params(layer, seed=seed)
    return layer


def run_torch(module, layer, x):
    """The torch module on our (B, T, D) input, as NumPy in our output layout."""
    torch = pytest.importorskip("torch")
    xt = torch.from_numpy(x)
    if isinstance(layer, Dense):
        return module(xt).detach().numpy()
    if Conv1D is not None and isinstance(layer, Conv1D):
        return module(xt.transpose(1, 2)).transpose(1, 2).detach().numpy()   # channels first
    return module(xt)[0].detach().numpy()                                    # (all h_t, h_n)


def x_for(name, seed=0):
    x = inputs(seed)
    return x[:, 0] if name.startswith("Dense") else x


# --- the layout rules (NumPy only) ------------------------------------------------------------


def test_reorder_gates_swaps_blocks_not_contents():
    a = numpy.arange(2 * 3 * 2).reshape(2, 6)                 # 3 gates of width 2
    b = interop.reorder_gates(a, ("z", "r", "h"), ("r", "z", "h"))
    numpy.testing.assert_array_equal(b, a[:, [2, 3, 0, 1, 4, 5]])
    numpy.testing.assert_array_equal(interop.reorder_gates(b, ("r", "z", "h"), ("z", "r", "h")), a)


def test_gru_layout_by_hand():
    layer = GRU(H)
    layer.build((None, None, D))
    randomize_params(layer)
    W, U, bias = (backend.to_numpy(layer.params[k]) for k in ("kernel", "recurrent_kernel", "bias"))
    sd = interop.keras_to_torch_weights(layer)
    assert sd["weight_ih_l0"].shape == (3 * H, D) and sd["weight_hh_l0"].shape == (3 * H, H)
    z, r, h = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)        # Keras: z r h
    tr, tz, tn = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)     # torch: r z n
    for keras_gate, torch_gate in ((z, tz), (r, tr), (h, tn)):
        numpy.testing.assert_array_equal(sd["weight_ih_l0"][torch_gate], W[:, keras_gate].T)
        numpy.testing.assert_array_equal(sd["weight_hh_l0"][torch_gate], U[:, keras_gate].T)
        numpy.testing.assert_array_equal(sd["bias_ih_l0"][torch_gate], bias[0, keras_gate])
        numpy.testing.assert_array_equal(sd["bias_hh_l0"][torch_gate], bias[1, keras_gate])


def test_lstm_layout_by_hand():
    layer = LSTM(H)
    layer.build((None, None, D))
    randomize_params(layer)
    W, bias = backend.to_numpy(layer.params["kernel"]), backend.to_numpy(layer.params["bias"])
    sd = interop.keras_to_torch_weights(layer)
    numpy.testing.assert_array_equal(sd["weight_ih_l0"], W.T)           # same gate order i f c/g o
    numpy.testing.assert_array_equal(sd["bias_ih_l0"], bias)
    numpy.testing.assert_array_equal(sd["bias_hh_l0"], numpy.zeros(4 * H))
    merged = interop.torch_to_keras_weights(layer, {**sd, "bias_ih_l0": sd["bias_ih_l0"] - 1.0,
                                                    "bias_hh_l0": numpy.ones(4 * H)})
    assert_close(merged[2], bias, atol=1e-7, name="bias = bias_ih + bias_hh")


def test_dense_and_conv_layouts_by_hand():
    dense = Dense(H)
    dense.build((None, D))
    sd = interop.keras_to_torch_weights(dense)
    assert sd["weight"].shape == (H, D)
    numpy.testing.assert_array_equal(sd["weight"], dense.params["kernel"].T)
    if Conv1D is not None:
        conv = Conv1D(H, 2)
        conv.build((None, T, D))
        weight = interop.keras_to_torch_weights(conv)["weight"]
        assert weight.shape == (H, D, 2)                                  # (F, D, K)
        kernel = conv.params["kernel"]                                    # (K, D, F)
        assert weight[3, 2, 1] == kernel[1, 2, 3]


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", LAYERS)
def test_round_trip_through_torch_is_exact(name, dtype):
    torch = pytest.importorskip("torch")
    layer = built(name, dtype=dtype)
    sd = interop.to_torch_state_dict(layer)
    assert all(isinstance(v, torch.Tensor) and v.dtype == getattr(torch, dtype) for v in sd.values())
    module = interop.to_torch_module(layer)
    torch_core = module if not isinstance(module, torch.nn.Sequential) else [
        m for m in module if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d))][0]
    assert sorted(sd) == sorted(torch_core.state_dict())                  # the module's own names

    for load in (lambda c: interop.load_torch_state_dict(c, sd),
                 lambda c: interop.load_torch_state_dict(c, {k: v.numpy() for k, v in sd.items()}),
                 lambda c: interop.load_from_torch(c, module)):
        copy = LAYERS[name]()                                              # unbuilt: built from the shapes
        with backend.float_precision(dtype):
            load(copy)
        for mine, ref in zip(copy.get_weights(), layer.get_weights(), strict=True):
            assert mine.dtype == ref.dtype
            numpy.testing.assert_array_equal(mine, ref)


def test_time_distributed_dense_exports_as_linear():
    pytest.importorskip("torch")
    layer = TimeDistributed(Dense(H))
    layer.build((None, T, D))
    sd = interop.to_torch_state_dict(layer)
    assert sorted(sd) == ["bias", "weight"]
    copy = TimeDistributed(Dense(H))
    interop.load_torch_state_dict(copy, sd)
    assert copy.built and copy.params["kernel"].shape == (D, H)


def test_model_to_state_dicts():
    pytest.importorskip("torch")
    models = pytest.importorskip("tinyrnn.models")
    model = models.Sequential([LSTM(H, return_sequences=True, input_shape=[T, D]), Flatten(), Dense(2)])
    model.build()
    dicts = interop.to_torch_state_dicts(model)
    assert len(dicts) == 3 and dicts[1] == {}
    assert sorted(dicts[0]) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    assert dicts[2]["weight"].shape == (2, T * H)


# --- outputs against the torch modules -------------------------------------------------------------


@pytest.mark.parametrize("name", LAYERS)
def test_torch_module_computes_the_same(name):
    pytest.importorskip("torch")
    layer = built(name)
    x = x_for(name)
    assert_close(layer.forward(x), run_torch(interop.to_torch_module(layer), layer, x), atol=1e-6)


TORCH_INITIALISED = {  # torch class and arguments, our layer
    "RNN": (("RNN", {"batch_first": True}), lambda: SimpleRNN(H, return_sequences=True)),
    "LSTM": (("LSTM", {}), lambda: LSTM(H, return_sequences=True)),       # batch_first=False: (T, B, D)
    "GRU": (("GRU", {"batch_first": True}), lambda: GRU(H, return_sequences=True)),
    "Linear": (("Linear", {}), lambda: Dense(H)),
}


@pytest.mark.parametrize("kind", TORCH_INITIALISED)
def test_load_a_torch_initialised_module(kind):
    # torch's own initialisation gives nonzero bias_hh: the import must merge it into our bias
    torch = pytest.importorskip("torch")
    (cls, kwargs), make_layer = TORCH_INITIALISED[kind]
    torch.manual_seed(0)
    module = getattr(torch.nn, cls)(D, H, **kwargs).double()
    layer = make_layer()
    with backend.float_precision("float64"):
        interop.load_from_torch(layer, module)                   # builds the layer from the shapes
    x = inputs()
    xt = torch.from_numpy(x)
    if kind == "Linear":
        x, expected = x[:, 0], module(xt[:, 0])
    elif kind == "LSTM":
        expected = module(xt.transpose(0, 1))[0].transpose(0, 1)
    else:
        expected = module(xt)[0]
    assert_close(layer.forward(x), expected.detach().numpy(), atol=1e-6)


# --- what does not convert ------------------------------------------------------------------------------


def test_gru_reset_before_has_no_torch_equivalent():
    torch = pytest.importorskip("torch")
    layer = GRU(H, reset_after=False)
    layer.build((None, None, D))
    for convert in (interop.to_torch_state_dict, interop.to_torch_module, interop.keras_to_torch_weights):
        with pytest.raises(ValueError, match="reset_after"):
            convert(layer)
    with pytest.raises(ValueError, match="reset_after"):
        interop.load_from_torch(layer, torch.nn.GRU(D, H))


@pytest.mark.parametrize("cell", [PeepholeLSTMCell, LNSimpleRNNCell])
def test_cells_torch_lacks_raise(cell):
    layer = RNN(cell(H))
    layer.build((None, None, D))
    with pytest.raises(ValueError, match=cell.__name__):
        interop.keras_to_torch_weights(layer)


def test_torch_modules_tinyrnn_cannot_hold_raise():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    with pytest.raises(ValueError, match="num_layers=2"):
        interop.load_from_torch(LSTM(H), nn.LSTM(D, H, num_layers=2))
    with pytest.raises(ValueError, match="bidirectional"):
        interop.load_from_torch(GRU(H), nn.GRU(D, H, bidirectional=True))
    with pytest.raises(ValueError, match="proj_size"):
        interop.load_from_torch(LSTM(H), nn.LSTM(D, H, proj_size=2))
    with pytest.raises(ValueError, match="nn.LSTM"):
        interop.load_from_torch(LSTM(H), nn.GRU(D, H))
    with pytest.raises(ValueError, match="hidden_size=5"):
        interop.load_from_torch(LSTM(H), nn.LSTM(D, 5))
    with pytest.raises(ValueError, match="nonlinearity='relu'"):
        interop.load_from_torch(SimpleRNN(H), nn.RNN(D, H, nonlinearity="relu"))
    with pytest.raises(ValueError, match="unexpected PyTorch weights"):
        interop.load_torch_state_dict(LSTM(H), nn.LSTM(D, H, num_layers=2).state_dict())


def test_activations_torch_lacks_raise():
    layer = SimpleRNN(H, activation="sigmoid")
    layer.build((None, None, D))
    with pytest.raises(ValueError, match="nonlinearity"):
        interop.to_torch_module(layer)
    lstm = LSTM(H, activation="relu")
    lstm.build((None, None, D))
    with pytest.raises(ValueError, match="recurrent_activation"):
        interop.to_torch_module(lstm)


def test_use_bias_false_accepts_only_zero_torch_biases():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="use_bias=False"):
        interop.load_from_torch(SimpleRNN(H, use_bias=False), torch.nn.RNN(D, H))
    layer = SimpleRNN(H)                                        # and a bias-free torch module gives zeros
    interop.load_from_torch(layer, torch.nn.RNN(D, H, bias=False))
    assert not layer.params["bias"].any()


# --- Keras ------------------------------------------------------------------------------------------------


class KerasLike:
    """Anything with get_weights(): a Keras layer or model, or this stand-in."""

    def __init__(self, weights):
        self.weights = weights

    def get_weights(self):
        return self.weights


def test_load_from_keras_is_set_weights():
    source = LSTM(H, return_sequences=True)
    source.build((None, None, D))
    randomize_params(source, seed=4)
    layer = LSTM(H, return_sequences=True)
    layer.build((None, None, D))
    interop.load_from_keras(layer, KerasLike(source.get_weights()))
    for mine, ref in zip(layer.get_weights(), source.get_weights(), strict=True):
        numpy.testing.assert_array_equal(mine, ref)


def test_load_from_keras_into_a_model():
    models = pytest.importorskip("tinyrnn.models")
    model = models.Sequential([GRU(H, input_shape=[None, D]), Dense(1)])
    model.build()
    weights = [numpy.full(w.shape, 0.5) for w in model.get_weights()]
    interop.load_from_keras(model, KerasLike(weights))
    assert all((w == 0.5).all() for w in model.get_weights())


# --- import hygiene ----------------------------------------------------------------------------------------


def test_importing_interop_does_not_import_torch():
    code = "import sys, tinyrnn.interop; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
