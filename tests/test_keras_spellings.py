"""The Keras spellings a course notebook uses, with ``import tinyrnn as keras``.

Each name exists where Keras has it and does what Keras's does: seeding,
clear_session, the losses and activations as functions, Input / Model / Layer
in both of their homes, and a notebook-style functional snippet end to end.
"""

from __future__ import annotations

import subprocess
import sys

import numpy
import pytest

import tinyrnn
import tinyrnn as keras
from tinyrnn import activations, backend, losses

B, T, D, H = 2, 5, 3, 4


def normal(*shape, seed=0):
    return numpy.random.default_rng(seed).normal(size=shape)


def test_utils_set_random_seed_repeats_the_initial_weights():
    keras.utils.set_random_seed(42)
    first = keras.layers.Dense(H)
    first.build((None, D))
    keras.utils.set_random_seed(42)
    again = keras.layers.Dense(H)
    again.build((None, D))
    numpy.testing.assert_array_equal(first.get_weights()[0], again.get_weights()[0])
    keras.utils.set_random_seed(43)
    other = keras.layers.Dense(H)
    other.build((None, D))
    assert not numpy.array_equal(first.get_weights()[0], other.get_weights()[0])
    assert keras.utils.set_random_seed is tinyrnn.set_random_seed


def test_backend_clear_session_restarts_the_layer_names():
    keras.layers.Dense(H)
    keras.layers.Dense(H)
    keras.backend.clear_session()
    assert keras.layers.Dense(H).name == "dense"
    assert keras.layers.Dense(H).name == "dense_1"
    assert keras.layers.Add().name == "add"
    keras.backend.clear_session()
    assert keras.layers.Add().name == "add"


def test_losses_as_functions_match_numpy_and_compile_takes_them():
    y_true, y_pred = normal(B, T, H, seed=1), normal(B, T, H, seed=2)
    mse = losses.mean_squared_error(y_true, y_pred)
    mae = losses.mean_absolute_error(y_true, y_pred)
    assert mse.shape == mae.shape == (B, T)                       # one value per sample and step, as Keras
    numpy.testing.assert_allclose(mse, ((y_pred - y_true) ** 2).mean(axis=-1), rtol=1e-6)
    numpy.testing.assert_allclose(mae, numpy.abs(y_pred - y_true).mean(axis=-1), rtol=1e-6)
    for function, reference in ((losses.mean_squared_error, lambda e: (e ** 2).mean()),
                                (losses.mean_absolute_error, lambda e: numpy.abs(e).mean())):
        model = keras.Sequential([keras.layers.Dense(H, input_shape=[T, D])])
        model.compile(loss=function, optimizer="sgd")
        x, y = normal(8, T, D, seed=3), normal(8, T, H, seed=4)
        error = model.predict(x) - y
        assert model.evaluate(x, y) == pytest.approx(float(reference(error)), rel=1e-5)
        history = model.fit(x, y, epochs=3, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0]


ACTIVATION_FUNCTIONS = {
    "tanh": numpy.tanh, "sigmoid": lambda z: 1 / (1 + numpy.exp(-z)), "relu": lambda z: numpy.maximum(z, 0),
    "softmax": lambda z: numpy.exp(z) / numpy.exp(z).sum(axis=-1, keepdims=True), "linear": lambda z: z,
}


@pytest.mark.parametrize("name", ACTIVATION_FUNCTIONS)
def test_activations_are_functions_and_get_returns_something_callable(name):
    z = normal(B, T, H)
    expected = ACTIVATION_FUNCTIONS[name](z)
    numpy.testing.assert_allclose(getattr(keras.activations, name)(z), expected, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(activations.get(name)(z), expected, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(activations.get(getattr(activations, name))(z), expected, rtol=1e-6,
                                  atol=1e-7)
    layer = keras.layers.Dense(H, activation=getattr(keras.activations, name))   # a function as activation=
    assert layer.activation.name == name


def test_input_model_and_layer_live_where_keras_has_them():
    assert keras.Model is keras.models.Model is tinyrnn.models.Model
    assert keras.Input is keras.layers.Input
    assert keras.layers.Layer is tinyrnn.layers.base.Layer
    assert keras.Sequential is keras.models.Sequential
    assert callable(keras.ops.add) and callable(keras.backend.clear_session)


def test_the_keras_namespaces_are_reachable_after_a_bare_import():
    """In a fresh interpreter: ``import tinyrnn as keras`` alone makes every namespace an attribute."""
    code = ("import tinyrnn as keras\n"
            "names = [keras.models.Model, keras.models.Sequential, keras.layers.Input, keras.layers.Layer,\n"
            "         keras.layers.Add, keras.backend.clear_session, keras.utils.set_random_seed,\n"
            "         keras.losses.mean_squared_error, keras.activations.relu, keras.ops.concatenate,\n"
            "         keras.Input, keras.Model]\n"
            "print(len(names))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "12"


def test_a_notebook_style_functional_snippet_runs():
    """The course's functional WaveNet idioms, written against ``keras``: Input, slicing and the
    activations as functions on a layer output, Add of two and of a list,
    Model(inputs=[...], outputs=[...])."""
    keras.utils.set_random_seed(0)
    keras.backend.clear_session()
    inputs = keras.layers.Input(shape=[None, 1])
    z = keras.layers.Conv1D(4, kernel_size=2, padding="causal")(inputs)
    skips = []
    for rate in (1, 2):
        z_ = keras.layers.Conv1D(8, kernel_size=2, padding="causal", dilation_rate=rate)(z)
        z_ = keras.activations.tanh(z_[..., :4]) * keras.activations.sigmoid(z_[..., 4:])
        z_ = keras.layers.Conv1D(4, kernel_size=1)(z_)
        skips.append(z_)
        z = keras.layers.Add()([z_, z])
    z = keras.activations.relu(keras.layers.Add()(skips))
    outputs = keras.layers.Conv1D(3, kernel_size=1, activation="softmax")(z)
    model = keras.models.Model(inputs=[inputs], outputs=[outputs])
    assert model.layers[0].name == "conv1d"
    x = normal(16, 10, 1, seed=5)
    y = numpy.eye(3)[numpy.random.default_rng(6).integers(0, 3, size=(16, 10))]
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    probabilities = model.predict(x)
    assert probabilities.shape == (16, 10, 3)
    numpy.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    with backend.float_precision("float64"):
        report = keras.gradcheck(model, normal(B, 6, 1, seed=7))
    report.assert_ok(1e-7)   # float32 weights copied to float64: the check itself is float64


def test_a_cells_state_size_is_keras_units_per_state():
    """Keras code writes self.state_size = self.inner_cell.state_size: units, a list for several states."""
    from tinyrnn.layers import GRUCell, LSTMCell, SimpleRNNCell

    assert SimpleRNNCell(3).state_size == 3 and GRUCell(5).state_size == 5
    assert LSTMCell(4).state_size == [4, 4] and LSTMCell(4).n_states == 2
