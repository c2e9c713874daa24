"""Initial states, return_state and stateful recurrent layers (truncated BPTT).

Sizes small and distinct (B=2, T=5, D=3, H=4); gradient checks in float64 with
random weights and biases and a random upstream gradient (gradcheck draws one).
"""

from __future__ import annotations

import numpy
import pytest
from helpers import (
    DATA,
    RECURRENT_STATES,
    assert_close,
    random_float64_layer,
    randomize_params,
    recurrent_builders,
)

import tinyrnn
from tinyrnn import backend, gradcheck, seeding
from tinyrnn.layers import GRU, LSTM, Dense, Embedding, InputLayer, Layer, SimpleRNN
from tinyrnn.models import Model, Sequential, load_model

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7

BUILDERS = recurrent_builders(H)
N_STATES = RECURRENT_STATES


def normal(*shape, seed=0, scale=1.0):
    return numpy.random.default_rng(seed).normal(scale=scale, size=shape)


def built(name, seed=2, **kwargs):
    """A float64 layer with random weights, biases and gains, built for (B, T, D) inputs."""
    layer = random_float64_layer(lambda: BUILDERS[name](**kwargs), normal(B, T, D), seed=seed)
    layer.reset_states()
    return layer


def twin(name, layer, **kwargs):
    """A second layer of the same kind with the same weights."""
    other = built(name, **kwargs)
    other.set_weights(layer.get_weights())
    return other


def as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


# --- initial_state ------------------------------------------------------------------------------
@pytest.mark.parametrize("return_state", [False, True], ids=["", "return_state"])
@pytest.mark.parametrize("name", BUILDERS)
def test_gradcheck_of_the_initial_states(name, return_state):
    """forward([x, h_0(, c_0)]) -> backward gives [dx, dh_0(, dc_0)]: checked entry by entry."""
    layer = built(name, return_sequences=True, return_state=return_state)
    states = [normal(B, H, seed=10 + k, scale=0.5) for k in range(N_STATES[name])]
    report = gradcheck(layer, [normal(B, T, D, seed=1), *states])
    names = [f"input[{k}]" for k in range(1 + len(states))]          # x, then every state
    assert [c.name for c in report.checks[:len(names)]] == names
    report.assert_ok(TOL)


@pytest.mark.parametrize("name", BUILDERS)
def test_initial_state_is_where_the_recurrence_starts(name):
    """Two halves of a sequence, the second started from the first's final states, equal the whole."""
    layer = built(name, return_sequences=True, return_state=True)
    x = normal(B, 2 * T, D, seed=3)
    y_whole = layer(x)[0]
    y1, *states = layer(x[:, :T])
    y2 = layer(x[:, T:], initial_state=states)[0]
    assert_close(numpy.concatenate([y1, y2], axis=1), y_whole, 1e-12, name="y")


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "RNN(Keras-protocol LSTM)"])
def test_initial_states_of_the_wrong_count_or_size_are_refused(name):
    layer = built(name)
    x = normal(B, T, D)
    n = N_STATES[name]
    with pytest.raises(ValueError, match=rf"initial_state must be {n} array\(s\).*\(2, 4\).*got {n + 1}"):
        layer(x, initial_state=[normal(B, H)] * (n + 1))
    with pytest.raises(ValueError, match=r"of shapes \(2, 4\).*got .*\(2, 5\)"):
        layer(x, initial_state=[normal(B, H + 1)] * n)


