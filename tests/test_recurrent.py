"""Tests for tinyrnn.layers.recurrent: the RNN wrapper and every cell.

Sizes are small and distinct (B=2, T=5, D=3, H=4) so a transposed weight
crashes instead of passing. Gradient checks run in float64 with random
weights, biases and gains (``randomize_params``) and a random upstream
gradient (``gradcheck`` draws one); a correct backward scores ~1e-9.

The seeds are fixed so a failure reproduces; gradcheck's floor (1e-4) keeps
tiny true gradients from failing on finite-difference rounding (~1e-12).
"""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close, keras_cases, randomize_params

from tinyrnn import activations, backend, gradcheck, seeding
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    LNSimpleRNNCell,
    LSTMCell,
    PeepholeLSTMCell,
    RNNCell,
    SimpleRNN,
    SimpleRNNCell,
    recurrent,
)
from tinyrnn.layers.core import dropout_mask
from tinyrnn.layers.recurrent import sum_over_time_and_batch
from tinyrnn.models import Sequential, load_model

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7

BUILDERS = {
    "SimpleRNN": lambda **kw: SimpleRNN(H, **kw),
    "LSTM": lambda **kw: LSTM(H, **kw),
    "GRU(reset_after)": lambda **kw: GRU(H, reset_after=True, **kw),
    "GRU(reset_before)": lambda **kw: GRU(H, reset_after=False, **kw),
    "RNN(PeepholeLSTMCell)": lambda **kw: RNN(PeepholeLSTMCell(H), **kw),
    "RNN(LNSimpleRNNCell)": lambda **kw: RNN(LNSimpleRNNCell(H), **kw),
}
STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU(reset_after)": 1, "GRU(reset_before)": 1,
          "RNN(PeepholeLSTMCell)": 2, "RNN(LNSimpleRNNCell)": 1}


def inputs(T=T, seed=0, B=B):
    return numpy.random.default_rng(seed).normal(size=(B, T, D))


def built(name, seed=2, dtype="float64", **kwargs):
    """A layer built for (B, T, D) inputs, with random weights, biases and gains."""
    with backend.float_precision(dtype):
        layer = BUILDERS[name](**kwargs)
        layer.build((None, None, D))
    randomize_params(layer, seed=seed)
    if "gamma" in layer.params:  # gains near 1: gains near 0 shrink gradients to rounding noise
        layer.params["gamma"][...] += 1.0
    return layer


def as_list(y):
    return list(y) if isinstance(y, list) else [y]


# --- gradient checks ---------------------------------------------------------------


