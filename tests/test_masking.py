"""Masks: made by Masking and Embedding(mask_zero=True), carried to the next layers (Sequential and
functional), consumed by layers that take ``mask``, and left out by every loss and metric.

Gradients are checked in float64 with random upstream gradients and random biases; the Keras 3
fixture (tests/data/make_keras_embedding_mask.py) fixes values, the masked loss and its gradient.
``CarryOver`` is a small test-only layer that consumes a mask the way a recurrent layer does (a
masked step carries the previous output on, and gets no gradient), so the flow is tested on its own.
"""

from __future__ import annotations

import warnings

import numpy
import pytest
from helpers import DATA, assert_close, loss_numeric_gradient, randomize_params
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyrnn
from tinyrnn import Input, Model, Sequential, backend, gradcheck, initializers, losses, metrics
from tinyrnn.layers import (
    GRU,
    LSTM,
    Activation,
    Add,
    BatchNormalization,
    Concatenate,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Lambda,
    Layer,
    LayerNormalization,
    Masking,
    Permute,
    RepeatVector,
    Reshape,
    SimpleRNN,
    TimeDistributed,
)

B, T, D, H, C = 2, 5, 3, 4, 6          # distinct sizes, so a wrong axis shows
LENGTHS = [5, 3]                       # a right-padded batch: row 1 has 2 padded steps


def host(a):
    return numpy.asarray(backend.to_numpy(a))


