"""Saving and loading functional models: the graph of calls, weights and optimizer state."""

import numpy
import pytest

import tinyrnn
from tinyrnn import ops
from tinyrnn.layers import GRU, Add, Concatenate, Conv1D, Dense, Lambda, Layer


def residual_model():
    """Two inputs, a shared layer, slicing, an activation function and a reduction: every kind of call."""
    a, b = tinyrnn.Input(shape=[None, 2], name="a"), tinyrnn.Input(shape=[None, 2], name="b")
    shared = Conv1D(4, 2, padding="causal")
    za, zb = shared(a), shared(b)
    gated = tinyrnn.activations.tanh(za[..., :2]) * tinyrnn.activations.sigmoid(zb[..., 2:])
    z = Add()([Conv1D(2, 1)(gated), a])
    z = Concatenate()([z, ops.mean(z, axis=-1, keepdims=True) * 0.5])
    return tinyrnn.Model(inputs=[a, b], outputs=[GRU(3)(z), Dense(1)(z)])


def data(seed=0):
    rng = numpy.random.default_rng(seed)
    x = [rng.normal(size=(6, 5, 2)).astype("float32") for _ in range(2)]
    y = [rng.normal(size=(6, 3)).astype("float32"), rng.normal(size=(6, 5, 1)).astype("float32")]
    return x, y


def test_functional_model_round_trip_predicts_and_resumes_the_same(tmp_path):
    tinyrnn.set_random_seed(3)
    model = residual_model()
    model.compile(loss=["mse", "mae"], optimizer="adam")
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = tinyrnn.load_model(path)
    for mine, theirs in zip(model.predict(x), loaded.predict(x)):
        numpy.testing.assert_array_equal(mine, theirs)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    state = tinyrnn.seeding.get_state()
    more = model.fit(x, y, epochs=2, batch_size=3, verbose=0).history["loss"]
    tinyrnn.seeding.set_state(state)
    resumed = loaded.fit(x, y, epochs=2, batch_size=3, verbose=0).history["loss"]
    assert more == resumed
    for w, v in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(w, v)


def test_a_subclassed_model_is_refused_with_the_way_out(tmp_path):
    class Twice(tinyrnn.Model):
        def __init__(self):
            super().__init__()
            self.dense = Dense(1)

        def call(self, inputs):
            return self.dense(inputs) * 2

    model = Twice()
    model(numpy.ones((2, 3), "float32"))
    with pytest.raises(TypeError, match="subclassed model.*get_weights"):
        model.save(tmp_path / "m.npz")


def test_a_lambda_layer_is_refused_with_the_way_out(tmp_path):
    x = tinyrnn.Input(shape=[3])
    model = tinyrnn.Model(x, Lambda(lambda v: v * 2)(Dense(2)(x)))
    with pytest.raises(TypeError, match="Lambda.*cannot be saved.*register"):
        model.save(tmp_path / "m.npz")


def test_a_registered_custom_layer_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(tinyrnn.layers, "_REGISTRY", dict(tinyrnn.layers._REGISTRY))  # Scale stays here

    @tinyrnn.layers.register
    class Scale(Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")

        def call(self, inputs):
            return ops.matmul(inputs, self.w)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    x = tinyrnn.Input(shape=[3])
    model = tinyrnn.Model(x, Dense(1)(Scale(4)(x)))
    probe = numpy.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    model.save(tmp_path / "m.npz")
    loaded = tinyrnn.load_model(tmp_path / "m.npz")
    numpy.testing.assert_array_equal(model.predict(probe), loaded.predict(probe))