@pytest.mark.parametrize("return_state", [False, True], ids=["no_state", "state"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("name", BUILDERS)
def test_gradcheck_every_layer_and_option(name, return_sequences, return_state):
    layer = built(name, return_sequences=return_sequences, return_state=return_state)
    report = gradcheck(layer, inputs())
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + len(layer.params)  # the input and every parameter


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", "sigmoid"])
def test_gradcheck_simple_rnn_activations(activation):
    layer = built("SimpleRNN", activation=activation, return_sequences=True)
    gradcheck(layer, inputs()).assert_ok(TOL)


@pytest.mark.parametrize("name", BUILDERS)
def test_gradcheck_with_dropout_in_training(name):
    # gradcheck reseeds tinyrnn's generator before every forward pass, so the
    # dropout masks are the same in every evaluation of the loss.
    layer = built(name, return_sequences=True, return_state=True, dropout=0.3, recurrent_dropout=0.4)
    gradcheck(layer, inputs(), training=True).assert_ok(TOL)


# --- Keras 3 reference values ----------------------------------------------------------

RECURRENT_CASES = [(c, a) for c, a in keras_cases() if c["layer"] in ("SimpleRNN", "LSTM", "GRU")]


@pytest.mark.parametrize("case, arrays", RECURRENT_CASES, ids=[c["key"] for c, _ in RECURRENT_CASES])
def test_matches_keras_outputs_and_gradients(case, arrays):
    cls = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}[case["layer"]]
    with backend.float_precision("float64"):
        layer = cls(**case["kwargs"])
        layer.build(arrays["x"].shape)
    layer.set_weights([arrays[f"w{i}"] for i in range(len(case["weights"]))])
    assert_close(layer.forward(arrays["x"], training=case["training"]), arrays["y"], name="y")
    assert_close(layer.backward(arrays["upstream"]), arrays["dx"], name="dx")
    for i, key in enumerate(case["weights"]):
        assert_close(layer.grads[key], arrays[f"dw{i}"], name=f"d{key}")


# --- PyTorch reference (float64, weights copied through tinyrnn.interop) ------------------

TORCH_LAYERS = {
    "SimpleRNN": lambda **kw: SimpleRNN(H, **kw),
    "SimpleRNN(relu)": lambda **kw: SimpleRNN(H, activation="relu", **kw),
    "LSTM": lambda **kw: LSTM(H, **kw),
    "GRU": lambda **kw: GRU(H, **kw),
}


@pytest.mark.parametrize("name", TORCH_LAYERS)
def test_matches_torch_outputs_and_gradients(name):
    torch = pytest.importorskip("torch")
    from tinyrnn import interop

    with backend.float_precision("float64"):
        layer = TORCH_LAYERS[name](return_sequences=True, return_state=True)
        layer.build((None, None, D))
    randomize_params(layer, seed=3)
    module = interop.to_torch_module(layer)
    x = inputs()
    rng = numpy.random.default_rng(4)

    ours = as_list(layer.forward(x))                        # [y, h] or [y, h, c]
    upstream = [rng.normal(size=y.shape) for y in ours]
    dx = layer.backward(upstream)

    xt = torch.tensor(x, requires_grad=True)
    y, state = module(xt)                                   # state: h_n (1, B, H) or (h_n, c_n)
    theirs = [y] + [s[0] for s in (state if isinstance(state, tuple) else (state,))]
    assert len(theirs) == len(ours)
    loss = sum((t * torch.from_numpy(u)).sum() for t, u in zip(theirs, upstream, strict=True))
    loss.backward()

    for i, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(mine, ref.detach().numpy(), atol=1e-12, name=f"output {i}")
    assert_close(dx, xt.grad.numpy(), atol=1e-12, name="dx")
    grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
    if "GRU" not in name:
        # one Keras bias feeds both torch biases, so their gradients are equal
        assert_close(grads["bias_ih_l0"], grads["bias_hh_l0"], name="torch bias grads")
        grads["bias_hh_l0"] = numpy.zeros_like(grads["bias_hh_l0"])  # count the bias once
    expected = interop.torch_to_keras_weights(layer, grads)  # same layout change as the weights
    for key, ref in zip(layer.weight_names, expected, strict=True):
        assert_close(layer.grads[key], ref, atol=1e-12, name=f"d{key}")


# --- weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_set_weights_round_trip_gives_identical_outputs(name):
    source = built(name, return_sequences=True)
    copy = BUILDERS[name](return_sequences=True)
    with backend.float_precision("float64"):
        copy.build((None, T, D))
    copy.set_weights(source.get_weights())
    x = inputs()
    numpy.testing.assert_array_equal(copy.forward(x), source.forward(x))
    shapes = [w.shape for w in source.get_weights()]
    assert [w.shape for w in copy.get_weights()] == shapes


def test_keras_weight_shapes():
    expected = {
        "SimpleRNN": [(D, H), (H, H), (H,)],
        "LSTM": [(D, 4 * H), (H, 4 * H), (4 * H,)],
        "GRU(reset_after)": [(D, 3 * H), (H, 3 * H), (2, 3 * H)],
        "GRU(reset_before)": [(D, 3 * H), (H, 3 * H), (3 * H,)],
        "RNN(PeepholeLSTMCell)": [(D, 4 * H), (H, 4 * H), (4 * H,), (H,), (H,), (H,)],
        "RNN(LNSimpleRNNCell)": [(D, H), (H, H), (H,), (H,), (H,)],
    }
    for name, shapes in expected.items():
        assert [w.shape for w in built(name).get_weights()] == shapes, name


def test_set_weights_rejects_wrong_shapes():
    layer = built("LSTM")
    weights = layer.get_weights()
    with pytest.raises(ValueError, match="shape"):
        layer.set_weights([weights[0].T, *weights[1:]])
    with pytest.raises(ValueError, match="expected 3 arrays"):
        layer.set_weights(weights[:2])


# --- the wrapper's options ------------------------------------------------------------------


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("name", BUILDERS)
def test_return_state_shapes_and_final_h(name, return_sequences):
    layer = built(name, return_sequences=return_sequences, return_state=True)
    out = layer.forward(inputs())
    assert isinstance(out, list) and len(out) == 1 + STATES[name]   # [y, h] or [y, h, c]
    y, h, *rest = out
    assert y.shape == ((B, T, H) if return_sequences else (B, H))
    assert h.shape == (B, H) and all(s.shape == (B, H) for s in rest)
    assert_close(h, y[:, -1] if return_sequences else y, atol=0.0, name="h_T vs last output")
    expected_shapes = layer.compute_output_shape((None, T, D))
    assert [tuple(o.shape)[1:] for o in out] == [tuple(s)[1:] for s in expected_shapes]


def test_lstm_final_states_against_the_equations():
    layer = built("LSTM", return_sequences=True, return_state=True)
    x = inputs()
    y, h_T, c_T = layer.forward(x)
    W, U, b = (backend.to_numpy(layer.params[k]) for k in ("kernel", "recurrent_kernel", "bias"))
    sig, h, c = activations.sigmoid, numpy.zeros((B, H)), numpy.zeros((B, H))
    for t in range(T):                                      # Keras's equations, gates i f c o
        z = x[:, t] @ W + h @ U + b
        i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), numpy.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
        c = f * c + i * g
        h = o * numpy.tanh(c)
        assert_close(y[:, t], h, atol=1e-14, name=f"h_{t + 1}")
    assert_close(h_T, h, atol=1e-14, name="h_T")
    assert_close(c_T, c, atol=1e-14, name="c_T")


