"""The book's original WaveNet, built with the functional API (``tinyrnn.chapter.original_wavenet``).

Keras 3 built the same model (tests/data/make_keras_wavenet.py, seed 42, random biases) and
saved its weights, an input batch of the course's series, its outputs and the gradients of
``sum(y * upstream)`` by TensorFlow's autodiff: with those weights, tinyrnn's forward pass and
recorded backward must give the same numbers to float32 rounding. TensorFlow is not needed here.
"""

import json

import numpy
import pytest
from helpers import DATA, assert_close

import tinyrnn
from tinyrnn import backend, chapter, data
from tinyrnn.graph import Value
from tinyrnn.layers.base import parameter_owners


@pytest.fixture(scope="module")
def fixture():
    arrays = numpy.load(DATA / "keras_wavenet.npz")
    index = json.loads((DATA / "keras_wavenet.json").read_text())
    n = len(index["weights"])
    return {"x": arrays["x"], "y": arrays["y"], "upstream": arrays["upstream"], "dx": arrays["dx"],
            "weights": [arrays[f"w{i}"] for i in range(n)], "dweights": [arrays[f"dw{i}"] for i in range(n)]}


@pytest.fixture
def model(fixture):
    with backend.float_precision("float32"):
        tinyrnn.set_random_seed(42)
        m = chapter.original_wavenet()
        m.set_weights(fixture["weights"])
    return m


def test_weights_are_keras_s_in_order_and_shape(model, fixture):
    assert [w.shape for w in model.get_weights()] == [w.shape for w in fixture["weights"]]
    assert model.count_params() == 17130 == sum(w.size for w in fixture["weights"])


def test_outputs_equal_keras_s_for_the_same_weights(model, fixture):
    y = model.predict(fixture["x"])
    assert y.dtype == numpy.float32
    assert_close(y, fixture["y"], atol=1e-6, rtol=1e-5, name="y")
    assert_close(y.sum(axis=-1), numpy.ones(y.shape[:2]), atol=1e-6, name="softmax rows")


def test_recorded_backward_equals_tensorflow_s_gradients(model, fixture):
    model.zero_grads()
    y = model.forward(fixture["x"], training=False)
    dx = model.backward(fixture["upstream"])
    assert_close(y, fixture["y"], atol=1e-6, rtol=1e-5, name="y")
    assert_close(dx, fixture["dx"], atol=1e-5, rtol=1e-4, name="dx")
    grads = [owner.grads[k] for owner in parameter_owners([model]) for k in owner.weight_names]
    assert len(grads) == len(fixture["dweights"])
    for i, (mine, keras) in enumerate(zip(grads, fixture["dweights"])):
        assert_close(mine, keras, atol=1e-5, rtol=1e-4, name=f"dw{i}")


def test_gated_activation_unit_is_tanh_times_sigmoid_of_the_halves():
    rng = numpy.random.default_rng(3)
    z = rng.normal(size=(2, 5, 8))
    with backend.float_precision("float64"):
        y = chapter.GatedActivationUnit()(z)
        assert_close(y, numpy.tanh(z[..., :4]) / (1 + numpy.exp(-z[..., 4:])), atol=1e-15, name="gau")
        assert isinstance(chapter.GatedActivationUnit()(Value(z)), Value)      # its call() records


def test_trains_with_fit_on_the_course_s_ten_steps_ahead_task():
    d = data.load_course_data("seq2seq", seed=42, n_series=300)
    (X_train, Y_train), (X_valid, Y_valid) = d["train"], d["valid"]
    tinyrnn.set_random_seed(42)
    model = chapter.original_wavenet()
    model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
    before = model.evaluate(X_valid, Y_valid)
    history = model.fit(X_train, Y_train, epochs=2, validation_data=(X_valid, Y_valid), verbose=0)
    after = history.history
    assert numpy.isfinite(after["loss"]).all()
    assert after["val_loss"][-1] < 0.97 * before[0], (before, after)        # evaluate: [loss, metric]
    assert model.predict(X_valid[:4]).shape == (4, X_valid.shape[1], 10)
