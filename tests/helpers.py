"""One comparison helper for all tests, and small builders they share."""

from __future__ import annotations

import json
import pathlib

import numpy

from tinyrnn import backend
from tinyrnn.layers import Layer

DATA = pathlib.Path(__file__).parent / "data"


def assert_close(mine, reference, atol=1e-12, rtol=0.0, name="array"):
    """Compare shape, then values; on failure say where, mine vs reference."""
    mine, reference = numpy.asarray(backend.to_numpy(mine)), numpy.asarray(backend.to_numpy(reference))
    assert mine.shape == reference.shape, (
        f"{name}: shape {mine.shape} (mine) vs {reference.shape} (reference)"
    )
    err = numpy.abs(mine.astype(numpy.float64) - reference.astype(numpy.float64))
    bound = atol + rtol * numpy.abs(reference)
    if err.size and not (err <= bound).all():
        i = numpy.unravel_index(int(numpy.argmax(err - bound)), err.shape)
        raise AssertionError(
            f"{name}: worst entry {list(i)}: mine {mine[i]!r} vs reference {reference[i]!r} "
            f"(|diff| {err[i]:.3e} > {bound[i]:.3e}); max |diff| {err.max():.3e}"
        )


def randomize_params(layer, seed=0, scale=0.5):
    """Random values for every parameter (biases and gains too), so no default hides a bug."""
    rng = numpy.random.default_rng(seed)
    for value in layer.params.values():
        value[...] = backend.xp.asarray(rng.normal(scale=scale, size=value.shape))


def keras_cases():
    """The Keras 3 reference cases in tests/data: (case dict, arrays dict)."""
    index = json.loads((DATA / "keras_layers.json").read_text())
    arrays = numpy.load(DATA / "keras_layers.npz")
    for case in index["cases"]:
        k = case["key"]
        yield case, {name.split("/", 1)[1]: arrays[name] for name in arrays.files if name.startswith(k + "/")}


def loss_numeric_gradient(loss, y_true, y_pred, h=1e-6):
    """Central differences of a loss's value with respect to every entry of y_pred (float64)."""
    y_pred = numpy.array(backend.to_numpy(y_pred), dtype="float64")
    grad = numpy.zeros_like(y_pred)
    for idx in numpy.ndindex(*y_pred.shape):
        old = y_pred[idx]
        y_pred[idx] = old + h
        plus = float(backend.to_numpy(loss(y_true, backend.xp.asarray(y_pred))))
        y_pred[idx] = old - h
        minus = float(backend.to_numpy(loss(y_true, backend.xp.asarray(y_pred))))
        y_pred[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def recurrent_builders(units: int, keras_protocol: bool = True) -> dict:
    """name -> a function of RNN keywords making that recurrent layer with ``units``: every built-in
    cell, and (``keras_protocol``) an LSTM cell in Keras's cell protocol, whose steps are recorded."""
    from tinyrnn.layers import GRU, LSTM, RNN, LNSimpleRNNCell, PeepholeLSTMCell, SimpleRNN

    builders = {
        "SimpleRNN": lambda **kw: SimpleRNN(units, **kw),
        "LSTM": lambda **kw: LSTM(units, **kw),
        "GRU(reset_after)": lambda **kw: GRU(units, **kw),
        "GRU(reset_before)": lambda **kw: GRU(units, reset_after=False, **kw),
        "RNN(PeepholeLSTMCell)": lambda **kw: RNN(PeepholeLSTMCell(units), **kw),
        "RNN(LNSimpleRNNCell)": lambda **kw: RNN(LNSimpleRNNCell(units), **kw),
    }
    if keras_protocol:
        builders["RNN(Keras-protocol LSTM)"] = lambda **kw: RNN(keras_style_lstm(units), **kw)
    return builders


RECURRENT_STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU(reset_after)": 1, "GRU(reset_before)": 1,
                    "RNN(PeepholeLSTMCell)": 2, "RNN(LNSimpleRNNCell)": 1, "RNN(Keras-protocol LSTM)": 2}
"""How many states (h, or h and c) each of ``recurrent_builders``' layers carries."""


def random_float64_layer(make, x, seed=2):
    """``make()`` in float64, built on ``x`` (a Keras-protocol cell builds its pieces on its first
    step), with random weights and biases, and gains near 1 (gains near 0 shrink gradients to noise)."""
    from tinyrnn.layers.base import parameter_owners

    with backend.float_precision("float64"):
        layer = make()
        layer(x)
    for owner in parameter_owners([layer]):
        randomize_params(owner, seed=seed)
        if "gamma" in owner.params:
            owner.params["gamma"][...] += 1.0
    return layer


def keras_style_lstm(units: int):
    """A cell in Keras's protocol (recorded steps): an LSTM cell called as cell(x_t, states)."""
    from tinyrnn.layers import Layer, LSTMCell

    class KerasStyleLSTM(Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.cell = LSTMCell(units)
            self.state_size = self.cell.state_size
            self.output_size = units

        def call(self, inputs, states):
            return self.cell(inputs, states)

    return KerasStyleLSTM(units)



class WithMask(Layer):
    """``layer`` with a fixed (B, T) mask, as gradcheck's target (gradcheck calls forward(x, training))."""

    def __init__(self, layer, mask):
        super().__init__()
        self.layer, self.mask = layer, backend.xp.asarray(mask)
        self.built = True

    def forward(self, x, training=False):
        return self.layer.forward(x, training=training, mask=self.mask)

    def backward(self, dy):
        return self.layer.backward(dy)