@pytest.mark.parametrize("activation, recurrent_activation", [("relu", "sigmoid"), ("tanh", "tanh")])
def test_lstm_with_other_activations(activation, recurrent_activation):
    """Other activations than (tanh, sigmoid) take the plain path: no one-tanh gates."""
    with backend.float_precision("float64"):
        layer = LSTM(H, activation=activation, recurrent_activation=recurrent_activation,
                     return_sequences=True)
        layer.build((None, None, D))
    randomize_params(layer, seed=4)
    assert not layer.cell.tanh_gates
    x = inputs()
    y = layer.forward(x)
    W, U, b = (backend.to_numpy(layer.params[k]) for k in ("kernel", "recurrent_kernel", "bias"))
    act, rec = activations.get(activation).forward, activations.get(recurrent_activation).forward
    h, c = numpy.zeros((B, H)), numpy.zeros((B, H))
    for t in range(T):
        z = x[:, t] @ W + h @ U + b
        i, f, g, o = rec(z[:, :H]), rec(z[:, H:2 * H]), act(z[:, 2 * H:3 * H]), rec(z[:, 3 * H:])
        c = f * c + i * g
        h = o * act(c)
        assert_close(y[:, t], h, atol=1e-14, name=f"h_{t + 1}")
    gradcheck(layer, x, seed=5).assert_ok(TOL)


class PlainLSTMCell(LSTMCell):
    """The LSTM cell without the one-tanh gates: sigmoid and tanh as two activations."""

    tanh_gates = False


