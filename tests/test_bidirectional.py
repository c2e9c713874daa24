"""Tests for tinyrnn.layers.bidirectional: the Bidirectional wrapper.

Sizes are small and distinct (B=2, T=5, D=3, H=4). Gradient checks run in
float64 with random weights and biases (``randomize_params`` on both
directions) and a random upstream gradient for every output (``gradcheck``
draws them); a correct backward scores ~1e-9. Outputs and gradients are
compared with Keras 3's (tests/data/keras_bidirectional.npz, made by
tests/data/make_keras_bidirectional.py) for the same weights.
"""

from __future__ import annotations

import inspect
import json

import numpy
import pytest
from helpers import DATA, WithMask, assert_close, randomize_params

from tinyrnn import Sequential, backend, gradcheck, load_model
from tinyrnn.layers import GRU, LSTM, RNN, Bidirectional, Dense, Embedding, SimpleRNN, deserialize, serialize
from tinyrnn.optimizers import Adam

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7
RNNS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
N_STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU": 1}
MERGE_MODES = ["concat", "sum", "mul", "ave", None]
RNN_TAKES_MASK = "mask" in inspect.signature(RNN.forward).parameters
needs_rnn_masking = pytest.mark.skipif(not RNN_TAKES_MASK, reason="RNN.forward takes no mask yet")


def built(rnn="LSTM", merge_mode="concat", seed=2, dtype="float64", **kwargs):
    """Bidirectional(rnn(H, **kwargs)) built for (B, T, D), both directions' weights random."""
    with backend.float_precision(dtype):
        layer = Bidirectional(RNNS[rnn](H, **kwargs), merge_mode=merge_mode)
        layer.build((None, None, D))
    randomize_params(layer.forward_layer, seed=seed)
    randomize_params(layer.backward_layer, seed=seed + 1)
    return layer


def inputs(seed=0):
    return numpy.random.default_rng(seed).normal(size=(B, T, D))


def right_padded_mask(lengths=(4, 2)):
    return numpy.arange(T)[None, :] < numpy.array(lengths)[:, None]


def forwards_twin(direction):
    """A copy of ``direction`` (its weights too) that reads the sequence forwards: fed x[:, ::-1]
    by hand, it is what the backward layer must compute."""
    spec = serialize(direction)
    spec["config"].update(go_backwards=False, name=f"{direction.name}_twin")
    with backend.float_precision("float64"):
        twin = deserialize(spec)
        twin.build((None, None, D))
    twin.set_weights(direction.get_weights())
    return twin


def as_list(y):
    return list(y) if isinstance(y, list) else [y]


# --- gradient checks ---------------------------------------------------------------


# (last output, no states) and (sequences and states) by default; the other two with -m slow
OPTIONS = [pytest.param(False, False, id="last"), pytest.param(True, True, id="seq-state"),
           pytest.param(False, True, id="last-state", marks=pytest.mark.slow),
           pytest.param(True, False, id="seq", marks=pytest.mark.slow)]


@pytest.mark.parametrize("return_sequences, return_state", OPTIONS)
@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
@pytest.mark.parametrize("rnn", RNNS)
def test_gradcheck_every_merge_mode_and_option(rnn, merge_mode, return_sequences, return_state):
    layer = built(rnn, merge_mode, return_sequences=return_sequences, return_state=return_state)
    report = gradcheck(layer, inputs())
    report.assert_ok(TOL)
    assert len(report.checks) == 1 + 2 * len(layer.forward_layer.params)   # the input and both directions


def test_gradcheck_catches_a_wrong_merge_backward(monkeypatch):
    """The check can fail: mul's backward without the product rule (dy passed through) is caught."""
    layer = built("GRU", "mul", return_sequences=True)
    monkeypatch.setattr(layer, "_merge_backward", lambda d, y_f, y_r: (d[0], d[0]))
    assert gradcheck(layer, inputs()).worst.error > 1e-2


@needs_rnn_masking
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
@pytest.mark.parametrize("rnn", RNNS)
def test_gradcheck_with_a_right_padded_mask(rnn, merge_mode, return_sequences):
    layer = built(rnn, merge_mode, return_sequences=return_sequences)
    mask = right_padded_mask()
    x = inputs() * mask[:, :, None]

    gradcheck(WithMask(layer, mask), x).assert_ok(TOL)