class CarryOver(Layer):
    """Test-only mask consumer: y_t = y_{t-1} + x_t W at a step that counts, y_t = y_{t-1} at a
    masked one (the state carried unchanged, as a recurrent layer does); the mask passes on.

    Shapes: x (B, T, D) -> y (B, T, H); backward: dz_t = sum_{s >= t} dy_s, zero at masked steps."""

    weight_names = ("kernel",)

    def __init__(self, units=H, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.add_param("kernel", initializers.glorot_uniform((input_shape[-1], self.units)))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def compute_mask(self, inputs, mask=None):
        return mask

    def forward(self, x, training=False, mask=None):
        z = x @ self.params["kernel"]                              # (B, T, H)
        if mask is not None:
            z = z * mask[..., None]
        self._remember((x, mask))
        return backend.xp.cumsum(z, axis=1)

    def backward(self, dy):
        x, mask = self._recall()
        dz = backend.xp.cumsum(dy[:, ::-1], axis=1)[:, ::-1]       # sum over s >= t
        if mask is not None:
            dz = dz * mask[..., None]
        self.grads["kernel"] += x.reshape(-1, x.shape[-1]).T @ dz.reshape(-1, self.units)
        return dz @ self.params["kernel"].T

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def padded_batch(lengths=LENGTHS, t=T, d=D, seed=0, mask_value=0.0):
    """(x (B, t, d) right-padded with mask_value, mask (B, t) bool)."""
    rng = numpy.random.default_rng(seed)
    x = numpy.full((len(lengths), t, d), mask_value)
    mask = numpy.zeros((len(lengths), t), bool)
    for b, n in enumerate(lengths):
        x[b, :n] = rng.normal(size=(n, d))
        mask[b, :n] = True
    return x, mask


class LossOf:
    """gradcheck target: the model's loss, mask and all, as a function of its weights.

    ``forward(dummy)`` returns [L] (the data are fixed: a perturbed padded entry would change
    the mask, a step, not a slope); ``backward(u)`` runs dL/dy_pred * u through the model."""

    def __init__(self, model, x, y, loss):
        self.model, self.x, self.y, self.loss = model, x, y, loss
        self.layers, self.built = model.layers, True

    def forward(self, dummy, training=False):
        self.y_pred = self.model.forward(self.x, training=training)
        value = self.loss(self.y, self.y_pred, mask=self.model.output_mask)
        return backend.xp.reshape(value, (1,))

    def backward(self, u):
        self.model.backward(self.loss.gradient(self.y, self.y_pred, mask=self.model.output_mask) * u[0])
        return backend.xp.zeros((1,))

    def __call__(self, dummy):
        return self.forward(dummy)


def built(model, shape, seed=0):
    """The model built in float64 with random weights (biases too)."""
    model.build((None, *shape[1:]))
    for layer in model.layers:
        randomize_params(layer, seed=seed)
        for p in layer.params.values():
            p[...] = p.astype("float64")
    return model


# --- the Masking layer -----------------------------------------------------------------------
def test_masking_output_and_mask_follow_keras():
    x, mask = padded_batch(mask_value=-1.0)
    x[0, 1, 0] = -1.0                                  # one feature equal to mask_value does not mask
    layer = Masking(mask_value=-1.0)
    y, out_mask = layer.forward_with_mask(backend.xp.asarray(x), None)
    numpy.testing.assert_array_equal(host(out_mask), mask)
    numpy.testing.assert_array_equal(host(y), x * mask[..., None])   # masked steps output zeros


def test_masking_backward_is_dy_at_the_steps_that_count_and_zero_elsewhere():
    """Central differences at the entries of steps that count (float64, random upstream gradient);
    a padded entry's perturbation unmasks its step (a jump, not a slope), and its gradient is 0."""
    x, mask = padded_batch(seed=1)
    layer = Masking()
    u = numpy.random.default_rng(2).normal(size=x.shape)
    layer.forward(backend.xp.asarray(x))
    dx = host(layer.backward(backend.xp.asarray(u)))
    h = 1e-6
    numeric = numpy.zeros_like(x)
    for idx in zip(*numpy.nonzero(numpy.broadcast_to(mask[..., None], x.shape))):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        f = [float((host(layer.forward(backend.xp.asarray(a))) * u).sum()) for a in (plus, minus)]
        numeric[idx] = (f[0] - f[1]) / (2 * h)
        layer._recall()
    worst = numpy.abs(dx - numeric).max() / numpy.abs(numeric).max()
    assert worst <= 1e-7, f"worst relative error {worst:.2e}"
    assert (dx[~mask] == 0).all() and numpy.abs(dx[mask]).min() > 0


# --- which layers pass a mask on (Keras 3's supports_masking) ---------------------------------
@pytest.mark.parametrize("layer, passes", [
    (Dense(H), True), (Dropout(0.5), True), (Activation("tanh"), True), (LayerNormalization(), True),
    (BatchNormalization(), True), (TimeDistributed(Dense(H)), True), (Masking(), True),
    (Embedding(7, H, mask_zero=True), True), (Embedding(7, H), False), (Add(), True), (Concatenate(), True),
    (Flatten(), False), (RepeatVector(2), False), (Reshape((T * D,)), False), (Permute((2, 1)), False),
    (Conv1D(H, 2), False), (Lambda(lambda v: v * 2), False),
], ids=lambda v: type(v).__name__ if isinstance(v, Layer) else str(v))
def test_supports_masking_as_in_keras(layer, passes):
    assert layer.supports_masking is passes


def test_a_mask_flows_through_a_sequential_and_stops_at_a_layer_without_mask_support():
    x, mask = padded_batch()
    model = Sequential([Masking(input_shape=[None, D]), Dense(H, activation="tanh"), Dropout(0.3),
                        CarryOver(), TimeDistributed(Dense(2))])
    model.build()
    model.forward(backend.xp.asarray(x, dtype="float32"), training=True)
    numpy.testing.assert_array_equal(host(model.output_mask), mask)
    flat = Sequential([Masking(input_shape=[T, D]), Flatten(), Dense(2)])
    flat.build()
    with pytest.warns(UserWarning, match=r"'flatten(_\d+)?' \(Flatten\).*does not support masking"):
        flat.forward(backend.xp.asarray(x, dtype="float32"))
    assert flat.output_mask is None
    plain = Sequential([Dense(H, input_shape=[None, D]), CarryOver(), Dense(2)])   # no mask anywhere
    plain.build()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.forward(backend.xp.asarray(x, dtype="float32"))
    assert plain.output_mask is None


def test_the_consumer_gets_the_mask_and_carries_its_state_through_masked_steps():
    x, mask = padded_batch()
    model = Sequential([Masking(input_shape=[None, D]), CarryOver()])
    model.build()
    y = host(model.forward(backend.xp.asarray(x)))
    numpy.testing.assert_array_equal(y[1, 3:], numpy.broadcast_to(y[1, 2], (2, H)))   # carried on


def test_functional_masks_are_computed_from_each_batch_and_explicit_masks_work():
    inputs = Input(shape=[None, D])
    outputs = Dense(2)(CarryOver()(Masking()(inputs)))
    model = Model(inputs, outputs)
    for lengths in ([5, 3], [2, 4]):                     # a mask depends on the data: never frozen
        x, mask = padded_batch(lengths)
        model.forward(backend.xp.asarray(x, dtype="float32"))
        numpy.testing.assert_array_equal(host(model.output_mask), mask)
    x_in, mask_in = Input(shape=[None, D]), Input(shape=[None])
    explicit = Model([x_in, mask_in], Dense(2)(CarryOver()(x_in, mask=mask_in)))
    x, mask = padded_batch([4, 1])
    y = host(explicit.predict([x, mask.astype("float32")]))
    explicit.forward([backend.xp.asarray(x, dtype="float32"), backend.xp.asarray(mask, dtype="float32")])
    numpy.testing.assert_array_equal(host(explicit.output_mask), mask)
    numpy.testing.assert_allclose(y[1, 1:], numpy.broadcast_to(y[1, 0], (T - 1, 2)), rtol=1e-6)


def test_merge_layers_combine_masks_as_keras():
    a, b = numpy.array([[1, 1, 0], [1, 0, 0]], bool), numpy.array([[1, 0, 0], [1, 1, 0]], bool)
    xs = [numpy.zeros((2, 3, D)), numpy.zeros((2, 3, D))]
    numpy.testing.assert_array_equal(host(Add().compute_mask(xs, [a, b])), a | b)
    assert Add().compute_mask(xs, [a, None]) is None
    everywhere = numpy.ones((2, 3), bool)                # an input without a mask counts everywhere
    numpy.testing.assert_array_equal(host(Concatenate().compute_mask(xs, [a, None])), everywhere)
    numpy.testing.assert_array_equal(host(Concatenate(axis=1).compute_mask(xs, [a, b])),
                                     numpy.concatenate([a, b], axis=1))


def test_a_masking_model_saves_and_loads(tmp_path):
    tinyrnn.layers.register(CarryOver)
    try:
        model = Sequential([Masking(mask_value=-2.0, input_shape=[None, D]), CarryOver(), Dense(2)])
        model.compile(loss="mse")
        x, mask = padded_batch(mask_value=-2.0)
        x = x.astype("float32")
        y = model.predict(x)
        model.save(tmp_path / "m.npz")
        loaded = tinyrnn.load_model(tmp_path / "m.npz")
        numpy.testing.assert_array_equal(loaded.predict(x), y)
        numpy.testing.assert_array_equal(host(loaded.output_mask), mask)
        assert loaded.layers[0].mask_value == -2.0
    finally:
        tinyrnn.layers._REGISTRY.pop("CarryOver")


# --- masked losses: values and gradients --------------------------------------------------------
def softmax(z):
    e = numpy.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


CROSSENTROPIES = {"sparse": losses.SparseCategoricalCrossentropy,
                  "categorical": losses.CategoricalCrossentropy,
                  "binary": losses.BinaryCrossentropy}


def targets(kind, rng, shape):
    ids = rng.integers(0, shape[-1], size=shape[:-1])
    if kind == "sparse":
        return ids
    if kind == "binary":
        return rng.integers(0, 2, size=shape).astype("float64")
    return numpy.eye(shape[-1])[ids]


@pytest.mark.parametrize("kind", CROSSENTROPIES)
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_masked_crossentropy_gradient_matches_central_differences(kind, from_logits):
    rng = numpy.random.default_rng(hash((kind, from_logits)) % 1000)
    _, mask = padded_batch()
    z = rng.normal(scale=2.0, size=(B, T, C))
    y_pred = z if from_logits else softmax(z / 4)       # probabilities away from 0 and 1
    y_true = targets(kind, rng, (B, T, C))
    loss = CROSSENTROPIES[kind](from_logits=from_logits)
    analytic = host(loss.gradient(y_true, backend.xp.asarray(y_pred), mask=mask))
    numeric = loss_numeric_gradient(lambda t, p: loss(t, p, mask=mask), y_true, y_pred)
    worst = numpy.abs(analytic - numeric).max() / numpy.abs(numeric).max()
    assert worst <= 1e-7, f"{loss}: worst relative error {worst:.2e}"
    assert (analytic[~mask] == 0).all()                 # masked steps get no gradient


@pytest.mark.parametrize("kind", CROSSENTROPIES)
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "softmax"])
def test_softmax_and_crossentropy_with_a_mask_pass_gradcheck(kind, from_logits):
    """Dense(C, softmax) + cross-entropy on probabilities, Dense(C) + cross-entropy on logits,
    behind Masking and a mask consumer: every weight of the masked loss, float64."""
    rng = numpy.random.default_rng(3)
    x, _ = padded_batch(seed=4)
    model = built(Sequential([Masking(input_shape=[None, D]), CarryOver(),
                              Dense(C, activation=None if from_logits else "softmax")]), x.shape, seed=5)
    y = targets(kind, rng, (B, T, C))
    report = gradcheck(LossOf(model, x, y, CROSSENTROPIES[kind](from_logits=from_logits)), numpy.zeros(1))
    report.assert_ok(1e-7)
    assert model.output_mask is not None


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_softmax_activation_with_a_masked_loss_passes_gradcheck(activation):
    x, mask = padded_batch(seed=6)
    model = built(Sequential([Masking(input_shape=[None, D]), Dense(C), Activation(activation)]), x.shape,
                  seed=7)
    rng = numpy.random.default_rng(8)
    loss = losses.BinaryCrossentropy() if activation == "sigmoid" else losses.CategoricalCrossentropy()
    y = targets("binary" if activation == "sigmoid" else "categorical", rng, (B, T, C))
    gradcheck(LossOf(model, x, y, loss), numpy.zeros(1)).assert_ok(1e-7)