def test_one_tanh_gates_train_as_the_plain_activations_in_float32():
    """s(z) = (1 + tanh(z / 2)) / 2 and g = tanh(z_c) from one tanh: the same training to float32 rounding."""
    rng = numpy.random.default_rng(6)
    x = rng.normal(size=(64, 12, D)).astype("float32")
    y = rng.normal(size=(64, 12, H)).astype("float32")
    histories, weights = [], []
    for cell_class in (LSTMCell, PlainLSTMCell):
        seeding.set_random_seed(7)
        model = Sequential([RNN(cell_class(H), return_sequences=True, input_shape=[None, D])])
        model.compile(loss="mse", optimizer="adam")
        assert model.layers[0].cell.tanh_gates == (cell_class is LSTMCell)
        histories.append(model.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0).history["loss"])
        weights.append(model.get_weights())
    assert_close(numpy.array(histories[0]), numpy.array(histories[1]), rtol=1e-6, atol=0, name="loss curve")
    for one_tanh, plain in zip(*weights):
        assert_close(one_tanh, plain, rtol=0, atol=1e-6, name="weights after training")


def test_any_sequence_length_after_building_with_T_none():
    layer = built("GRU(reset_after)", return_sequences=True)
    assert layer.input_shape == (None, None, D)
    x = inputs(T=9)
    full = layer.forward(x)
    for steps in (1, 2, 5, 9):
        y = layer.forward(x[:, :steps])
        assert y.shape == (B, steps, H)
        assert_close(y, full[:, :steps], atol=1e-15, name=f"first {steps} steps")  # causal


def test_inputs_of_the_wrong_shape_raise():
    layer = built("SimpleRNN")
    with pytest.raises(ValueError, match=r"x\[\.\.\., None\]"):
        layer.forward(numpy.zeros((B, T)))
    with pytest.raises(ValueError, match="D=3"):
        layer.forward(numpy.zeros((B, T, D + 1)))


def test_integer_inputs_are_refused_with_the_fix():
    layer = SimpleRNN(H, return_sequences=True)
    x = numpy.arange(B * T * D).reshape(B, T, D) % 3                # integers, as a student might pass
    with pytest.raises(TypeError, match=r"astype\('float32'\)"):
        layer(x)


def test_hidden_grad_norms_length_T_and_vanishing():
    layer = built("SimpleRNN")  # return_sequences=False: the gradient enters at the last step only
    layer.params["recurrent_kernel"][...] *= 0.1 / numpy.abs(layer.params["recurrent_kernel"]).max()
    with pytest.raises(RuntimeError, match="backward"):
        layer.hidden_grad_norms  # noqa: B018  (a property that must raise)
    x = inputs(T=8)
    y = layer.forward(x)
    layer.backward(numpy.ones_like(y))
    norms = layer.hidden_grad_norms
    assert isinstance(norms, numpy.ndarray) and norms.shape == (8,)
    assert numpy.all(numpy.diff(norms) > 0), f"norms should grow towards the last step: {norms}"
    assert norms[0] < 1e-5 * norms[-1], f"vanishing: {norms}"


def test_hidden_grad_norms_do_not_vanish_with_return_sequences():
    layer = built("SimpleRNN", return_sequences=True)
    y = layer.forward(inputs())
    layer.backward(numpy.ones_like(y))
    assert layer.hidden_grad_norms.shape == (T,)
    assert layer.hidden_grad_norms.min() > 0.1  # every step gets its own upstream gradient


@pytest.mark.parametrize("name", BUILDERS)
def test_backward_needs_a_forward(name):
    layer = built(name, return_sequences=True)
    dy = numpy.ones((B, T, H))
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy)
    layer.forward(inputs())
    layer.backward(dy)
    with pytest.raises(RuntimeError, match="call forward"):
        layer.backward(dy)


def test_backward_accumulates_into_grads():
    layer = built("LSTM", return_sequences=True)
    x, dy = inputs(), numpy.random.default_rng(5).normal(size=(B, T, H))
    layer.forward(x)
    layer.backward(dy)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    layer.backward(dy)
    for k in once:
        assert_close(layer.grads[k], 2 * once[k], atol=1e-14, name=k)
    layer.zero_grads()
    assert all(not g.any() for g in layer.grads.values())


# --- phase 4 in time slices: the weight gradients sum over every slice ------------------------------


