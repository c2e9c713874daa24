"""Tests for composing layers: merge layers, Activation / Lambda / Reshape / Permute,
functional and subclassed models, Keras-style custom layers and cells.

Gradient checks in float64 with random weights (``set_weights`` with random arrays,
biases and gains included) and a random upstream gradient (``gradcheck`` draws it).
Custom cells are compared with the built-in cells they rewrite, to 1e-10 in float64.
Sizes: B=2, T=5, D=3, H=4.
"""

from __future__ import annotations

import numpy
import pytest

import tinyrnn
from tinyrnn import Input, Model, Sequential, activations, backend, gradcheck, ops
from tinyrnn.bench import KerasLNCell
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    GRUCell,
    Lambda,
    Layer,
    LNSimpleRNNCell,
    LSTMCell,
    Maximum,
    Multiply,
    PeepholeLSTMCell,
    Permute,
    Reshape,
    SimpleRNN,
    SimpleRNNCell,
    Subtract,
)
from tinyrnn.layers.base import parameter_owners

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7


def normal(*shape, seed=0):
    return numpy.random.default_rng(seed).normal(size=shape)


def randomize(layer_or_model, seed=1, scale=0.5):
    """Random values for every weight (biases and gains too) through set_weights."""
    rng = numpy.random.default_rng(seed)
    layer_or_model.set_weights([rng.normal(scale=scale, size=w.shape) for w in layer_or_model.get_weights()])


def grads_in_weight_order(layer) -> list:
    """Every gradient in get_weights() order (the owners' weight_names)."""
    return [owner.grads[k] for owner in parameter_owners([layer]) for k in owner.weight_names
            if k in owner.grads]