@pytest.mark.parametrize("loss", [losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(0.5)],
                         ids=["mse", "mae", "huber"])
def test_masked_regression_losses_value_and_gradient(loss):
    rng = numpy.random.default_rng(9)
    _, mask = padded_batch()
    y_true, y_pred = rng.normal(size=(B, T, 2)), rng.normal(size=(B, T, 2))
    expected = float(loss(y_true[mask], y_pred[mask]))                # the loss of the valid steps only
    assert float(loss(y_true, backend.xp.asarray(y_pred), mask=mask)) == pytest.approx(expected, rel=1e-12)
    analytic = host(loss.gradient(y_true, backend.xp.asarray(y_pred), mask=mask))
    numeric = loss_numeric_gradient(lambda t, p: loss(t, p, mask=mask), y_true, y_pred)
    assert_close(analytic, numeric, atol=1e-8, name=repr(loss))
    assert (analytic[~mask] == 0).all()


@pytest.mark.parametrize("kind", CROSSENTROPIES)
def test_a_masked_crossentropy_is_the_crossentropy_of_the_valid_steps(kind):
    rng = numpy.random.default_rng(10)
    _, mask = padded_batch()
    p = softmax(rng.normal(size=(B, T, C)))
    y = targets(kind, rng, (B, T, C))
    loss = CROSSENTROPIES[kind]()
    assert float(loss(y, p, mask=mask)) == pytest.approx(float(loss(y[mask], p[mask])), rel=1e-12)
    assert float(loss(y, p, mask=numpy.zeros((B, T), bool))) == 0.0   # nothing counts: 0, as Keras