@pytest.mark.parametrize("ones_row", [False, True], ids=["no_bias_row", "bias_row"])
@pytest.mark.parametrize("steps_per_slice", [1, 2, 3])             # 3: slices of 3 and 2 steps
def test_sum_over_time_and_batch_in_several_slices_equals_one_slice(steps_per_slice, ones_row):
    rng = numpy.random.default_rng(7)
    G = 3 * H
    X, H_prev, dZ = rng.normal(size=(T, D, B)), rng.normal(size=(T, H, B)), rng.normal(size=(T, G, B))
    one_slice = recurrent.sum_over_time_and_batch([X, H_prev], dZ, ones_row=ones_row, slice_size=T * G * B)
    sliced = recurrent.sum_over_time_and_batch([X, H_prev], dZ, ones_row=ones_row,
                                               slice_size=steps_per_slice * G * B)
    V = numpy.concatenate([X, H_prev] + ([numpy.ones((T, 1, B))] if ones_row else []), axis=1)
    by_hand = sum(V[t] @ dZ[t].T for t in range(T))                  # sum_t v_t dz_t^T, (K, G)
    assert_close(one_slice, by_hand, atol=1e-12, name="one slice")
    assert_close(sliced, by_hand, atol=1e-12, name=f"slices of {steps_per_slice} steps")


def grads_of(layer, x, dy):
    layer.zero_grads()
    layer.forward(x)
    layer.backward(dy)
    return {k: g.copy() for k, g in layer.grads.items()}


@pytest.mark.parametrize("name", BUILDERS)
def test_layer_weight_gradients_in_one_time_step_slices(name, monkeypatch):
    # the course's layers take one slice: force one time step per slice, through every cell's phase 4
    layer = built(name, return_sequences=True)
    x, dy = inputs(), numpy.random.default_rng(5).normal(size=(B, T, H))
    one_slice = grads_of(layer, x, dy)
    calls = []

    def one_step_per_slice(*args, **kwargs):
        calls.append(1)
        return sum_over_time_and_batch(*args, **{**kwargs, "slice_size": 1})

    monkeypatch.setattr(recurrent, "sum_over_time_and_batch", one_step_per_slice)
    sliced = grads_of(layer, x, dy)
    assert calls, "phase 4 did not go through sum_over_time_and_batch"
    for k in one_slice:
        assert_close(sliced[k], one_slice[k], atol=1e-12, name=k)


def test_a_large_layer_is_sliced_and_sums_every_slice(monkeypatch):
    # big enough that the default slice size cuts phase 4 into several time slices
    B_, T_, H_ = 64, 80, 64                                      # an LSTM: 4H = 256 gate rows
    assert T_ * 4 * H_ * B_ > 2**20 // backend.threads(), "the layer must exceed one slice"
    with backend.float_precision("float64"):
        layer = LSTM(H_, return_sequences=True)
        layer.build((None, None, D))
    randomize_params(layer, seed=4, scale=0.05)
    x = inputs(T=T_, B=B_)
    dy = numpy.random.default_rng(6).normal(size=(B_, T_, H_))
    sliced = grads_of(layer, x, dy)
    monkeypatch.setattr(recurrent, "sum_over_time_and_batch",
                        lambda *a, **kw: sum_over_time_and_batch(*a, **{**kw, "slice_size": 2**40}))
    one_slice = grads_of(layer, x, dy)
    for k in one_slice:
        assert_close(sliced[k], one_slice[k], atol=1e-9, name=k)


# --- dropout: one mask per sequence, inverted scaling --------------------------------------


def identity_rnn(**kwargs):
    """A linear SimpleRNN with D = H that shows its masks: kernel I, no recurrence, bias 0."""
    with backend.float_precision("float64"):
        layer = SimpleRNN(D, activation="linear", return_sequences=True, **kwargs)
        layer.build((None, None, D))
    layer.set_weights([numpy.eye(D), numpy.zeros((D, D)), numpy.zeros(D)])
    return layer