def test_encoder_decoder_trains_with_fit_and_saves(tmp_path):
    """Keras's seq2seq: the encoder's final h, c start the decoder; they are graph inputs with gradients."""
    seeding.set_random_seed(0)
    enc_in, dec_in = tinyrnn.Input(shape=[None, D]), tinyrnn.Input(shape=[None, 2])
    _, h, c = LSTM(8, return_state=True)(enc_in)
    decoded = LSTM(8, return_sequences=True)(dec_in, initial_state=[h, c])
    model = Model(inputs=[enc_in, dec_in], outputs=Dense(1)(decoded))
    encoder = model.layers[0] if model.layers[0].return_state else model.layers[1]
    kernel = encoder.get_weights()[0]
    x_enc, x_dec = normal(32, T, D, seed=4), numpy.zeros((32, 3, 2))
    y = numpy.repeat(x_enc[:, -1:, :1], 3, axis=1)            # only the encoder's states carry it
    model.compile(loss="mse", optimizer=tinyrnn.optimizers.Adam(0.01))
    history = model.fit([x_enc, x_dec], y, epochs=30, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert not numpy.allclose(encoder.get_weights()[0], kernel)   # trained through h, c alone
    model.save(tmp_path / "seq2seq.npz")
    assert_close(load_model(tmp_path / "seq2seq.npz").predict([x_enc, x_dec]), model.predict([x_enc, x_dec]),
                 0.0, name="loaded")


def test_encoder_decoder_gradcheck():
    """The encoder's weights get their gradient only through the decoder's initial states."""
    with backend.float_precision("float64"):
        enc_in, dec_in = tinyrnn.Input(shape=[None, D]), tinyrnn.Input(shape=[None, 2])
        _, h, c = LSTM(H, return_state=True)(enc_in)
        decoded = GRU(H, return_sequences=True)(dec_in, initial_state=h)
        model = Model(inputs=[enc_in, dec_in], outputs=decoded)
        model.predict([normal(B, T, D), normal(B, 3, 2)])
    for layer in model.layers:
        randomize_params(layer, seed=7)
    gradcheck(model, [normal(B, T, D, seed=8), normal(B, 3, 2, seed=9)]).assert_ok(TOL)


def test_a_symbolic_initial_state_of_the_wrong_size_is_refused():
    x = tinyrnn.Input(shape=[None, D])
    _, h = GRU(H, return_state=True)(x)
    with pytest.raises(ValueError, match=r"initial_state must be 2 array\(s\) \(h, c\)"):
        LSTM(H)(x, initial_state=[h])


# --- stateful: truncated BPTT -------------------------------------------------------------------
@pytest.mark.parametrize("name", BUILDERS)
def test_stateful_over_consecutive_batches_equals_the_whole_sequence(name):
    stateless = built(name, return_sequences=True)
    stateful = twin(name, stateless, return_sequences=True, stateful=True)
    x = normal(B, 3 * T, D, seed=5)
    pieces = [stateful(x[:, k * T:(k + 1) * T]) for k in range(3)]
    assert_close(numpy.concatenate(pieces, axis=1), stateless(x), 1e-12, name="y")
    stateful.reset_states()
    assert_close(stateful(x[:, :T]), stateless(x[:, :T]), 1e-12, name="after reset_states")


class SecondBatch(Layer):
    """A stateful layer's second batch, with its carried states put back before every forward,
    so that gradcheck's repeated forward passes all start from the first batch's final states."""

    def __init__(self, layer, carried):
        super().__init__()
        self.layer, self.carried = layer, carried
        self.built = True

    def forward(self, x, training=False):
        self.layer.states = [s.copy() for s in self.carried]
        return self.layer.forward(x, training=training)

    def backward(self, dy):
        return self.layer.backward(dy)


@pytest.mark.parametrize("name", BUILDERS)
def test_gradcheck_of_the_second_batch_truncated_bptt(name):
    """The second batch's gradient treats the carried states as constants: the gradient check of
    its loss (the states held fixed) passes, the backward returns dx alone, and its gradients
    equal those of a stateless layer started from the same states with dL/dh_0 thrown away."""
    layer = built(name, return_sequences=True, stateful=True)
    layer(normal(B, T, D, seed=1))                              # the first batch
    carried = [s.copy() for s in layer.states]
    x2 = normal(B, T, D, seed=2)
    gradcheck(SecondBatch(layer, carried), x2).assert_ok(TOL)

    reference = twin(name, layer, return_sequences=True)
    dy = normal(B, T, H, seed=3)
    layer.zero_grads()
    layer.states = [s.copy() for s in carried]
    layer(x2)
    dx = layer.backward(dy)
    assert not isinstance(dx, list) and dx.shape == (B, T, D)  # nothing for the first batch
    reference.zero_grads()
    reference([x2, *carried])
    dx_ref, *_ = reference.backward(dy)
    assert_close(dx, dx_ref, 1e-12, name="dx")
    for (key, g), g_ref in zip(_all_grads(layer), [g for _, g in _all_grads(reference)]):
        assert_close(g, g_ref, 1e-12, name=key)


def _all_grads(layer):
    owners = tinyrnn.layers.base.parameter_owners([layer])
    return [(f"{o.name}/{k}", g) for o in owners for k, g in o.grads.items()]


def test_the_carried_states_are_copies_not_views_of_the_output():
    layer = built("LSTM", return_state=True, stateful=True)
    y, h, c = (a.copy() for a in layer(normal(B, T, D)))
    assert_close(layer.states[0], h, 0.0, name="h_T")
    assert_close(layer.states[1], c, 0.0, name="c_T")
    for out in layer.forward(normal(B, T, D, seed=1)):   # the next batch writes over its outputs' arrays
        out[...] = 0
    assert numpy.abs(layer.states[0]).min() > 0 and numpy.abs(layer.states[1]).min() > 0


def test_a_batch_of_another_size_is_refused_with_the_fix():
    layer = built("GRU(reset_after)", stateful=True)
    layer(normal(B, T, D))
    with pytest.raises(ValueError, match=r"fixed size, 2 .*got a batch of 3.*batch_size=2"):
        layer(normal(3, T, D))


@pytest.mark.parametrize("spelling", [{"batch_size": 3}, {"batch_input_shape": [3, None, D]}])
def test_the_batch_size_from_the_layer_arguments(spelling):
    layer = GRU(H, stateful=True, **spelling)
    assert layer.batch_size == 3
    with pytest.raises(ValueError, match=r"fixed size, 3 .*got a batch of 2"):
        layer(normal(B, T, D))


def test_the_batch_size_from_input_batch_size():
    x = tinyrnn.Input(shape=[None, D], batch_size=3)
    layer = GRU(H, stateful=True)
    model = Model(inputs=x, outputs=layer(x))
    assert layer.batch_size == 3
    with pytest.raises(ValueError, match=r"Input expects \(3, None, 3\)"):
        model.predict(normal(B, T, D))
    with pytest.raises(ValueError, match=r"fixed size, 3 .*got a batch of 2"):
        layer(normal(B, T, D))


def test_reset_states_spellings_and_given_states():
    layer = built("LSTM", stateful=True)
    x = normal(B, T, D)
    first = layer(x)
    assert not numpy.allclose(layer(x), first)                  # the second call starts elsewhere
    layer.reset_state()                                         # Keras 3's spelling
    assert [s.shape for s in layer.states] == [(B, H), (B, H)] and not any(s.any() for s in layer.states)
    assert_close(layer(x), first, 1e-12, name="after reset_state")
    states = [normal(B, H, seed=1), normal(B, H, seed=2)]
    layer.reset_states(states)
    assert_close(layer(x), twin("LSTM", layer)(x, initial_state=states), 1e-12, name="from given states")
    with pytest.raises(ValueError, match=r"initial_state must be 2 array\(s\)"):
        layer.reset_states(states[:1])


def test_model_reset_states_and_predict_carries_the_state():
    """predict carries the states from call to call (as in Keras) until model.reset_states()."""
    seeding.set_random_seed(0)
    model = Sequential([SimpleRNN(H, return_sequences=True, stateful=True, input_shape=[None, D]), Dense(1)])
    x = normal(B, 2 * T, D).astype("float32")
    whole = Sequential([SimpleRNN(H, return_sequences=True, input_shape=[None, D]), Dense(1)])
    whole.build()
    model.build()
    whole.set_weights(model.get_weights())
    halves = numpy.concatenate([model.predict(x[:, :T]), model.predict(x[:, T:])], axis=1)
    assert_close(halves, whole.predict(x), 1e-6, name="two predicts")
    model.reset_states()
    assert_close(model.predict(x[:, :T]), whole.predict(x[:, :T]), 1e-6, name="after model.reset_states()")


def test_fit_on_a_stateful_model_with_a_fixed_batch():
    seeding.set_random_seed(0)
    model = Sequential([GRU(H, stateful=True, batch_input_shape=[4, None, D]), Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    x, y = normal(8, T, D), normal(8, 1)
    model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    with pytest.raises(ValueError, match=r"6 sequences in batches of 4: give batch_size=4"):
        model.fit(x[:6], y[:6], epochs=1, batch_size=4, verbose=0)


def test_stateful_saves_and_loads(tmp_path):
    model = Sequential([LSTM(H, stateful=True, batch_input_shape=[B, None, D]), Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    model.predict(normal(B, T, D))
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.layers[0].stateful and loaded.layers[0].batch_size == B
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    x = normal(B, T, D)
    model.reset_states()
    assert_close(loaded.predict(x), model.predict(x), 1e-6, name="loaded")
    assert_close(loaded.predict(x), model.predict(x), 1e-6, name="loaded, second batch")


def test_stateless_layers_keep_no_states():
    layer = built("GRU(reset_after)")
    layer(normal(B, T, D))
    layer.reset_states()
    assert layer.states is None and layer.get_config()["stateful"] is False
    with pytest.raises(ValueError, match=r"stateful=True"):
        layer.reset_states([normal(B, H)])


@pytest.mark.parametrize("name", ["LSTM", "GRU(reset_after)"])
def test_initial_and_carried_states_on_a_batch_split_over_threads(monkeypatch, name):
    """Each thread's part of the batch starts from its own rows of the states."""
    monkeypatch.setattr(backend, "PARALLEL_GRAIN", 1)
    backend.set_threads(2)
    try:
        layer = built(name, return_sequences=True, stateful=True)
        x = normal(B, 2 * T, D, seed=6)
        assert len(backend.batch_parts(B, 1)) == 2                      # one sequence per thread
        halves = numpy.concatenate([layer(x[:, :T]), layer(x[:, T:])], axis=1)
        assert_close(halves, twin(name, layer, return_sequences=True)(x), 1e-12, name="y")
        states = [normal(B, H, seed=10 + k) for k in range(N_STATES[name])]
        gradcheck(twin(name, layer, return_sequences=True), [x[:, :T], *states]).assert_ok(TOL)
    finally:
        backend.set_threads(None)


def test_a_stateful_gru_matches_keras_over_three_batches():
    """Keras 3's stateful GRU (tests/data/make_keras_stateful.py): same weights, three consecutive
    batches, the same outputs (float32); each batch differs from a fresh start, so the state counts."""
    keras = numpy.load(DATA / "keras_stateful_gru.npz")
    layer = GRU(H, return_sequences=True, stateful=True, batch_input_shape=[B, None, D])
    layer.build((None, None, D))
    layer.set_weights([keras[f"w{i}"] for i in range(3)])
    fresh = GRU(H, return_sequences=True)
    fresh.build((None, None, D))
    fresh.set_weights(layer.get_weights())
    for k in range(3):
        x = backend.asarray(keras[f"x{k}"])
        assert_close(layer(x), keras[f"y{k}"], 2e-6, name=f"batch {k}")
        if k:
            assert numpy.abs(backend.to_numpy(fresh(x)) - keras[f"y{k}"]).max() > 1e-2


@pytest.mark.parametrize("rows, batch_size", [(7, 2), (8, 4)])
def test_fit_refuses_a_stateful_batch_mismatch_before_any_step(rows, batch_size):
    """7 rows end in a batch of 1; batch_size 4 is not the layer's 2: refused up front, weights untouched."""
    seeding.set_random_seed(0)
    model = Sequential([GRU(H, stateful=True, batch_size=2, input_shape=[None, D]), Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    x, y = numpy.ones((rows, T, D), "float32"), numpy.ones((rows, 1), "float32")
    model.build((2, T, D))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"stateful with batches of 2 .* batch_size=2"):
        model.fit(x, y, batch_size=batch_size, shuffle=False, verbose=0)
    for w, b in zip(model.get_weights(), before):
        numpy.testing.assert_array_equal(w, b)


def _character_model(*first_layers, embedding=None):
    """A lecture's stateful character model: [first layers,] Embedding, stateful GRU, Dense."""
    embedding = embedding or Embedding(7, D)
    return Sequential([*first_layers, embedding, GRU(H, return_sequences=True, stateful=True), Dense(6)])


def _functional_with_batch_shape():
    x = tinyrnn.Input(batch_shape=(B, None))
    y = Dense(6)(GRU(H, return_sequences=True, stateful=True)(Embedding(7, D)(x)))
    return Model(x, y)


KERAS_BATCH_SHAPES = {   # each way Keras declares the batch size at a model's input
    "InputLayer(batch_shape)": lambda: _character_model(InputLayer(batch_shape=(B, None))),
    "InputLayer(shape, batch_size)": lambda: _character_model(InputLayer(shape=[None], batch_size=B)),
    "Sequential([Input(batch_shape)])": lambda: _character_model(tinyrnn.Input(batch_shape=(B, None))),
    "batch_input_shape on the first layer": lambda: _character_model(
        embedding=Embedding(7, D, batch_input_shape=[B, None])),
    "functional Input(batch_shape)": _functional_with_batch_shape,
}


@pytest.mark.parametrize("spelling", list(KERAS_BATCH_SHAPES))
def test_the_declared_batch_size_reaches_the_stateful_layer(spelling, tmp_path):
    """As in Keras: the batch size declared at the input fixes the stateful layer's before any data,
    the summary shows it, reset_states makes (B, H) states, and another batch size is refused."""
    model = KERAS_BATCH_SHAPES[spelling]()
    gru = next(layer for layer in model.layers if isinstance(layer, GRU))
    lines = []
    model.summary(print_fn=lines.append)
    assert f"({B}, None, {H})" in lines[0] and gru.batch_size == B
    gru.reset_states()
    assert [s.shape for s in gru.states] == [(B, H)]
    ids = numpy.random.default_rng(0).integers(0, 7, size=(B + 1, T))
    assert model.predict(ids[:B], batch_size=B).shape == (B, T, 6)
    with pytest.raises(ValueError, match=rf"batches of {B}|expects \({B}, None\)"):
        model.predict(ids, batch_size=B + 1)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert next(layer for layer in loaded.layers if isinstance(layer, GRU)).batch_size == B
