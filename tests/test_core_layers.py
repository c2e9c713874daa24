"""Tests for tinyrnn.layers.core and tinyrnn.layers.normalization.

Gradient checks in float64 with random weights (``randomize_params``) and a
random upstream gradient; Dense and LayerNormalization also against Keras 3.
Sizes: B=2, T=5, D=3, H=4.
"""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close, keras_cases, randomize_params

from tinyrnn import backend, gradcheck, seeding
from tinyrnn.layers import (
    Dense,
    Dropout,
    Flatten,
    InputLayer,
    LayerNormalization,
    RepeatVector,
    TimeDistributed,
)

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7


def inputs(*shape, seed=0):
    return numpy.random.default_rng(seed).normal(size=shape)


def built(layer, input_shape, seed=2):
    with backend.float_precision("float64"):
        layer.build((None, *input_shape))
    randomize_params(layer, seed=seed)
    return layer


# --- Dense -------------------------------------------------------------------------------


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("activation", [None, "tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("shape", [(B, D), (B, T, D)], ids=["2d", "3d"])
def test_dense_gradcheck_and_shapes(shape, activation, use_bias):
    layer = built(Dense(H, activation=activation, use_bias=use_bias), shape[1:], seed=9)
    x = inputs(*shape)
    z = x @ layer.params["kernel"] + (layer.params["bias"] if use_bias else 0.0)
    assert numpy.abs(z).min() > 0.01  # no pre-activation at relu's kink, where differences lie
    assert layer.forward(x).shape == (*shape[:-1], H)
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *shape[1:-1], H)
    report = gradcheck(layer, x)
    report.assert_ok(TOL)
    assert [c.name.split("/")[-1] for c in report.checks] == ["input", "kernel"] + ["bias"] * use_bias


def test_dense_3d_acts_at_every_time_step():
    layer = built(Dense(H, activation="tanh"), (T, D))
    x = inputs(B, T, D)
    y = layer.forward(x)
    for t in range(T):
        assert_close(y[:, t], layer.forward(x[:, t]), atol=1e-15, name=f"step {t}")


@pytest.mark.parametrize("activation", [None, "tanh", "softmax"])
def test_dense_on_a_time_major_view_equals_dense_on_rows(activation):
    """A recurrent layer's (B, T, D) output views (T, D, B) memory; Dense reads it as a
    (D, T*B) matrix (core._time_major): the same y, weight gradients and dx."""
    from tinyrnn.layers.core import _time_major

    view = inputs(T, D, B, seed=3).transpose(2, 0, 1)          # (B, T, D) viewing (T, D, B)
    rows = numpy.ascontiguousarray(view)
    assert _time_major(view) and not _time_major(rows)
    dy = inputs(B, T, H, seed=4)
    results = []
    for x in (view, rows):
        layer = built(Dense(H, activation=activation), (T, D), seed=5)
        y = layer.forward(x)
        dx = layer.backward(dy)
        results.append((y, dx, layer.grads["kernel"], layer.grads["bias"]))
    for name, a, b in zip(("y", "dx", "dW", "db"), *results):
        assert_close(a, b, atol=1e-12, name=name)


DENSE_CASES = [(c, a) for c, a in keras_cases() if c["layer"] == "Dense"]


@pytest.mark.parametrize("case, arrays", DENSE_CASES, ids=[c["key"] for c, _ in DENSE_CASES])
def test_dense_matches_keras(case, arrays):
    with backend.float_precision("float64"):
        layer = Dense(**case["kwargs"])
        layer.build(arrays["x"].shape)
    layer.set_weights([arrays["w0"], arrays["w1"]])
    assert_close(layer.forward(arrays["x"]), arrays["y"], name="y")
    assert_close(layer.backward(arrays["upstream"]), arrays["dx"], name="dx")
    assert_close(layer.grads["kernel"], arrays["dw0"], name="dkernel")
    assert_close(layer.grads["bias"], arrays["dw1"], name="dbias")


def test_dense_rejects_bad_units():
    for units in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="units"):
            Dense(units)


# --- Flatten, RepeatVector, TimeDistributed --------------------------------------------------


def test_flatten():
    layer = Flatten()
    x = inputs(B, T, D)
    y = layer.forward(x)
    assert y.shape == (B, T * D)
    assert_close(y, x.reshape(B, -1), atol=0.0)
    assert layer.compute_output_shape((None, T, D)) == (None, T * D)
    assert layer.compute_output_shape((None, None, D)) == (None, None)
    gradcheck(layer, x).assert_ok(TOL)


def test_repeat_vector():
    layer = RepeatVector(T)
    x = inputs(B, D)
    y = layer.forward(x)
    assert y.shape == (B, T, D) and layer.compute_output_shape((None, D)) == (None, T, D)
    for t in range(T):
        assert_close(y[:, t], x, atol=0.0)
    dy = inputs(B, T, D, seed=1)
    assert_close(layer.backward(dy), dy.sum(axis=1), atol=1e-15, name="dx = sum over copies")
    gradcheck(layer, x).assert_ok(TOL)
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        layer.forward(inputs(B, T, D))