def test_input_dropout_one_mask_per_sequence():
    layer = identity_rnn(dropout=0.5)
    seeding.set_random_seed(0)
    y = layer.forward(numpy.ones((50, T, D)), training=True)     # y_t = x_t * m = m
    mask = y[:, 0]                                                # (B, D)
    assert_close(y, numpy.broadcast_to(mask[:, None], y.shape), atol=0.0, name="same mask at every t")
    assert set(numpy.unique(mask)) == {0.0, 2.0}                  # 0 or 1 / (1 - rate)
    assert_close(layer.forward(numpy.ones((50, T, D))), numpy.ones((50, T, D)), atol=0.0,
                 name="inference: no dropout")


def test_recurrent_dropout_one_mask_per_sequence():
    layer = identity_rnn(recurrent_dropout=0.5)
    layer.set_weights([numpy.zeros((D, D)), numpy.eye(D), numpy.ones(D)])  # h_t = m h_{t-1} + 1
    seeding.set_random_seed(0)
    y = layer.forward(numpy.zeros((50, T, D)), training=True)
    mask = y[:, 1] - 1.0                                          # h_2 = m h_1 + 1, h_1 = 1
    assert set(numpy.unique(mask)) == {0.0, 2.0}
    for t in range(1, T):
        assert_close(y[:, t], mask * y[:, t - 1] + 1.0, atol=1e-12, name=f"step {t}")


def test_dropout_masks_are_seeded():
    layer = built("LSTM", return_sequences=True, dropout=0.3, recurrent_dropout=0.3)
    x = inputs()
    seeding.set_random_seed(7)
    first = layer.forward(x, training=True)
    seeding.set_random_seed(7)
    numpy.testing.assert_array_equal(layer.forward(x, training=True), first)
    assert not numpy.allclose(layer.forward(x, training=True), first)  # a new draw differs


def test_inverted_dropout_keeps_the_mean():
    rate = 0.3
    layer = identity_rnn(dropout=rate)
    seeding.set_random_seed(1)
    y = layer.forward(numpy.ones((4000, 2, D)), training=True)
    assert abs(y.mean() - 1.0) < 0.03                             # sd of the mean ~ 0.005
    assert abs((y[:, 0] == 0).mean() - rate) < 0.02


@pytest.mark.parametrize("name", [
    "SimpleRNN",
    "LSTM",
    "GRU(reset_after)",
])
def test_recurrent_dropout_masks_only_the_recurrent_product(name):
    """Keras: ``recurrent_dropout`` drops units "for the linear transformation of the
    recurrent state" (h_{t-1} U), not the state carried to the next step."""
    layer = built(name, return_sequences=True, recurrent_dropout=0.5)
    x = inputs()
    seeding.set_random_seed(3)
    y = layer.forward(x, training=True)
    seeding.set_random_seed(3)
    m = dropout_mask((B, H), 0.5, numpy.float64)                 # the same draw the layer made
    p = {k: backend.to_numpy(v) for k, v in layer.params.items()}
    sig, h, c = activations.sigmoid, numpy.zeros((B, H)), numpy.zeros((B, H))
    for t in range(T):
        xw = x[:, t] @ p["kernel"]
        if name == "SimpleRNN":
            h = numpy.tanh(xw + p["bias"] + (h * m) @ p["recurrent_kernel"])
        elif name == "LSTM":
            z = xw + p["bias"] + (h * m) @ p["recurrent_kernel"]
            i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), numpy.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
            c = f * c + i * g
            h = o * numpy.tanh(c)
        else:
            xw, rec = xw + p["bias"][0], (h * m) @ p["recurrent_kernel"] + p["bias"][1]
            u, r = sig(xw[:, :H] + rec[:, :H]), sig(xw[:, H:2 * H] + rec[:, H:2 * H])
            n = numpy.tanh(xw[:, 2 * H:] + r * rec[:, 2 * H:])
            h = u * h + (1 - u) * n                               # the carry uses the unmasked h
        assert_close(y[:, t], h, atol=1e-12, name=f"h_{t + 1}")


# --- Keras's default initialisers --------------------------------------------------------------


