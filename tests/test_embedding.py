"""Embedding: forward is a table lookup, backward a scatter-add (repeated ids accumulate)."""

import numpy
import pytest

import tinyrnn
from tinyrnn import backend
from tinyrnn.layers import Dense, Embedding, SimpleRNN
from tinyrnn.saving import load_model

B, T, V, E, H = 2, 5, 7, 3, 4     # batch, time, vocabulary (input_dim), embedding size, units


def ids_with_repeats(seed=0):
    rng = numpy.random.default_rng(seed)
    ids = rng.integers(0, V, size=(B, T))
    ids[0, :3] = 2                  # id 2 read three times in one row, and again below
    ids[1, 4] = 2
    return ids


def test_forward_is_the_rows_of_the_table_for_any_id_shape():
    layer = Embedding(V, E)
    for ids in (numpy.array([3, 0]), ids_with_repeats(), numpy.arange(2 * 3 * 4).reshape(2, 3, 4) % V):
        y = layer(ids)
        table = backend.to_numpy(layer.params["embeddings"])
        assert y.shape == (*ids.shape, E)
        numpy.testing.assert_array_equal(backend.to_numpy(y), table[ids])


def test_default_initializer_is_kerass_uniform_and_weights_have_kerass_shape():
    layer = Embedding(V, E)
    layer.build((None, T))
    (table,) = layer.get_weights()
    assert table.shape == (V, E) and layer.weight_names == ("embeddings",)
    assert numpy.abs(table).max() <= 0.05 and numpy.abs(table).max() > 0.01
    new = numpy.random.default_rng(1).normal(size=(V, E))
    layer.set_weights([new])
    numpy.testing.assert_allclose(layer.get_weights()[0], new, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        layer.set_weights([new.T])
    assert layer.count_params() == V * E


def test_gradient_matches_finite_differences_with_repeated_ids():
    """gradcheck checks the table only: integer inputs have no gradient (no input row)."""
    report = tinyrnn.gradcheck(Embedding(V, E), ids_with_repeats(), seed=3)
    assert len(report.checks) == 1
    assert report.checks[0].name.endswith("/embeddings") and report.checks[0].shape == (V, E)
    report.assert_ok()
    model = tinyrnn.Sequential([Embedding(V, E), SimpleRNN(H), Dense(2)])
    report = tinyrnn.gradcheck(model, ids_with_repeats(1), seed=4)
    assert not any(c.name == "input" for c in report.checks) and len(report.checks) == 6
    report.assert_ok()


def test_repeated_ids_accumulate_their_gradients():
    layer = Embedding(4, 2)
    ids = numpy.array([[1, 3, 1, 1]])
    layer(ids)
    dy = numpy.array([[[1.0, 2.0], [10.0, 20.0], [100.0, 200.0], [1000.0, 2000.0]]])
    dx = layer.backward(backend.asarray(dy))
    expected = numpy.array([[0, 0], [1101.0, 2202.0], [0, 0], [10.0, 20.0]])
    numpy.testing.assert_allclose(backend.to_numpy(layer.grads["embeddings"]), expected)
    assert dx.shape == ids.shape and dx.dtype.kind == "f" and not numpy.any(backend.to_numpy(dx))
    layer(ids)
    layer.backward(backend.asarray(dy))            # gradients accumulate across backward calls
    numpy.testing.assert_allclose(backend.to_numpy(layer.grads["embeddings"]), 2 * expected)


def test_whole_floats_are_accepted_as_ids():
    layer = Embedding(V, E)
    ids = ids_with_repeats()
    numpy.testing.assert_array_equal(layer(ids.astype("float32")), layer(ids))


def test_ids_out_of_range_name_the_id_its_index_and_input_dim():
    layer = Embedding(V, E)
    ids = ids_with_repeats()
    ids[1, 2] = V
    with pytest.raises(ValueError, match=r"token id 7 at index \(1, 2\).*\[0, 7\)"):
        layer(ids)
    ids[1, 2] = -1
    with pytest.raises(ValueError, match=r"token id -1 at index \(1, 2\)"):
        layer(ids)


def test_non_integer_ids_are_a_type_error_naming_the_fix():
    layer = Embedding(V, E)
    with pytest.raises(TypeError, match=r"must be integers, got 1.5 at index \(0, 1\).*astype"):
        layer(numpy.array([[1.0, 1.5]]))
    with pytest.raises(TypeError, match="must be integers.*dtype bool"):
        layer(numpy.array([[True, False]]))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="input_dim"):
        Embedding(0, E)
    with pytest.raises(ValueError, match="did you mean 'uniform'"):
        Embedding(V, E, embeddings_initializer="unifrom")
    Embedding(V, E, input_length=T)                # Keras 2's argument, accepted and ignored