@pytest.mark.parametrize("activation", [None, "tanh"])
def test_time_distributed_dense(activation):
    inner = Dense(H, activation=activation)
    layer = built(TimeDistributed(inner), (T, D))
    assert layer.params is inner.params and layer.weight_names == inner.weight_names
    x = inputs(B, T, D)
    y = layer.forward(x)
    assert y.shape == (B, T, H) and layer.compute_output_shape((None, T, D)) == (None, T, H)
    for t in range(T):
        assert_close(y[:, t], inner.forward(x[:, t]), atol=1e-15, name=f"step {t}")
    report = gradcheck(layer, x)
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + len(inner.params)


def test_time_distributed_needs_a_sequence_and_a_layer():
    with pytest.raises(ValueError, match=r"\(B, T, \.\.\.\)"):
        TimeDistributed(Dense(H)).build((None, D))
    with pytest.raises(TypeError, match="Layer"):
        TimeDistributed("dense")


# --- Dropout -----------------------------------------------------------------------------------


def test_dropout_is_the_identity_in_inference():
    layer = Dropout(0.5)
    x = inputs(B, T, D)
    assert layer.forward(x) is x
    dy = inputs(B, T, D, seed=1)
    assert layer.backward(dy) is dy


def test_dropout_in_training_is_seeded_and_inverted():
    rate = 0.25
    layer = Dropout(rate)
    x = inputs(B, T, D)
    seeding.set_random_seed(3)
    y = layer.forward(x, training=True)
    kept = y != 0
    assert_close(y[kept], x[kept] / (1 - rate), atol=1e-15, name="kept entries scaled by 1/(1-rate)")
    dy = inputs(B, T, D, seed=1)
    assert_close(layer.backward(dy), numpy.where(kept, dy / (1 - rate), 0.0), atol=1e-15, name="dx")
    seeding.set_random_seed(3)
    numpy.testing.assert_array_equal(layer.forward(x, training=True), y)   # same seed, same mask


def test_dropout_rate_and_mean():
    rate = 0.4
    seeding.set_random_seed(0)
    y = Dropout(rate).forward(numpy.ones((200, 100)), training=True)
    assert abs((y == 0).mean() - rate) < 0.02
    assert abs(y.mean() - 1.0) < 0.03


def test_dropout_gradcheck_in_training():
    gradcheck(Dropout(0.3), inputs(B, T, D), training=True).assert_ok(TOL)


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.5", True])
def test_dropout_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


# --- InputLayer -----------------------------------------------------------------------------------


def test_input_layer():
    layer = InputLayer(input_shape=[None, D])
    assert layer.built and layer.input_shape == (None, None, D)
    x = inputs(B, T, D)
    assert layer.forward(x) is x and layer.backward(x) is x
    assert InputLayer(shape=(T, D)).input_shape == (None, T, D)
    with pytest.raises(ValueError, match="input_shape"):
        InputLayer()


def test_input_layer_declares_a_sequential_models_shape():
    models = pytest.importorskip("tinyrnn.models")
    model = models.Sequential([InputLayer(input_shape=[None, D]), Dense(H)])
    assert len(model.layers) == 1 and model.input_shape == (None, None, D)
    model.build()
    assert model.layers[0].params["kernel"].shape == (D, H)


# --- LayerNormalization -------------------------------------------------------------------------------

LN_CASES = [(c, a) for c, a in keras_cases() if c["layer"] == "LayerNormalization"]


@pytest.mark.parametrize("case, arrays", LN_CASES, ids=[c["key"] for c, _ in LN_CASES])
def test_layer_normalization_matches_keras(case, arrays):
    with backend.float_precision("float64"):
        layer = LayerNormalization(**case["kwargs"])
        layer.build(arrays["x"].shape)
    layer.set_weights([arrays["w0"], arrays["w1"]])
    assert_close(layer.forward(arrays["x"]), arrays["y"], name="y")
    assert_close(layer.backward(arrays["upstream"]), arrays["dx"], name="dx")
    assert_close(layer.grads["gamma"], arrays["dw0"], name="dgamma")
    assert_close(layer.grads["beta"], arrays["dw1"], name="dbeta")


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("shape", [(B, 6), (B, T, 6)], ids=["2d", "3d"])
def test_layer_normalization_gradcheck(shape, center, scale):
    layer = built(LayerNormalization(center=center, scale=scale), shape[1:], seed=8)
    if scale:
        layer.params["gamma"][...] += 1.0  # random gains around 1 (and beta random): no default hides a bug
    report = gradcheck(layer, inputs(*shape, seed=1))
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + center + scale


def test_layer_normalization_normalises_each_step():
    layer = LayerNormalization()
    with backend.float_precision("float64"):
        layer.build((None, T, 6))
    y = layer.forward(inputs(B, T, 6) * 5 + 3)
    assert_close(y.mean(axis=-1), numpy.zeros((B, T)), atol=1e-12, name="mean")
    assert_close(y.var(axis=-1), numpy.ones((B, T)), atol=1e-3, name="variance (eps = 1e-3)")


def test_layer_normalization_only_on_the_feature_axis():
    with pytest.raises(ValueError, match="axis=-1"):
        LayerNormalization(axis=1)