def fresh(layer, seed=0):
    seeding.set_random_seed(seed)
    layer.build((None, None, D))
    return {k: backend.to_numpy(v) for k, v in layer.params.items()}


def test_lstm_unit_forget_bias():
    bias = fresh(LSTM(H))["bias"]
    expected = numpy.zeros(4 * H)
    expected[H:2 * H] = 1.0                                      # gates i, f, c, o: f starts open
    numpy.testing.assert_array_equal(bias, expected)
    assert not fresh(LSTM(H, unit_forget_bias=False))["bias"].any()


def test_recurrent_kernels_are_orthogonal():
    U = fresh(SimpleRNN(H))["recurrent_kernel"]                  # square (H, H)
    assert_close(U @ U.T, numpy.eye(H), atol=1e-6, name="U U^T")
    assert_close(U.T @ U, numpy.eye(H), atol=1e-6, name="U^T U")
    for layer, gates in ((LSTM(H), 4), (GRU(H), 3)):             # wide (H, G): orthonormal rows
        U = fresh(layer)["recurrent_kernel"]
        assert U.shape == (H, gates * H)
        assert_close(U @ U.T, numpy.eye(H), atol=1e-6, name=f"{layer.name} U U^T")


@pytest.mark.parametrize("layer_cls, gates", [(SimpleRNN, 1), (LSTM, 4), (GRU, 3)])
def test_glorot_uniform_kernel_and_zero_biases(layer_cls, gates):
    params = fresh(layer_cls(H))
    W, limit = params["kernel"], numpy.sqrt(6.0 / (D + gates * H))
    assert W.shape == (D, gates * H) and W.dtype == numpy.float32
    assert numpy.abs(W).max() <= limit and numpy.abs(W).max() > 0.5 * limit
    if layer_cls is not LSTM:
        assert not params["bias"].any()
    if layer_cls is GRU:
        assert params["bias"].shape == (2, 3 * H)


def test_initialisation_is_seeded():
    a, b = fresh(LSTM(H), seed=5), fresh(LSTM(H), seed=5)
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k])


# --- a user-written cell ---------------------------------------------------------------------


class MinimalGatedCell(RNNCell):
    """A user's cell: the minimal gated unit with one gate, f, that both forgets and writes.

    Forward, with z = W^T x_t + U^T h_{t-1} + b (2H, B), row blocks z_f z_n:
        f = s(z_f)      n = tanh(z_n)      h_t = (1 - f) h_{t-1} + f n
    Backward (dh: the gradient reaching h_t):
        dz_f = dh (n - h_{t-1}) s'(z_f)    dz_n = dh f tanh'(z_n)
        dh_{t-1} = dh (1 - f) + U dz

    z has RNNCell's form, so phase 1 (``project_inputs``) and phase 4
    (``accumulate_grads``, ``input_grad``) are inherited: only the step is new.
    The contract: ``prepare`` allocates what the steps keep (the base class
    allocates ``tape.dZ``); ``step_forward`` writes h_t into ``tape.H[t + 1]``;
    ``step_backward`` writes dL/dz_t into ``tape.dZ[t]`` and returns dL/dh_{t-1}.
    """

    gates = 2
    supports_recurrent_dropout = True  # U reads h_{t-1} through self.recurrent_input

    def prepare(self, tape, T, B, dtype):
        super().prepare(tape, T, B, dtype)                          # tape.dZ (T, 2H, B)
        tape.F = backend.xp.empty((T, self.units, B), dtype)        # f at every step
        tape.N = backend.xp.empty((T, self.units, B), dtype)        # n at every step

    def step_forward(self, t, xw_t, states, tape):
        H, xp, h_prev = self.units, backend.xp, states[0]           # h_prev (H, B)
        z = xw_t + self.params["recurrent_kernel"].T @ self.recurrent_input(h_prev, tape)  # (2H, B)
        f = tape.F[t]
        f[...] = 1.0 / (1.0 + xp.exp(-z[:H]))
        n = tape.N[t]
        n[...] = xp.tanh(z[H:])
        h = tape.H[t + 1]
        h[...] = (1.0 - f) * h_prev + f * n
        return [h]

    def step_backward(self, t, dstates, tape):
        H, dh = self.units, dstates[0]
        f, n, h_prev = tape.F[t], tape.N[t], tape.H[t]               # h_{t-1} as the carry saw it
        dz = tape.dZ[t]                                              # (2H, B)
        dz[:H] = dh * (n - h_prev) * f * (1.0 - f)                   # dh/df = n - h_{t-1}; s' = f (1 - f)
        dz[H:] = dh * f * (1.0 - n * n)                              # dh/dn = f; tanh' = 1 - n^2
        return [dh * (1.0 - f) + self.recurrent_input_grad(self.params["recurrent_kernel"] @ dz, tape)]