@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_gradcheck_with_initial_states(rnn, merge_mode):
    """[x, h_f(, c_f), h_r(, c_r)]: the gradient reaches every initial state."""
    layer = built(rnn, merge_mode, return_sequences=True, return_state=True)
    rng = numpy.random.default_rng(5)
    states = [rng.normal(size=(B, H)) for _ in range(2 * N_STATES[rnn])]
    report = gradcheck(layer, [inputs(), *states])
    report.assert_ok(TOL)
    assert sum(c.name.startswith("input[") for c in report.checks) == 1 + 2 * N_STATES[rnn]


# --- the two directions, by hand ---------------------------------------------------


@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
def test_the_backward_direction_reads_the_reversed_sequence(merge_mode, return_sequences):
    layer = built("GRU", merge_mode, return_sequences=return_sequences)
    x = inputs()
    y_f = layer.forward_layer.forward(x)
    y_r = forwards_twin(layer.backward_layer).forward(x[:, ::-1].copy())
    if return_sequences:
        y_r = y_r[:, ::-1]                              # output t lines up with input t
    expected = {"concat": numpy.concatenate([y_f, y_r], axis=-1), "sum": y_f + y_r, "mul": y_f * y_r,
                "ave": (y_f + y_r) / 2, None: [y_f, y_r]}[merge_mode]
    for mine, ref in zip(as_list(layer.forward(x)), as_list(expected)):
        assert_close(mine, ref, name=str(merge_mode))


def test_the_two_directions_have_their_own_weights():
    layer = Bidirectional(LSTM(H, name="encoder"))
    layer.build((None, T, D))
    assert layer.forward_layer.name == "forward_encoder"
    assert layer.backward_layer.name == "backward_encoder"
    assert not numpy.array_equal(layer.forward_layer.params["kernel"], layer.backward_layer.params["kernel"])


def test_return_state_order_is_outputs_then_forward_then_backward_states():
    layer = built("LSTM", None, return_state=True)
    x = inputs()
    y_f, h_f, c_f = layer.forward_layer.forward(x)
    y_r, h_r, c_r = forwards_twin(layer.backward_layer).forward(x[:, ::-1].copy())
    out = layer.forward(x)
    assert len(out) == 6
    for mine, ref in zip(out, [y_f, y_r, h_f, c_f, h_r, c_r]):
        assert_close(mine, ref)
    assert layer.compute_output_shape((None, T, D)) == [(None, H)] * 6


def test_initial_states_go_forward_first_then_backward():
    layer = built("LSTM", "concat", return_sequences=True)
    x = inputs()
    h_f, c_f, h_r, c_r = numpy.random.default_rng(7).normal(size=(4, B, H))
    y_f = layer.forward_layer.forward([x, h_f, c_f])
    y_r = forwards_twin(layer.backward_layer).forward([x[:, ::-1].copy(), h_r, c_r])[:, ::-1]
    assert_close(layer.forward([x, h_f, c_f, h_r, c_r]), numpy.concatenate([y_f, y_r], axis=-1))
    assert_close(layer(x, initial_state=[h_f, c_f, h_r, c_r]), numpy.concatenate([y_f, y_r], axis=-1))
    with pytest.raises(ValueError, match="initial_state must be the forward layer's 2 state.*got 2"):
        layer.forward([x, h_f, h_r])


def test_stateful_carries_both_directions_and_resets():
    with backend.float_precision("float64"):
        layer = Bidirectional(GRU(H, stateful=True), merge_mode=None)
        layer.build((B, T, D))
    assert layer.stateful
    x1, x2 = inputs(1), inputs(2)
    first = layer.forward(x1)
    second = layer.forward(x2)                            # starts from the states after x1
    with backend.float_precision("float64"):
        fresh = Bidirectional(GRU(H), merge_mode=None)
        fresh.build((None, T, D))
    fresh.set_weights(layer.get_weights())
    whole = fresh.forward_layer.forward(numpy.concatenate([x1, x2], axis=1))
    assert_close(second[0], whole, atol=1e-12)            # forward: the two batches as one sequence
    assert not numpy.allclose(second[1], fresh.forward(x2)[1])
    assert layer.batch_size == B and len(layer.states) == 2          # forward h, then backward h
    assert_close(layer.states[0], second[0], atol=0)                   # the forward final state
    layer.reset_states()
    assert_close(layer.forward(x1)[0], first[0], atol=1e-12)