def test_masked_metrics_count_only_the_steps_that_count():
    rng = numpy.random.default_rng(11)
    _, mask = padded_batch()
    p, ids = softmax(rng.normal(size=(B, T, C))), rng.integers(0, C, size=(B, T))
    values = metrics.sparse_categorical_accuracy(ids, p)
    assert metrics.reduce(values, mask) == pytest.approx(float(host(values)[mask].mean()))
    assert metrics.reduce(values, numpy.zeros((B, T), bool)) == 0.0


# --- a model's loss uses its output's mask, in fit, evaluate and the gradient ---------------------
def test_a_sequential_full_loss_gradient_with_a_right_padded_batch():
    x, _ = padded_batch(seed=12)
    rng = numpy.random.default_rng(13)
    model = built(Sequential([Masking(input_shape=[None, D]), CarryOver(), Dense(H, activation="tanh"),
                              Dense(2)]), x.shape, seed=14)
    loss = LossOf(model, x, rng.normal(size=(B, T, 2)), losses.MeanSquaredError())
    report = gradcheck(loss, numpy.zeros(1))
    report.assert_ok(1e-7)


def test_fit_and_evaluate_leave_masked_steps_out():
    x, mask = padded_batch(seed=15)
    x = x.astype("float32")
    rng = numpy.random.default_rng(16)
    ids = rng.integers(0, C, size=(B, T))
    model = Sequential([Masking(input_shape=[None, D]), CarryOver(), Dense(C, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    loss, accuracy = model.evaluate(x, ids)
    p = model.predict(x)
    assert loss == pytest.approx(float(losses.SparseCategoricalCrossentropy()(ids[mask], p[mask])), rel=1e-6)
    assert accuracy == pytest.approx(float((p.argmax(-1) == ids)[mask].mean()))
    noisy = ids.copy()
    noisy[~mask] = (ids[~mask] + 1) % C                   # other targets at the padded steps
    assert model.evaluate(x, noisy) == pytest.approx([loss, accuracy])
    model.zero_grads()
    y_pred = model.forward(backend.xp.asarray(x), training=True)
    _, dy = model._loss_and_gradient(backend.xp.asarray(ids, dtype="float32"), y_pred)
    assert (host(dy)[~mask] == 0).all()
    history = model.fit(x, ids, epochs=3, batch_size=1, verbose=0).history
    assert all(numpy.isfinite(history["loss"]))


def test_epoch_metrics_weigh_steps_and_the_loss_weighs_rows_as_keras():
    """Two batches (3 rows, then 1): Keras's loss is the rows-weighted mean of the batches' masked
    means; its metrics count every valid step alike."""
    x, mask = padded_batch([5, 3, 1, 2], seed=17)
    x = x.astype("float32")
    ids = numpy.random.default_rng(18).integers(0, C, size=(4, T))
    model = Sequential([Masking(input_shape=[None, D]), CarryOver(), Dense(C, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(x, ids, batch_size=3)
    p = model.predict(x)
    ce = losses.SparseCategoricalCrossentropy()
    per_batch = [float(ce(ids[s][mask[s]], p[s][mask[s]])) for s in (slice(0, 3), slice(3, 4))]
    assert loss == pytest.approx((3 * per_batch[0] + per_batch[1]) / 4, rel=1e-6)
    assert accuracy == pytest.approx(float((p.argmax(-1) == ids)[mask].mean()))


# --- padding changes nothing ---------------------------------------------------------------------
def loss_and_grads(model, x, y):
    model.zero_grads()
    y_pred = model.forward(backend.xp.asarray(x))
    loss, dy = model._loss_and_gradient(backend.xp.asarray(y), y_pred)
    model.backward(dy)
    return loss, [host(g).copy() for _, _, g in model.trainable_variables()]


def padding_case(source, lengths, seed):
    """(model, x, y, loss name, padding of one step) for a mask from Masking (floats, MSE) or from
    Embedding(mask_zero=True) (token ids, sparse cross-entropy)."""
    rng = numpy.random.default_rng(seed)
    if source == "masking":
        x, _ = padded_batch(lengths, t=4, seed=seed)
        model = Sequential([Masking(input_shape=[None, D]), CarryOver(), Dense(2)])
        return model, x, rng.normal(size=(len(lengths), 4, 2)), "mse", numpy.zeros(D)
    x = numpy.zeros((len(lengths), 4), "int64")
    for b, n in enumerate(lengths):
        x[b, :n] = rng.integers(1, 7, size=n)
    model = Sequential([Embedding(7, D, mask_zero=True), CarryOver(), Dense(C, activation="softmax")])
    return model, x, rng.integers(0, C, size=x.shape).astype("float64"), "sparse_categorical_crossentropy", 0


@settings(max_examples=15, deadline=None)
@given(source=st.sampled_from(["masking", "embedding"]), lengths=st.lists(st.integers(1, 4), min_size=1,
       max_size=3), extra=st.integers(1, 3), seed=st.integers(0, 1000))
def test_appending_padding_leaves_loss_and_gradients_unchanged(source, lengths, extra, seed):
    with backend.float_precision("float64"):
        model, x, y, loss, pad = padding_case(source, lengths, seed)
        built(model, x.shape, seed=seed)
        model.compile(loss=loss)
        value, grads = loss_and_grads(model, x, y)
        rng = numpy.random.default_rng(seed + 1)
        x_long = numpy.concatenate([x, numpy.broadcast_to(pad, (len(lengths), extra, *x.shape[2:]))], axis=1)
        y_long = numpy.concatenate([y, rng.permutation(y.reshape(-1))[:y[:, :extra].size].reshape(
            y[:, :extra].shape)], axis=1)                 # any targets at the new steps
        value_long, grads_long = loss_and_grads(model, x_long.astype(x.dtype), y_long)
    assert value_long == pytest.approx(value, rel=1e-12)
    for g, g_long in zip(grads, grads_long):
        assert_close(g_long, g, atol=1e-12, name="weight gradient")


# --- errors --------------------------------------------------------------------------------------
def test_a_mask_of_the_wrong_shape_is_a_clear_error():
    x, mask = padded_batch()
    with pytest.raises(ValueError, match=r"mask has shape \(2, 4\) but y_pred has shape \(2, 5, 6\)"):
        losses.SparseCategoricalCrossentropy()(numpy.zeros((B, T)), softmax(numpy.zeros((B, T, C))),
                                               mask=mask[:, :4])
    with pytest.raises(ValueError, match=r"mask has shape \(5, 2\) but y_pred has shape \(2, 5, 1\)"):
        losses.MeanSquaredError().gradient(numpy.zeros((B, T, 1)), numpy.zeros((B, T, 1)), mask=mask.T)
    layer = CarryOver()
    with pytest.raises(ValueError, match=r"carry_over.*mask has shape \(2, 4\) but the input has shape "
                                         r"\(2, 5, 3\)"):
        layer(backend.xp.asarray(x), mask=mask[:, :4])
    with pytest.raises(ValueError, match=r"mask has shape \(2, 5\) but the metric's values have "
                                         r"shape \(2,\)"):
        metrics.reduce(metrics.last_time_step_mse(numpy.zeros((B, T, 1)), numpy.zeros((B, T, 1))), mask)
    with pytest.raises(TypeError, match="mask_value must be a number"):
        Masking(mask_value="0")


# --- Keras 3 fixture: Embedding(mask_zero=True) -> GRU -> Dense softmax ---------------------------
@pytest.fixture(scope="module")
def keras_case():
    return dict(numpy.load(DATA / "keras_embedding_mask.npz"))


def keras_model(case, functional=False):
    if functional:
        ids = Input(shape=[None])
        h = GRU(H, return_sequences=True)(Embedding(7, 3, mask_zero=True)(ids))
        model = Model(ids, Dense(5, activation="softmax")(h))
    else:
        model = Sequential([Embedding(7, 3, mask_zero=True), GRU(H, return_sequences=True),
                            Dense(5, activation="softmax")])
        model.build((None, case["ids"].shape[1]))
    model.set_weights([case[f"w{k}"] for k in range(6)])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model


def test_embedding_outputs_and_mask_equal_keras(keras_case):
    layer = Embedding(7, 3, mask_zero=True)
    layer(keras_case["ids"])
    layer.set_weights([keras_case["w0"]])
    y, mask = layer.forward_with_mask(keras_case["ids"], None)
    assert_close(y, keras_case["embedded"], atol=0, name="embedded")
    numpy.testing.assert_array_equal(host(mask), keras_case["mask"])


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_masked_loss_gradient_and_evaluate_equal_keras(keras_case, functional):
    model = keras_model(keras_case, functional)
    ids, y, mask = keras_case["ids"], keras_case["y"], keras_case["mask"]
    probs = model.predict(ids)
    assert_close(probs[mask], keras_case["probs"][mask], atol=2e-6, name="probabilities (valid steps)")
    numpy.testing.assert_array_equal(host(model.output_mask), mask)
    loss, grads = loss_and_grads(model, ids, y.astype("float32"))
    assert loss == pytest.approx(float(keras_case["loss"]), abs=2e-6)
    for k, g in enumerate(grads):
        assert_close(g, keras_case[f"dw{k}"], atol=2e-6, name=f"dw{k}")
    evaluate_loss, evaluate_accuracy = model.evaluate(ids, y, batch_size=3)
    assert evaluate_loss == pytest.approx(float(keras_case["evaluate_loss"]), abs=2e-6)
    assert evaluate_accuracy == pytest.approx(float(keras_case["evaluate_accuracy"]), abs=1e-6)


# --- Keras 3 fixture: Masking -> LSTM / GRU -> Dense on a right-padded batch ---------------------
FLOW_CASES = {"lstm": lambda: LSTM(H, return_sequences=True), "gru": lambda: GRU(H)}


def masking_model(case, name, functional):
    if functional:
        inputs = Input(shape=[None, D])
        model = Model(inputs, Dense(2)(FLOW_CASES[name]()(Masking()(inputs))))
    else:
        model = Sequential([Masking(input_shape=[None, D]), FLOW_CASES[name](), Dense(2)])
        model.build()
    model.set_weights([case[f"{name}/w{k}"] for k in range(5)])
    model.compile(loss="mse")
    return model


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
@pytest.mark.parametrize("name", FLOW_CASES)
def test_masking_then_lstm_or_gru_equal_keras(name, functional):
    case = dict(numpy.load(DATA / "keras_masking_flow.npz"))
    model = masking_model(case, name, functional)
    assert_close(model.predict(case["x"]), case[f"{name}/y"], atol=2e-6, name=f"{name} output")
    expected_mask = case["mask"] if name == "lstm" else None       # return_sequences passes it on
    if expected_mask is None:
        assert model.output_mask is None
    else:
        numpy.testing.assert_array_equal(host(model.output_mask), expected_mask)
    loss, grads = loss_and_grads(model, case["x"], case[f"{name}/y_true"])
    assert loss == pytest.approx(float(case[f"{name}/loss"]), abs=2e-6)
    for k, g in enumerate(grads):
        assert_close(g, case[f"{name}/dw{k}"], atol=2e-6, name=f"{name} dw{k}")


@pytest.mark.parametrize("name", FLOW_CASES)
def test_keras_masking_is_running_each_sequence_cut_to_its_length(name):
    """What the fixture says Keras does, checked with tinyrnn's unmasked layers: each row's valid
    steps equal a run on that row cut to its length; a masked step repeats the last valid output
    (return_sequences); and our masked MSE on Keras's output is Keras's loss."""
    case = dict(numpy.load(DATA / "keras_masking_flow.npz"))
    model = Sequential([FLOW_CASES[name](), Dense(2)])             # no Masking: no mask at all
    model.build((None, None, D))
    model.set_weights([case[f"{name}/w{k}"] for k in range(5)])
    y, mask = case[f"{name}/y"], case["mask"]
    for b, n in enumerate(mask.sum(axis=1)):
        cut = model.predict(case["x"][b:b + 1, :n])[0]
        if name == "lstm":
            assert_close(y[b, :n], cut, atol=2e-6, name=f"row {b}")
            assert (y[b, n:] == y[b, n - 1]).all(), f"row {b}: a masked step repeats the last valid output"
        else:
            assert_close(y[b], cut, atol=2e-6, name=f"row {b}")
    mse = losses.MeanSquaredError()
    masked = float(mse(case[f"{name}/y_true"], y, mask=mask if name == "lstm" else None))
    assert masked == pytest.approx(float(case[f"{name}/loss"]), rel=1e-6)


def test_carried_masks_reach_attention_as_keras_auto_fills_its_mask():
    """Embedding(mask_zero=True) -> Attention([e, e]): the carried masks become [query_mask, value_mask]
    (a padded key gets weight 0, a padded query outputs 0), and the output carries the query mask."""
    from tinyrnn.layers import Attention

    ids = numpy.array([[3, 1, 2, 0, 0], [4, 0, 0, 0, 0]])
    tokens = Input(shape=[None])
    embedding, attention = Embedding(7, D, mask_zero=True), Attention()
    model = Model(tokens, attention([embedding(tokens), embedding(tokens)]))
    y = model.predict(ids)
    numpy.testing.assert_array_equal(host(model.output_mask), ids != 0)
    e = host(embedding.forward(ids))
    embedding._recall()
    expected = host(attention.forward([e, e], mask=[ids != 0, ids != 0]))
    assert_close(y, expected, atol=1e-6, name="attention output")
    assert (y[ids == 0] == 0).all()


class StepMaskSpy(Layer):
    """Test-only layer that keeps the mask its forward got (None when none), and passes x on."""

    supports_masking = True

    def forward(self, x, training=False, mask=None):
        self.seen = None if mask is None else host(mask)
        self._remember(None)
        return x

    def backward(self, dy):
        self._recall()
        return dy


def test_time_distributed_passes_each_steps_mask_to_a_layer_that_takes_one_as_keras():
    """Keras 3's TimeDistributed: the inner layer gets mask[:, t] at step t (here all B*T rows at
    once, flattened like the input), a Dense gets none, and the mask passes on unchanged."""
    x, mask = padded_batch()
    spy = StepMaskSpy()
    td = TimeDistributed(spy)
    y, out_mask = td.forward_with_mask(backend.xp.asarray(x), backend.xp.asarray(mask))
    numpy.testing.assert_array_equal(spy.seen, mask.reshape(B * T))
    numpy.testing.assert_array_equal(host(out_mask), mask)
    assert not Dense(2).takes_mask                     # so TimeDistributed(Dense) gives it no mask
    model = Sequential([Masking(input_shape=[None, D]), TimeDistributed(Dense(2)), CarryOver(2),
                        TimeDistributed(StepMaskSpy())])
    model.build()
    model.forward(backend.xp.asarray(x))
    numpy.testing.assert_array_equal(model.layers[-1].layer.seen, mask.reshape(B * T))
    numpy.testing.assert_array_equal(host(model.output_mask), mask)


def test_time_distributed_recurrent_layer_over_nested_sequences_gets_each_rows_mask():
    """(B, T, T2, D) with a (B, T, T2) mask from Masking: each (B*T) row's (T2,) mask, as in Keras 3."""
    rng = numpy.random.default_rng(3)
    x = rng.normal(size=(B, T, 4, D))
    x[1, 3:] = 0.0
    x[0, 1, 2:] = 0.0
    gru = GRU(2)
    model = Sequential([Masking(input_shape=[T, 4, D]), TimeDistributed(gru)])
    model.build()
    y = host(model.forward(backend.xp.asarray(x)))
    steps = (x != 0).any(axis=-1)                                       # (B, T, T2)
    alone = host(gru(backend.xp.asarray(x.reshape(B * T, 4, D)), mask=steps.reshape(B * T, 4)))
    assert_close(y.reshape(B * T, 2), alone, atol=1e-12, name="TimeDistributed(GRU) with masks")
    assert not numpy.allclose(y.reshape(B * T, 2), host(gru(backend.xp.asarray(x.reshape(B * T, 4, D)))))
    numpy.testing.assert_array_equal(host(model.output_mask), steps)   # passed on unchanged (Keras 3)


def test_a_model_used_as_a_layer_passes_on_the_mask_its_layers_made():
    x, mask = padded_batch()
    inner = Sequential([Masking(input_shape=[None, D]), Dense(D)])
    outer = Sequential([inner, CarryOver(), Dense(2)])
    outer.build((None, None, D))
    outer.forward(backend.xp.asarray(x))
    numpy.testing.assert_array_equal(host(outer.output_mask), mask)
    inputs = Input(shape=[None, D])
    functional = Model(inputs, Dense(2)(CarryOver()(inner(inputs))))
    functional.forward(backend.xp.asarray(x))
    numpy.testing.assert_array_equal(host(functional.output_mask), mask)


NESTINGS = ["functional in functional", "sequential in sequential", "sequential in functional",
            "functional in sequential"]


@pytest.mark.parametrize("nesting", NESTINGS)
def test_a_model_used_as_a_layer_takes_the_mask_it_is_given_as_keras(nesting):
    """Keras 3 passes the mask into a model used as a layer (Functional.call(inputs, mask)): its
    layers skip the masked steps and its output mask comes out. Outputs, the mask and every gradient
    equal those of the same layers in one flat masked model."""
    x, mask = padded_batch()
    x = backend.xp.asarray(x)
    with backend.float_precision("float64"):
        gru, dense = GRU(H, return_sequences=True), Dense(2)
        flat = Sequential([Masking(input_shape=[None, D]), gru, dense])
        flat.build()
    for k, layer in enumerate((gru, dense)):
        randomize_params(layer, seed=40 + k)
    inner_kind, outer_kind = nesting.split(" in ")
    if inner_kind == "functional":
        inputs = Input(shape=[None, D])
        inner = Model(inputs, dense(gru(inputs)))
    else:
        inner = Sequential([gru, dense])
        inner.build((None, None, D))
    if outer_kind == "functional":
        outer_inputs = Input(shape=[None, D])
        outer = Model(outer_inputs, inner(Masking()(outer_inputs)))
    else:
        outer = Sequential([Masking(input_shape=[None, D]), inner])
        outer.build()
    u = backend.xp.asarray(numpy.random.default_rng(41).normal(size=(B, T, 2)))
    expected, grads = {}, {}
    for name, model in (("flat", flat), ("nested", outer)):
        model.zero_grads()
        expected[name] = (host(model.forward(x)), host(model.output_mask), host(model.backward(u)))
        grads[name] = [host(layer.grads[k]).copy() for layer in (gru, dense) for k in layer.grads]
    assert_close(expected["nested"][0], expected["flat"][0], atol=1e-12, name="output")
    numpy.testing.assert_array_equal(expected["nested"][1], mask)
    assert_close(expected["nested"][2], expected["flat"][2], atol=1e-12, name="dx")
    for mine, ref in zip(grads["nested"], grads["flat"]):
        assert_close(mine, ref, atol=1e-12, name="weight gradient")
    unmasked = host(inner.forward(x))                  # the mask matters: without it, other outputs
    assert not numpy.allclose(unmasked, expected["flat"][0])


# --- with the recurrent layers themselves (they skip masked steps) -------------------------------
RECURRENT = {"SimpleRNN": lambda **kw: SimpleRNN(H, **kw), "LSTM": lambda **kw: LSTM(H, **kw),
             "GRU": lambda **kw: GRU(H, **kw)}


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("name", RECURRENT)
def test_masking_recurrent_dense_full_loss_gradient_on_a_right_padded_batch(name, return_sequences):
    """Masking -> SimpleRNN / LSTM / GRU -> Dense, MSE (masked when the output is a sequence):
    every weight by gradcheck in float64, random biases, random upstream gradient."""
    x, _ = padded_batch(seed=19)
    recurrent = RECURRENT[name](return_sequences=return_sequences)
    model = built(Sequential([Masking(input_shape=[None, D]), recurrent, Dense(2)]), x.shape, seed=20)
    y = numpy.random.default_rng(21).normal(size=(B, T, 2) if return_sequences else (B, 2))
    gradcheck(LossOf(model, x, y, losses.MeanSquaredError()), numpy.zeros(1)).assert_ok(1e-7)
    assert (model.output_mask is not None) is return_sequences


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(list(RECURRENT)), lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       extra=st.integers(1, 3), seed=st.integers(0, 1000))
def test_appending_padding_to_a_recurrent_model_leaves_loss_and_gradients_unchanged(name, lengths, extra,
                                                                                    seed):
    with backend.float_precision("float64"):
        x, _ = padded_batch(lengths, t=4, seed=seed)
        y = numpy.random.default_rng(seed).normal(size=(len(lengths), 2))      # one target per sequence
        model = built(Sequential([Masking(input_shape=[None, D]), RECURRENT[name](), Dense(2)]), x.shape,
                      seed=seed)
        model.compile(loss="mse")
        value, grads = loss_and_grads(model, x, y)
        x_long = numpy.concatenate([x, numpy.zeros((len(lengths), extra, D))], axis=1)
        value_long, grads_long = loss_and_grads(model, x_long, y)
    assert value_long == pytest.approx(value, rel=1e-12)
    for g, g_long in zip(grads, grads_long):
        assert_close(g_long, g, atol=1e-12, name="weight gradient")


KERAS_MASKING_CASES = {"lstm_seq": (LSTM, {"return_sequences": True}), "lstm_last": (LSTM, {}),
                       "gru_seq": (GRU, {"return_sequences": True}), "gru_last": (GRU, {}),
                       "gru_last_zero_output": (GRU, {"zero_output_for_mask": True})}


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
@pytest.mark.parametrize("name", KERAS_MASKING_CASES)
def test_masking_then_recurrent_in_a_model_equals_the_recurrent_fixture(name, functional):
    """The recurrent layers' own Keras fixture (keras_masking.npz), through a model: the mask flows
    from Masking, and the output keeps it with return_sequences only."""
    case = dict(numpy.load(DATA / "keras_masking.npz"))
    cls, options = KERAS_MASKING_CASES[name]
    recurrent = cls(H, **options)
    if functional:
        inputs = Input(shape=[None, D])
        model = Model(inputs, recurrent(Masking()(inputs)))
    else:
        model = Sequential([Masking(input_shape=[None, D]), recurrent])
        model.build()
    recurrent.set_weights([case[f"{name}/w{k}"] for k in range(3)])
    assert_close(model.predict(case["x"]), case[f"{name}/y0"], atol=2e-6, name=name)
    if options.get("return_sequences"):
        numpy.testing.assert_array_equal(host(model.output_mask), case["mask"])
    else:
        assert model.output_mask is None