@pytest.mark.parametrize("options", [
    {},
    {"return_sequences": True},
    {"return_sequences": True, "return_state": True, "dropout": 0.2, "recurrent_dropout": 0.3},
], ids=["last", "seq", "seq_state_dropout"])
def test_a_user_written_cell_plugs_into_rnn(options):
    with backend.float_precision("float64"):
        layer = RNN(MinimalGatedCell(H), **options)
        layer.build((None, None, D))
    assert [w.shape for w in layer.get_weights()] == [(D, 2 * H), (H, 2 * H), (2 * H,)]
    randomize_params(layer, seed=2)
    gradcheck(layer, inputs(), training=bool(options.get("dropout"))).assert_ok(TOL)


def test_recurrent_dropout_needs_a_cell_that_supports_it():
    class PlainCell(SimpleRNNCell):
        supports_recurrent_dropout = False
    with pytest.raises(ValueError, match="recurrent_input"):
        RNN(PlainCell(H), recurrent_dropout=0.2)
    RNN(PlainCell(H), dropout=0.2)                                  # input dropout needs nothing


@pytest.mark.parametrize("cell_class", [SimpleRNNCell, LSTMCell, recurrent.GRUCell, PeepholeLSTMCell,
                                        LNSimpleRNNCell])
def test_dropout_rates_given_to_the_cell_as_in_keras_3(cell_class, tmp_path):
    """Keras 3 spells RNN(LSTMCell(H, dropout=..., recurrent_dropout=...)): the same masks as the
    rates given to RNN, and they are saved with the cell."""
    rates = {"dropout": 0.3, "recurrent_dropout": 0.4}
    on_cell = RNN(cell_class(H, **rates), return_sequences=True)
    on_layer = RNN(cell_class(H), return_sequences=True, **rates)
    for layer in (on_cell, on_layer):
        layer.build((None, None, D))
    randomize_params(on_cell, seed=2)
    on_layer.set_weights(on_cell.get_weights())
    x = inputs()
    seeding.set_random_seed(7)
    dropped = on_cell.forward(x, training=True)
    seeding.set_random_seed(7)
    assert_close(dropped, on_layer.forward(x, training=True), 1e-12, name="rates on the cell")
    assert not numpy.allclose(dropped, on_cell.forward(x, training=False))
    model = Sequential([on_cell])
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz").layers[0]
    assert (loaded.dropout, loaded.recurrent_dropout, loaded.cell.dropout) == (0.3, 0.4, 0.3)


def test_rnn_rejects_a_non_cell():
    with pytest.raises(TypeError, match="RNNCell"):
        RNN(SimpleRNN(H))


def test_simple_rnn_layer_is_rnn_of_its_cell():
    layer = built("SimpleRNN", return_sequences=True)
    wrapped = RNN(SimpleRNNCell(H), return_sequences=True)
    with backend.float_precision("float64"):
        wrapped.build((None, None, D))
    wrapped.set_weights(layer.get_weights())
    numpy.testing.assert_array_equal(wrapped.forward(inputs()), layer.forward(inputs()))


def test_float32_by_default():
    layer = LSTM(H, return_sequences=True)
    layer.build((None, None, D))
    y = layer.forward(backend.asarray(inputs()))
    assert y.dtype == numpy.float32
    assert all(p.dtype == numpy.float32 for p in layer.params.values())