def test_mask_zero_computes_the_padding_mask():
    ids = numpy.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    layer = Embedding(V, E, mask_zero=True)
    layer(ids)                                              # builds it
    y, mask = layer.forward_with_mask(ids, None)            # the mask the next layer gets
    numpy.testing.assert_array_equal(backend.to_numpy(mask), ids != 0)
    numpy.testing.assert_array_equal(backend.to_numpy(layer.compute_mask(ids)), ids != 0)
    assert layer.supports_masking and not Embedding(V, E).supports_masking
    assert Embedding(V, E).compute_mask(ids) is None
    with pytest.raises(ValueError, match="plus 1 for the padding id 0"):
        layer(numpy.array([[V]]))


def test_other_layers_and_models_still_refuse_integer_inputs():
    with pytest.raises(TypeError, match="integer dtype"):
        Dense(2)(numpy.array([[1, 2]]))
    model = tinyrnn.Sequential([SimpleRNN(H, input_shape=[None, 1]), Dense(1)])
    with pytest.raises(TypeError, match="integer dtype"):
        model.predict(numpy.ones((B, T, 1), dtype=int))


def sequence_task(n=64, seed=0):
    """Predict how many times token 1 occurs in the sequence: the ids carry the answer."""
    rng = numpy.random.default_rng(seed)
    x = rng.integers(0, V, size=(n, T))
    y = (x == 1).sum(axis=1, keepdims=True).astype("float32")
    return x, y


def embedding_model():
    return tinyrnn.Sequential([Embedding(V, E), SimpleRNN(H), Dense(1)])


def test_embedding_simple_rnn_dense_trains_on_integer_ids_and_round_trips(tmp_path):
    tinyrnn.set_random_seed(0)
    x, y = sequence_task()
    model = embedding_model()
    model.compile(loss="mse", optimizer=tinyrnn.optimizers.Adam(0.02))
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0, validation_data=sequence_task(16, 1))
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert [w.shape for w in model.get_weights()][:1] == [(V, E)]
    model.save(tmp_path / "embedding.npz")
    loaded = load_model(tmp_path / "embedding.npz")
    assert isinstance(loaded.layers[0], Embedding) and loaded.layers[0].input_dim == V
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    other_t = numpy.random.default_rng(2).integers(0, V, size=(B, T + 3))   # ids have no fixed length
    assert model.predict(other_t).shape == (B, 1)
    with pytest.raises(ValueError, match="token id"):
        model.predict(numpy.full((B, T), V))


def test_functional_model_takes_integer_ids():
    inputs = tinyrnn.Input(shape=(None,))
    outputs = Dense(1)(SimpleRNN(H)(Embedding(V, E)(inputs)))
    model = tinyrnn.Model(inputs, outputs)
    model.compile(loss="mse", optimizer="adam")
    x, y = sequence_task(16)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x).shape == (16, 1)
    report = tinyrnn.gradcheck(model, x[:B], seed=5)
    report.assert_ok()


def test_models_take_whole_float_ids_and_lists_and_refuse_fractional_ids():
    model = embedding_model()
    x = sequence_task(4)[0]
    expected = model.predict(x)
    numpy.testing.assert_array_equal(model.predict(x.astype("float32")), expected)
    numpy.testing.assert_array_equal(model.predict(x.tolist()), expected)
    with pytest.raises(TypeError, match=rf"must be integers, got {x[0, 0] + 0.5} at index \(0, 0\)"):
        model.predict(x + 0.5)