def test_a_stateful_bidirectional_layer_trains_in_a_model():
    model = Sequential([Bidirectional(GRU(H, stateful=True), batch_input_shape=[B, T, D]), Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    x = numpy.concatenate([inputs(1), inputs(2)]).astype("float32")          # 2 batches of B
    model.fit(x, numpy.ones((2 * B, 1), "float32"), batch_size=B, epochs=1, shuffle=False, verbose=0)
    assert model.layers[0].states is not None
    with pytest.raises(ValueError, match="stateful with batches of 2"):
        model.predict(x[:3], batch_size=3, verbose=0)
    model.reset_states()
    assert model.layers[0].forward_layer.states is None or not numpy.any(model.layers[0].states[0])


def test_output_shapes_per_merge_mode():
    for merge_mode, last in (("concat", 2 * H), ("sum", H), ("mul", H), ("ave", H)):
        layer = Bidirectional(GRU(H, return_sequences=True), merge_mode=merge_mode)
        layer.build((None, T, D))
        assert layer.compute_output_shape((None, T, D)) == (None, T, last)
        assert layer.forward(inputs().astype("float32")).shape == (B, T, last)


# --- masking -------------------------------------------------------------------------


@needs_rnn_masking
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
def test_a_masked_batch_equals_each_sequence_alone(return_sequences):
    """Right padding changes nothing: row b equals the layer run on sequence b cut to its length."""
    layer = built("LSTM", "concat", return_sequences=return_sequences)
    lengths = (4, 2)
    mask = right_padded_mask(lengths)
    x = inputs() * mask[:, :, None]
    y = layer.forward(x, mask=mask)
    for b, n in enumerate(lengths):
        alone = layer.forward(x[b:b + 1, :n])
        if return_sequences:
            assert_close(y[b, :n], alone[0], atol=1e-12)
            assert_close(y[b, n:], numpy.zeros((T - n, 2 * H)))      # masked steps output zeros (Keras)
        else:
            assert_close(y[b], alone[0], atol=1e-12)


def test_compute_mask_follows_keras():
    mask = right_padded_mask()
    assert Bidirectional(GRU(H)).supports_masking
    assert Bidirectional(GRU(H, return_sequences=True)).compute_mask(None, mask) is mask
    assert Bidirectional(GRU(H)).compute_mask(None, mask) is None
    both = Bidirectional(GRU(H, return_sequences=True), merge_mode=None)
    assert both.compute_mask(None, mask) == [mask, mask]
    masks = Bidirectional(LSTM(H, return_sequences=True, return_state=True)).compute_mask(None, mask)
    assert masks[0] is mask and masks[1:] == [None] * 4


def test_a_mask_of_the_wrong_shape_is_a_clear_error():
    layer = built("GRU")
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 5\).*got \(2, 4\)"):
        layer.forward(inputs(), mask=numpy.ones((B, T - 1), bool))


# --- Keras -------------------------------------------------------------------------


def keras_cases():
    arrays = numpy.load(DATA / "keras_bidirectional.npz")
    meta = json.loads(str(arrays["cases"]))
    for case in meta["cases"]:
        k = case["key"]
        yield case, {name.split("/", 1)[1]: arrays[name] for name in arrays.files if name.startswith(k + "/")}


LAYER_CASES = [(case, a) for case, a in keras_cases() if "rnn" in case]


def _case_id(case):
    kw = case[0]["kwargs"]
    masked = "masked-" if "mask" in case[1] else ""
    sequences = "seq" if kw.get("return_sequences") else "last"
    state = "-state" if kw.get("return_state") else ""
    return f"{masked}{case[0]['rnn']}-{case[0]['merge_mode']}-{sequences}{state}"


def keras_layer(case, arrays, dtype="float64"):
    with backend.float_precision(dtype):
        layer = Bidirectional(RNNS[case["rnn"]](H, **case["kwargs"]), merge_mode=case["merge_mode"])
        layer.build((None, T, D))
    layer.set_weights([arrays[f"w{i}"] for i in range(case["n_weights"])])
    return layer


@pytest.mark.parametrize("case, arrays", LAYER_CASES, ids=[_case_id(c) for c in LAYER_CASES])
def test_outputs_and_gradients_equal_keras(case, arrays):
    if "mask" in arrays and not RNN_TAKES_MASK:
        pytest.skip("RNN.forward takes no mask yet")
    layer = keras_layer(case, arrays)
    mask = arrays.get("mask")
    ys = as_list(layer.forward(arrays["x"]) if mask is None else layer.forward(arrays["x"], mask=mask))
    assert len(ys) == case["n_outputs"]
    for j, y in enumerate(ys):
        assert_close(y, arrays[f"y{j}"], atol=1e-9, name=f"y{j}")
    us = [arrays[f"u{j}"] for j in range(case["n_outputs"])]
    dx = layer.backward(us if len(us) > 1 else us[0])
    assert_close(dx, arrays["dx"], atol=1e-9, name="dx")
    grads = [g for owner in (layer.forward_layer, layer.backward_layer)
             for g in (owner.grads[k] for k in owner.weight_names)]
    for i, g in enumerate(grads):
        assert_close(g, arrays[f"dw{i}"], atol=1e-9, name=f"dw{i}")


def test_float32_outputs_equal_keras_within_float32_tolerance():
    case, arrays = LAYER_CASES[1]                        # LSTM, concat, return_sequences
    layer = keras_layer(case, arrays, dtype="float32")
    y = layer.forward(arrays["x"].astype("float32"))
    assert y.dtype == numpy.float32
    assert_close(y, arrays["y0"], atol=1e-5)


def test_keras_weights_load_in_keras_order():
    case, arrays = LAYER_CASES[0]
    layer = keras_layer(case, arrays)
    weights = layer.get_weights()
    assert [w.shape for w in weights] == [(D, 4 * H), (H, 4 * H), (4 * H,)] * 2
    assert_close(layer.forward_layer.params["kernel"], arrays["w0"])
    assert_close(layer.backward_layer.params["kernel"], arrays["w3"])


# --- construction, errors, saving ------------------------------------------------------


def test_an_unknown_merge_mode_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown merge_mode 'max'.*'concat', 'sum', 'mul', 'ave', None"):
        Bidirectional(LSTM(H), merge_mode="max")


def test_a_non_recurrent_layer_is_refused():
    with pytest.raises(TypeError, match="recurrent layer.*got Dense"):
        Bidirectional(Dense(H))


def test_backward_layer_must_agree_on_return_sequences():
    with pytest.raises(ValueError, match="return_sequences=True but the backward layer return_sequences=Fa"):
        Bidirectional(GRU(H, return_sequences=True), backward_layer=GRU(H, go_backwards=True))


def test_a_given_backward_layer_is_used():
    backward = SimpleRNN(H, activation="relu", go_backwards=True, name="reader")
    layer = Bidirectional(SimpleRNN(H), backward_layer=backward)
    assert layer.backward_layer is backward
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards


def test_a_backward_layer_that_reads_forwards_is_refused():
    with pytest.raises(ValueError, match="both have go_backwards=False.*give it go_backwards=True"):
        Bidirectional(SimpleRNN(H), backward_layer=SimpleRNN(H))


@pytest.mark.parametrize("return_sequences", [False, True])
def test_both_directions_zero_masked_outputs_only_with_return_sequences(return_sequences):
    """Keras forces the wrapped layers' zero_output_for_mask to return_sequences."""
    given = GRU(H, return_sequences=return_sequences, zero_output_for_mask=not return_sequences)
    layer = Bidirectional(given)
    assert layer.forward_layer.zero_output_for_mask is return_sequences
    assert layer.backward_layer.zero_output_for_mask is return_sequences


def test_weights_argument_loads_at_build():
    weights = built("GRU", dtype="float32").get_weights()
    layer = Bidirectional(GRU(H), weights=weights)
    layer.build((None, T, D))
    for mine, ref in zip(layer.get_weights(), weights):
        assert_close(mine, ref)


def test_count_params_and_summary_count_both_directions(capsys):
    model = Sequential([Bidirectional(LSTM(H, return_sequences=True), input_shape=[None, D]),
                        Bidirectional(GRU(H), merge_mode="sum"), Dense(1)])
    model.summary()
    out = capsys.readouterr().out
    lstm = 2 * (D * 4 * H + H * 4 * H + 4 * H)           # two LSTMs of 128
    gru = 2 * (2 * H * 3 * H + H * 3 * H + 2 * 3 * H)     # input 2H; reset_after's two biases: 2 x 168
    assert model.layers[0].count_params() == lstm == 256
    assert model.layers[1].count_params() == gru
    assert "(None, None, 8)" in out and f"{lstm + gru + H + 1:,}" in out


def test_trainable_false_freezes_both_directions():
    model = Sequential([Bidirectional(GRU(H), input_shape=[None, D]), Dense(1)])
    model.build()
    model.layers[0].trainable = False
    dense = model.layers[1].name
    assert [k for k, _, _ in model.trainable_variables()] == [f"{dense}/kernel", f"{dense}/bias"]


def test_config_round_trip():
    layer = Bidirectional(LSTM(H, return_sequences=True, name="enc"), merge_mode="ave")
    rebuilt = deserialize(serialize(layer))
    assert rebuilt.merge_mode == "ave" and rebuilt.return_sequences
    assert rebuilt.forward_layer.name == "forward_enc" and rebuilt.backward_layer.name == "backward_enc"


@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
def test_save_and_load_model(tmp_path, merge_mode):
    model = Sequential([Bidirectional(GRU(H, return_sequences=True), merge_mode=merge_mode or "concat",
                                      input_shape=[None, D]),
                        Bidirectional(LSTM(H), merge_mode=merge_mode or "mul"), Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    x = inputs().astype("float32")
    model.fit(x, numpy.ones((B, 1), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=0)
    assert type(loaded.layers[0]) is Bidirectional and loaded.layers[1].merge_mode == (merge_mode or "mul")


def test_trains_in_a_sequential_model():
    """fit lowers the loss of a task that needs the future: predict x[:, 0] from the whole sequence."""
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, T, 1)).astype("float32")
    y = x[:, 0]
    model = Sequential([Bidirectional(GRU(8), input_shape=[None, 1]), Dense(1)])
    model.compile(loss="mse", optimizer=Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


def test_keras_models_with_a_mask_layer():
    cases = [(c, a) for c, a in keras_cases() if "model" in c]
    if not hasattr(__import__("tinyrnn.layers", fromlist=["Masking"]), "Masking") or not RNN_TAKES_MASK:
        pytest.skip("Masking and masked recurrent layers land with the masking branch")
    from tinyrnn.layers import Masking

    masking, embedding = cases
    model = Sequential([Masking(0.0, input_shape=[T, D]),
                        Bidirectional(LSTM(H, return_sequences=True), merge_mode="sum")])
    model.build()
    model.set_weights([masking[1][f"w{i}"] for i in range(6)])
    assert_close(model.predict(masking[1]["x"], verbose=0), masking[1]["y0"], atol=1e-6)
    model = Sequential([Embedding(7, D, mask_zero=True, input_shape=[T]), Bidirectional(GRU(H))])
    model.build()
    model.set_weights([embedding[1][f"w{i}"] for i in range(7)])
    assert_close(model.predict(embedding[1]["x"], verbose=0), embedding[1]["y0"], atol=1e-6)


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_a_mask_flows_through_a_functional_model_and_its_loss(tmp_path, merge_mode):
    """Masking -> Bidirectional(return_sequences) -> Dense per step: the output carries the mask,
    the loss leaves the padded steps out (changing their targets changes nothing), and the model
    saves and loads."""
    from tinyrnn import Input, Model
    from tinyrnn.layers import Concatenate, Masking

    mask = right_padded_mask()
    x = (inputs() * mask[:, :, None]).astype("float32")
    inp = Input((T, D))
    seq = Bidirectional(GRU(H, return_sequences=True), merge_mode=merge_mode)(Masking(0.0)(inp))
    out = Dense(1)(Concatenate()(seq) if merge_mode is None else seq)
    model = Model(inp, out)
    model.compile(loss="mse", optimizer="adam")
    y = numpy.random.default_rng(1).normal(size=(B, T, 1)).astype("float32")
    y_other = numpy.where(mask[:, :, None], y, 100.0).astype("float32")       # padded targets changed
    assert model.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y_other, verbose=0), rel=1e-6)
    predictions = model.forward(x)
    assert (model.output_mask == mask).all()                                # the mask reached the output
    assert (predictions[~mask] == model.layers[-1].params["bias"]).all()     # zero outputs -> the bias
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.npz")
    assert_close(load_model(tmp_path / "m.npz").predict(x, verbose=0), model.predict(x, verbose=0), atol=0)