def assert_close(a, b, atol=1e-10, what="array"):
    a, b = backend.to_numpy(a), backend.to_numpy(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    err = float(numpy.abs(a - b).max()) if a.size else 0.0
    assert err <= atol, f"{what}: max |diff| {err:.3e} > {atol:.0e}"


# --- merge layers ---------------------------------------------------------------------------------
MERGES = {
    "Add": (Add, [(B, T, H), (B, T, H), (B, T, H)]),
    "Add broadcast (B, 1, H)": (Add, [(B, T, H), (B, 1, H)]),
    "Subtract": (Subtract, [(B, T, H), (B, T, H)]),
    "Subtract broadcast (B, T, 1)": (Subtract, [(B, T, 1), (B, T, H)]),
    "Multiply": (Multiply, [(B, T, H), (B, T, H), (B, T, H)]),
    "Multiply broadcast (B, 1, H)": (Multiply, [(B, 1, H), (B, T, H)]),
    "Average": (Average, [(B, T, H), (B, T, H), (B, T, H)]),
    "Average broadcast (1, T, H)": (Average, [(B, T, H), (1, T, H)]),
    "Maximum": (Maximum, [(B, T, H), (B, T, H), (B, T, H)]),
    "Maximum broadcast (B, 1, H)": (Maximum, [(B, 1, H), (B, T, H)]),
    "Concatenate": (Concatenate, [(B, T, 1), (B, T, H), (B, T, 2)]),
    "Concatenate axis=1": (lambda: Concatenate(axis=1), [(B, 2, H), (B, T, H)]),
}


def apart(shapes, seed=0):
    """Random inputs whose largest entry beats the others by at least 0.1 everywhere, the winner
    varying: Maximum has a kink where two inputs tie, and finite differences reach 1e-3 from x."""
    rng = numpy.random.default_rng(seed)
    xs = [rng.normal(size=shapes[0])]
    for shape in shapes[1:]:
        step = (0.1 + numpy.abs(rng.normal(size=shape))) * rng.choice([-1.0, 1.0], size=shape)
        top, bottom = numpy.maximum.reduce(numpy.broadcast_arrays(*xs)), numpy.minimum.reduce(
            numpy.broadcast_arrays(*xs))
        xs.append(numpy.where(step > 0, top + step, bottom + step))
    return xs


@pytest.mark.parametrize("name", MERGES)
def test_merge_layers_gradcheck(name):
    make, shapes = MERGES[name]
    xs = [normal(*s, seed=k) for k, s in enumerate(shapes)]
    if "Maximum" in name:   # no two inputs within the finite differences' reach of each other (a kink)
        xs = apart(shapes)
        stacked = numpy.stack(numpy.broadcast_arrays(*xs))
        top2 = numpy.sort(stacked, axis=0)[-2:]
        assert (top2[1] - top2[0]).min() > 0.01
        assert set(stacked.argmax(axis=0).ravel()) == set(range(len(xs)))   # every input wins somewhere
    report = gradcheck(make(), xs)
    report.assert_ok(TOL)
    assert [c.shape for c in report.checks] == [tuple(s) for s in shapes]


def test_merge_layers_compute_what_they_say():
    a, b, c = normal(B, T, H, seed=1), normal(B, T, H, seed=2), normal(B, 1, H, seed=3)
    numpy.testing.assert_allclose(Add()([a, b, c]), a + b + c)
    numpy.testing.assert_allclose(Subtract()([a, c]), a - c)
    numpy.testing.assert_allclose(Multiply()([a, b, c]), a * b * c)
    numpy.testing.assert_allclose(Average()([a, b, c]), (a + b + c) / 3)
    numpy.testing.assert_allclose(Maximum()([a, b, c]), numpy.maximum(numpy.maximum(a, b), c))
    numpy.testing.assert_allclose(Concatenate(axis=1)([a, c]), numpy.concatenate([a, c], axis=1))


# --- Activation, Lambda, Reshape, Permute -------------------------------------------------------
OTHER_LAYERS = {
    "Activation tanh": lambda: Activation("tanh"),
    "Activation softmax": lambda: Activation("softmax"),
    "Activation sigmoid": lambda: Activation(activations.sigmoid),
    "Lambda gated": lambda: Lambda(lambda x: ops.tanh(x[..., :2]) * ops.sigmoid(x[..., 2:])),
    "Lambda reduction": lambda: Lambda(lambda x: ops.mean(ops.square(x), axis=1, keepdims=True) + x),
    "Reshape": lambda: Reshape((T * H,)),
    "Reshape with -1": lambda: Reshape((-1, 2)),
    "Permute (2, 1)": lambda: Permute((2, 1)),
}


@pytest.mark.parametrize("name", OTHER_LAYERS)
def test_activation_lambda_reshape_permute_gradcheck(name):
    layer = OTHER_LAYERS[name]()
    x = normal(B, T, H)
    report = gradcheck(layer, x)
    report.assert_ok(TOL)
    assert report.checks[0].shape == (B, T, H)


def test_reshape_and_permute_shapes_match_numpy():
    x = normal(B, T, H)
    numpy.testing.assert_array_equal(Reshape((-1, 2))(x), x.reshape(B, -1, 2))
    numpy.testing.assert_array_equal(Permute((2, 1))(x), x.transpose(0, 2, 1))
    assert Permute((2, 1)).compute_output_shape((None, T, H)) == (None, H, T)
    assert Reshape((-1, 2)).compute_output_shape((None, T, H)) == (None, T * H // 2, 2)


# --- functional models --------------------------------------------------------------------------
def two_in_two_out():
    """A functional model with a sequence input and a vector input, and two outputs."""
    seq, vec = Input(shape=[None, D]), Input(shape=[H])
    z = SimpleRNN(H)(seq)
    s = Add()([z, Dense(H)(vec)])
    y1 = Dense(1)(s)
    y2 = Dense(2, activation="tanh")(Concatenate()([activations.relu(s), vec]))
    return Model(inputs=[seq, vec], outputs=[y1, y2])


def test_a_functional_model_with_two_inputs_and_two_outputs_trains_evaluates_predicts():
    tinyrnn.utils.set_random_seed(0)
    model = two_in_two_out()
    n = 64
    xs = [normal(n, T, D, seed=1), normal(n, H, seed=2)]
    ys = [xs[0][:, -1, :1] + xs[1][:, :1], numpy.tanh(xs[1][:, :2] - xs[0][:, 0, :2])]
    model.compile(loss="mse", optimizer=tinyrnn.optimizers.Adam(learning_rate=0.01))
    before = model.evaluate(xs, ys)
    history = model.fit(xs, ys, epochs=15, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    after = model.evaluate(xs, ys)
    assert isinstance(after, float) and after < 0.7 * before
    preds = model.predict(xs, batch_size=10)
    assert isinstance(preds, list) and [p.shape for p in preds] == [(n, 1), (n, 2)]
    direct = model.forward([backend.asarray(a) for a in xs])
    for p, d in zip(preds, direct):
        numpy.testing.assert_allclose(p, backend.to_numpy(d), rtol=1e-5, atol=1e-6)
    # the loss is the sum of the two outputs' losses
    mse = sum(float(((p - y) ** 2).mean()) for p, y in zip(preds, ys))
    assert after == pytest.approx(mse, rel=1e-4)


def test_a_functional_model_gradchecks_with_random_weights():
    with backend.float_precision("float64"):
        model = two_in_two_out()
    randomize(model, seed=3)
    report = gradcheck(model, [normal(B, T, D, seed=1), normal(B, H, seed=2)])
    report.assert_ok(TOL)
    assert len(report.checks) == 2 + len([k for o in parameter_owners(model.layers) for k in o.params])


def test_functional_model_weights_count_and_summary(capsys):
    model = two_in_two_out()
    weights = model.get_weights()
    sizes = [(D, H), (H, H), (H,), (H, H), (H,), (H, 1), (1,), (2 * H, 2), (2,)]
    assert sorted(w.shape for w in weights) == sorted(sizes)
    assert model.count_params() == sum(int(numpy.prod(s)) for s in sizes)
    new = [normal(*w.shape, seed=k) for k, w in enumerate(weights)]
    model.set_weights(new)
    for w, n in zip(model.get_weights(), new):
        numpy.testing.assert_allclose(w, n, rtol=1e-6)
    with pytest.raises(ValueError, match="expected 9 arrays"):
        model.set_weights(new[:-1])
    model.summary()
    printed = capsys.readouterr().out
    assert f"Total params: {model.count_params():,}" in printed
    for layer in model.layers:
        assert layer.name in printed
    assert "(None, 2)" in printed and "(None, 1)" in printed


def test_a_model_of_one_listed_output_returns_an_array_as_keras_3_does():
    """Model(inputs=[x], outputs=[y]): predict and a call give y, not [y]; [X] and [Y] are accepted."""
    x = Input(shape=[None, D])
    model = Model(inputs=[x], outputs=[Dense(H, activation="tanh")(x)])
    X, Y = normal(8, T, D, seed=1), normal(8, T, H, seed=2)
    predicted = model.predict(X)
    assert isinstance(predicted, numpy.ndarray) and predicted.shape == (8, T, H)
    numpy.testing.assert_array_equal(model.predict([X]), predicted)
    assert isinstance(model(X), numpy.ndarray)
    model.compile(loss="mse", optimizer="sgd")
    assert model.evaluate([X], [Y]) == pytest.approx(model.evaluate(X, Y))
    assert model.evaluate(X, Y) == pytest.approx(float(((predicted - Y) ** 2).mean()), rel=1e-5)
    model.fit([X], [Y], epochs=1, verbose=0)


def test_a_functional_model_used_as_a_layer_of_another_gradchecks():
    with backend.float_precision("float64"):
        x = Input(shape=[None, D])
        inner = Model(inputs=[x], outputs=[Dense(H, activation="tanh")(x)])
        x2 = Input(shape=[None, D])
        outer = Model(x2, Dense(1)(Add()([inner(x2), Dense(H)(x2)])))
    randomize(outer, seed=3)
    report = gradcheck(outer, normal(B, T, D, seed=4))
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + 2 + 2 + 2


# --- shared layers ---------------------------------------------------------------------------------
def test_a_shared_layer_gets_the_sum_of_both_branches_gradients():
    """One Dense on two branches == two Dense with the same weights, gradients added."""
    with backend.float_precision("float64"):
        a, b = Input(shape=[T, D]), Input(shape=[T, D])
        shared = Dense(H, activation="tanh")
        shared_model = Model([a, b], Multiply()([shared(a), activations.sigmoid(shared(b))]))
        a2, b2 = Input(shape=[T, D]), Input(shape=[T, D])
        first, second = Dense(H, activation="tanh"), Dense(H, activation="tanh")
        twin_model = Model([a2, b2], Multiply()([first(a2), activations.sigmoid(second(b2))]))
    randomize(shared, seed=4)
    first.set_weights(shared.get_weights())
    second.set_weights(shared.get_weights())
    xs = [normal(B, T, D, seed=5), normal(B, T, D, seed=6)]
    dy = normal(B, T, H, seed=7)
    for model in (shared_model, twin_model):
        model.zero_grads()
        model.forward(xs)
    assert_close(shared_model.forward(xs), twin_model.forward(xs), 1e-14, "outputs")
    dxs_shared, dxs_twin = shared_model.backward(dy), twin_model.backward(dy)
    for k in range(2):
        assert_close(dxs_shared[k], dxs_twin[k], 1e-14, f"dx[{k}]")
    for key in ("kernel", "bias"):
        both = first.grads[key] + second.grads[key]
        assert numpy.abs(first.grads[key]).max() > 1e-3 and numpy.abs(second.grads[key]).max() > 1e-3
        assert_close(shared.grads[key], both, 1e-14, f"shared {key}")
    assert len(shared_model.get_weights()) == 2 and len(twin_model.get_weights()) == 4
    gradcheck(shared_model, xs).assert_ok(TOL)


def test_a_layer_called_twice_in_a_row_keeps_one_cache_per_call():
    with backend.float_precision("float64"):
        x = Input(shape=[T, D])
        square = Dense(D, activation="tanh")
        model = Model(x, Add()([square(square(x)), x]))
    randomize(model, seed=8)
    gradcheck(model, normal(B, T, D, seed=9)).assert_ok(TOL)


# --- Keras-style subclassing -------------------------------------------------------------------------
class MyDense(Layer):
    """Keras's example: build with add_weight, call with operations."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        return ops.tanh(ops.matmul(inputs, self.w) + self.b)


class GatedActivationUnit(Layer):
    """WaveNet's gate, as the course writes it: no weights, only call()."""

    def call(self, inputs):
        n_filters = inputs.shape[-1] // 2
        return activations.tanh(inputs[..., :n_filters]) * activations.sigmoid(inputs[..., n_filters:])


def test_a_subclassed_layer_with_build_add_weight_call_trains_in_sequential():
    tinyrnn.utils.set_random_seed(1)
    model = Sequential([SimpleRNN(2 * H, return_sequences=True, input_shape=[None, D]), GatedActivationUnit(),
                        MyDense(3), SimpleRNN(H), Dense(1)])
    x = normal(64, T, D, seed=1)
    y = x[:, -1, :1] - x[:, 0, 1:2]
    model.compile(loss="mse", optimizer=tinyrnn.optimizers.Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=12, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    my_dense = model.layers[2]
    assert [w.shape for w in my_dense.get_weights()] == [(H, 3), (3,)]   # built once (no super().build())
    model.set_weights(model.get_weights())
    assert model.count_params() == sum(w.size for w in model.get_weights())
    assert model.predict(x).shape == (64, 1)


def test_a_subclassed_layer_gradchecks_its_weights_and_input():
    with backend.float_precision("float64"):
        layer = MyDense(H)
        layer(normal(B, T, D))
    randomize(layer, seed=2)
    report = gradcheck(layer, normal(B, T, D, seed=3))
    report.assert_ok(TOL)
    assert [c.shape for c in report.checks] == [(B, T, D), (D, H), (H,)]
    gradcheck(GatedActivationUnit(), normal(B, T, 2 * H)).assert_ok(TOL)


class ResidualNet(Model):
    """A subclassed model: layers as attributes, call() composing them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rnn = SimpleRNN(H, return_sequences=True)
        self.gate = GatedActivationUnit()
        self.project = Dense(D)
        self.head = Dense(1)

    def call(self, inputs):
        z = self.project(self.gate(ops.concatenate([self.rnn(inputs), self.rnn(inputs)], axis=-1)))
        return self.head((z + inputs)[:, -1])


def test_a_subclassed_model_trains_and_gradchecks():
    tinyrnn.utils.set_random_seed(2)
    model = ResidualNet()
    x = normal(64, T, D, seed=4)
    y = x[:, -1, :1] * 0.5 + x[:, 1, 2:]
    model.compile(loss="mse", optimizer=tinyrnn.optimizers.Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert model.predict(x).shape == (64, 1)
    with backend.float_precision("float64"):
        model = ResidualNet()
        model(normal(B, T, D))
    randomize(model, seed=5)
    report = gradcheck(model, normal(B, T, D, seed=6))
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + 3 + 2 + 2          # input, rnn (W, U, b), project, head


# --- a cell in Keras's cell protocol: the course's LN cell, written exactly as for Keras -------------
def compare_layers(mine, reference, x, seed=10):
    """Same random weights into both; outputs, input gradient, every weight gradient to 1e-10."""
    with backend.float_precision("float64"):
        mine(x)
        reference(x)
    weights = [normal(*w.shape, seed=seed + k) * 0.5 for k, w in enumerate(reference.get_weights())]
    reference.set_weights(weights)
    mine.set_weights(weights)
    y_mine, y_ref = mine.forward(x), reference.forward(x)
    y_mine = y_mine if isinstance(y_mine, list) else [y_mine]
    y_ref = y_ref if isinstance(y_ref, list) else [y_ref]
    assert len(y_mine) == len(y_ref)
    for k, (a, b) in enumerate(zip(y_mine, y_ref)):
        assert_close(a, b, 1e-10, f"output {k}")
    dys = [normal(*y.shape, seed=seed + 100 + k) for k, y in enumerate(y_ref)]
    mine.zero_grads()
    reference.zero_grads()
    dx_mine = mine.backward(dys if len(dys) > 1 else dys[0])
    dx_ref = reference.backward(dys if len(dys) > 1 else dys[0])
    assert_close(dx_mine, dx_ref, 1e-10, "dx")
    g_mine, g_ref = grads_in_weight_order(mine), grads_in_weight_order(reference)
    assert len(g_mine) == len(g_ref) == len(weights)
    for k, (a, b) in enumerate(zip(g_mine, g_ref)):
        assert numpy.abs(b).max() > 1e-6, f"gradient {k} is zero: the comparison would prove nothing"
        assert_close(a, b, 1e-10, f"weight gradient {k}")


LN_OPTIONS = {"sequences": {"return_sequences": True},
              "sequences and state": {"return_sequences": True, "return_state": True},
              "last step and state": {"return_sequences": False, "return_state": True},
              "last step": {}}


@pytest.mark.parametrize("kwargs", LN_OPTIONS.values(), ids=LN_OPTIONS.keys())
def test_a_keras_protocol_ln_cell_equals_the_built_in_ln_cell(kwargs):
    with backend.float_precision("float64"):
        mine, reference = RNN(KerasLNCell(H), **kwargs), RNN(LNSimpleRNNCell(H), **kwargs)
    assert mine.recorded and not reference.recorded
    compare_layers(mine, reference, normal(B, T, D, seed=11))


def test_a_keras_protocol_ln_cell_gradchecks():
    with backend.float_precision("float64"):
        layer = RNN(KerasLNCell(H), return_sequences=True)
        layer(normal(B, T, D))
    randomize(layer, seed=12)
    report = gradcheck(layer, normal(B, T, D, seed=13))
    report.assert_ok(TOL)
    assert [c.shape for c in report.checks] == [(B, T, D), (D, H), (H, H), (H,), (H,), (H,)]


def test_a_keras_protocol_cell_in_a_functional_model_with_unknown_time_steps_trains_and_gradchecks():
    with backend.float_precision("float64"):
        x = Input(shape=[None, D])
        sequence, state = RNN(KerasLNCell(H), return_sequences=True, return_state=True)(x)
        model = Model(x, [Dense(1)(sequence), state])
    predicted = model.predict(normal(B, 7, D))
    assert [p.shape for p in predicted] == [(B, 7, 1), (B, H)]
    randomize(model, seed=20)
    # eps 3e-4: at these weights the layer norm's higher derivatives make eps = 1e-3 differences
    # miss by 2e-7 (the built-in LNSimpleRNNCell too); the backward itself is exact (1e-10 above)
    report = gradcheck(model, normal(B, T, D, seed=21), eps=3e-4)
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + 5 + 2


class StartsFromOnes(Layer):
    """A Keras-protocol cell with its own initial state (get_initial_state) and a tuple of new states."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.state_size = self.output_size = units
        self.cell = GRUCell(units)

    def get_initial_state(self, batch_size=None):
        return [numpy.ones((batch_size, self.state_size))]

    def call(self, inputs, states):
        output, new_states = self.cell(inputs, states[0])
        return output, tuple(new_states)


def test_a_cell_with_get_initial_state_starts_there_and_gradchecks():
    with backend.float_precision("float64"):
        mine = RNN(StartsFromOnes(H), return_sequences=True)
        x = normal(B, T, D, seed=22)
        y = mine(x)
    cell = mine.cell.cell
    W, U, b = (cell.params[k] for k in ("kernel", "recurrent_kernel", "bias"))
    h = numpy.ones((B, H))                       # GRU step from h_0 = 1, reset_after (Keras's default)
    z_x, z_h = x[:, 0] @ W + b[0], h @ U + b[1] if b.ndim == 2 else None
    assert z_h is not None, "expected a reset_after GRU bias (2, 3H)"
    zg = 1 / (1 + numpy.exp(-(z_x[:, :H] + z_h[:, :H])))
    rg = 1 / (1 + numpy.exp(-(z_x[:, H:2 * H] + z_h[:, H:2 * H])))
    h1 = zg * h + (1 - zg) * numpy.tanh(z_x[:, 2 * H:] + rg * z_h[:, 2 * H:])
    assert_close(y[:, 0], h1, 1e-12, "first step from h_0 = 1")
    gradcheck(mine, x).assert_ok(TOL)


class Noisy(Model):
    """Dropout inside a subclassed model's call (which takes no training argument)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.drop, self.head = Dense(H), tinyrnn.layers.Dropout(0.5), Dense(1)

    def call(self, inputs):
        return self.head(self.drop(self.hidden(inputs)))


def test_layers_inside_a_call_run_in_the_outer_training_mode():
    model = Noisy()
    x = normal(8, D)
    numpy.testing.assert_array_equal(model.predict(x), model.predict(x))          # inference: no dropout
    assert not numpy.allclose(model.forward(x, training=True), model.forward(x, training=True))


class Wrapped(Layer):
    """A custom cell that calls a built-in cell Keras-style (two states for an LSTM)."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size      # Keras's spelling: units per state
        self.output_size = cell.units

    def call(self, inputs, states):
        output, new_states = self.cell(inputs, states)
        return output, new_states


CELLS = {"lstm": LSTMCell, "gru": GRUCell, "peephole lstm": PeepholeLSTMCell, "simple": SimpleRNNCell,
         "layer-normalised": LNSimpleRNNCell}


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("return_state", [False, True], ids=["", "return_state"])
def test_built_in_cells_called_keras_style_equal_the_built_in_layers(kind, return_state):
    """A step called as cell(x_t, states) (c_{t-1} given, not zero) has the four phases' gradients."""
    with backend.float_precision("float64"):
        mine = RNN(Wrapped(CELLS[kind](H)), return_sequences=True, return_state=return_state)
        reference = RNN(CELLS[kind](H), return_sequences=True, return_state=return_state)
    compare_layers(mine, reference, normal(B, T, D, seed=14))
    if return_state:
        assert len(mine.forward(normal(B, T, D))) == (3 if "lstm" in kind else 2)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_keras_protocol_cells_equal_the_lstm_and_gru_layers(kind):
    with backend.float_precision("float64"):
        cell, layer = (LSTMCell(H), LSTM) if kind == "lstm" else (GRUCell(H), GRU)
        mine = RNN(Wrapped(cell), return_sequences=True)
        reference = layer(H, return_sequences=True)
    compare_layers(mine, reference, normal(B, T, D, seed=16))


def test_rnn_with_a_built_in_cell_takes_the_hand_derived_path():
    with backend.float_precision("float64"):
        layer, reference = RNN(SimpleRNNCell(H), return_sequences=True), SimpleRNN(H, return_sequences=True)
    assert not layer.recorded and not layer.records_call()
    compare_layers(layer, reference, normal(B, T, D, seed=15))
    assert layer.hidden_grad_norms.shape == (T,)     # the four-phase backward ran (the recorded one has none)


# --- bad use gets a clear error ------------------------------------------------------------------------
class ReturnsAnArray(Layer):
    def call(self, inputs):
        return numpy.zeros((2, 3))


class ReturnsAWeight(Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],))

    def call(self, inputs):
        return self.w * 2.0


class NeitherCallNorForward(Layer):
    pass


def test_a_call_that_returns_something_not_computed_from_its_inputs_is_refused():
    for layer in (ReturnsAnArray(), ReturnsAWeight()):
        with pytest.raises(TypeError, match=r"call\(\) must return values computed from its inputs"):
            layer(normal(B, D))


def test_a_model_whose_outputs_do_not_depend_on_its_inputs_is_refused():
    x, other = Input(shape=[D]), Input(shape=[D])
    with pytest.raises(ValueError, match="not in inputs="):
        Model(inputs=x, outputs=Dense(H)(Add()([x, other])))
    with pytest.raises(ValueError, match="computed from the model's inputs"):
        Model(inputs=x, outputs=other)
    with pytest.raises(TypeError, match="Model outputs must be results of layers"):
        Model(inputs=x, outputs=normal(B, D))
    with pytest.raises(TypeError, match="tinyrnn.Input"):
        Model(inputs=normal(B, D), outputs=Dense(H)(x))


def test_operations_on_mismatched_shapes_say_which_shapes():
    a, b = normal(2, 3), normal(4, 5)
    for x, y in ((a, b), (tinyrnn.graph.Value(a), tinyrnn.graph.Value(b))):
        with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4, 5\) do not broadcast"):
            ops.add(x, y)
        with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not chain"):
            ops.matmul(x, y)
        with pytest.raises(ValueError, match=r"concatenate.*\(2, 3\).*\(4, 5\)"):
            ops.concatenate([x, y], axis=-1)
        with pytest.raises(ValueError, match=r"stack: shapes \(2, 3\), \(4, 5\) differ"):
            ops.stack([x, y])
    with pytest.raises(ValueError, match=r"concatenate: .* differ except on axis 1"):
        ops.concatenate([Input(shape=[None, 3]), Input(shape=[None, 5])], axis=1)
    ops.concatenate([Input(shape=[2, 3]), Input(shape=[None, 3])], axis=1)        # the axis may differ
    with pytest.raises(ValueError, match=r"do not broadcast"):
        tinyrnn.graph.Value(a) * b
    with pytest.raises(ValueError, match="cannot be merged"):
        Add()([a, b])
    with pytest.raises(ValueError, match="match except on that axis"):
        Concatenate(axis=-1)([a, b])
    x = Input(shape=[None, 3])
    with pytest.raises(ValueError, match=r"do not broadcast"):
        ops.add(x, Input(shape=[None, 5]))


def test_backward_before_forward_and_twice_after_one_forward_are_refused():
    x = normal(B, T, 2 * H)
    layer = GatedActivationUnit()
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward\(\) first"):
        layer.backward(normal(B, T, H))
    model = two_in_two_out()
    dys = [normal(B, 1), normal(B, 2)]
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward\(\) first"):
        model.backward(dys)
    model.forward([normal(B, T, D), normal(B, H)])
    model.backward(dys)
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward\(\) first"):
        model.backward(dys)
    layer.forward(x)
    layer.backward(normal(B, T, H))
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(normal(B, T, H))


def test_a_layer_with_neither_call_nor_forward_says_what_to_write():
    with pytest.raises(NotImplementedError, match=r"needs call\(inputs\).*or forward\(x, training\)"):
        NeitherCallNorForward()(normal(B, D))
    model = Sequential([Dense(H, input_shape=[D]), NeitherCallNorForward()])
    model.compile(loss="mse", optimizer="sgd")
    with pytest.raises(NotImplementedError, match=r"needs call\(inputs\)"):
        model.fit(normal(8, D), normal(8, H), verbose=0)


def test_rnn_given_something_that_is_not_a_cell_says_what_a_cell_is():
    for not_a_cell in (Dense(H), "lstm", LSTM(H)):
        with pytest.raises(TypeError, match=r"RNN needs a cell.*state_size"):
            RNN(not_a_cell)
