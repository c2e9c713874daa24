"""Masking inside the recurrence: a masked step carries every state unchanged.

RNN.forward(x, mask=m) with m (B, T) bool. Gradient checks in float64 with random weights and
biases and a random upstream gradient; the outputs of Keras 3 (Masking(0.) -> LSTM / GRU on a
right-padded batch, tests/data/make_keras_masking.py) are matched to float32 tolerance.
"""

from __future__ import annotations

import numpy
import pytest
from helpers import (
    DATA,
    RECURRENT_STATES,
    WithMask,
    assert_close,
    random_float64_layer,
    recurrent_builders,
)

from tinyrnn import backend, gradcheck
from tinyrnn.layers import GRU, LSTM

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7
RIGHT_PADDED = numpy.array([[True] * 5, [True] * 3 + [False] * 2])        # lengths 5 and 3
WITH_HOLES = numpy.array([[True, False, True, True, False], [False, True, False, True, True]])

BUILDERS = recurrent_builders(H)
N_STATES = RECURRENT_STATES


def normal(*shape, seed=0, scale=1.0):
    return numpy.random.default_rng(seed).normal(scale=scale, size=shape)


def built(name, seed=2, **kwargs):
    """A float64 layer with random weights, biases and gains, built for (B, T, D) inputs."""
    layer = random_float64_layer(lambda: BUILDERS[name](**kwargs), normal(B, T, D), seed=seed)
    return layer


def as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


# --- gradient checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("options", [{"return_sequences": True}, {"return_state": True},
                                     {"return_sequences": True, "zero_output_for_mask": True},
                                     {"return_sequences": True, "go_backwards": True}],
                         ids=["seq", "last+state", "seq zero_output", "seq backwards"])
@pytest.mark.parametrize("name", BUILDERS)
def test_gradcheck_through_a_right_padded_mask(name, options):
    layer = built(name, **options)
    gradcheck(WithMask(layer, RIGHT_PADDED), normal(B, T, D, seed=1)).assert_ok(TOL)


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU(reset_after)", "RNN(Keras-protocol LSTM)"])
def test_gradcheck_with_holes_and_initial_states(name):
    """Masked steps anywhere, from given states: the (1 - m) path carries dL/dh back to h_0, c_0."""
    layer = built(name, return_sequences=True, return_state=True)
    states = [normal(B, H, seed=10 + k, scale=0.5) for k in range(N_STATES[name])]
    gradcheck(WithMask(layer, WITH_HOLES), [normal(B, T, D, seed=1), *states]).assert_ok(TOL)


# --- the forward pass ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", BUILDERS)
def test_a_masked_step_is_skipped(name):
    """Masked steps anywhere: outputs and final states equal the layer run on the kept steps alone,
    and an output at a masked step repeats the last one (Keras's zero_output_for_mask=False)."""
    layer = built(name, return_sequences=True, return_state=True)
    x = normal(B, T, D, seed=3)
    y, *states = layer.forward(x, mask=WITH_HOLES)
    for b in range(B):
        kept = numpy.flatnonzero(WITH_HOLES[b])
        y_kept, *states_kept = layer.forward(x[b:b + 1, kept])
        assert_close(y[b, kept], y_kept[0], 1e-12, name=f"y of sequence {b} at its kept steps")
        for k, (s, s_kept) in enumerate(zip(states, states_kept)):
            assert_close(s[b], s_kept[0], 1e-12, name=f"final state {k} of sequence {b}")
        shown = numpy.cumsum(WITH_HOLES[b]) - 1                      # the last kept step so far
        for t in range(T):
            expected = numpy.zeros(H) if shown[t] < 0 else y_kept[0, shown[t]]
            assert_close(y[b, t], expected, 1e-12, name=f"y[{b}, {t}]")


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU(reset_after)", "RNN(Keras-protocol LSTM)"])
def test_the_last_output_of_a_right_padded_sequence_is_its_last_real_step(name):
    layer = built(name)
    x = normal(B, T, D, seed=4)
    y = layer.forward(x, mask=RIGHT_PADDED)
    assert_close(y[1], layer.forward(x[1:, :3])[0], 1e-12, name="sequence of length 3")
    zeroed = built(name, zero_output_for_mask=True)
    assert_close(zeroed.forward(x, mask=RIGHT_PADDED)[1], numpy.zeros(H), 0.0, name="zero_output_for_mask")


def test_without_a_mask_nothing_changes_and_an_all_true_mask_is_no_mask():
    layer = built("LSTM", return_sequences=True)
    x = normal(B, T, D, seed=5)
    assert_close(layer.forward(x, mask=numpy.ones((B, T), bool)), layer.forward(x), 0.0, name="y")


def test_a_mask_of_the_wrong_shape_is_refused():
    layer = built("GRU(reset_after)")
    with pytest.raises(ValueError, match=r"mask must be \(B, T\) = \(2, 5\).*got shape \(2, 4\)"):
        layer.forward(normal(B, T, D), mask=numpy.ones((B, T - 1), bool))
    with pytest.raises(ValueError, match=r"got shape \(2, 5, 3\).*any\(axis=-1\)"):
        layer.forward(normal(B, T, D), mask=numpy.ones((B, T, D), bool))


def test_compute_mask_follows_keras():
    m = RIGHT_PADDED
    assert GRU(H, return_sequences=True).compute_mask(None, m) is m
    assert GRU(H).compute_mask(None, m) is None
    assert LSTM(H, return_sequences=True, return_state=True).compute_mask(None, m) == [m, None, None]
    assert GRU(H, return_state=True).compute_mask(None, m) == [None, None]


def test_options_in_the_config():
    config = GRU(H, go_backwards=True, zero_output_for_mask=True).get_config()
    assert config["go_backwards"] and config["zero_output_for_mask"]
    again = GRU.from_config(config) if hasattr(GRU, "from_config") else GRU(**config)
    assert again.go_backwards and again.zero_output_for_mask


# --- go_backwards ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU(reset_after)", "RNN(Keras-protocol LSTM)"])
def test_go_backwards_reads_the_sequence_from_its_end(name):
    """As Keras: the reversed sequence in, the outputs in the order they were computed."""
    forwards = built(name, return_sequences=True, return_state=True)
    backwards = built(name, return_sequences=True, return_state=True, go_backwards=True)
    backwards.set_weights(forwards.get_weights())
    x = normal(B, T, D, seed=6)
    for a, b in zip(backwards.forward(x), forwards.forward(x[:, ::-1])):
        assert_close(a, b, 1e-12, name="go_backwards")


# --- Keras 3 --------------------------------------------------------------------------------------
KERAS = numpy.load(DATA / "keras_masking.npz")
CASES = sorted({name.split("/")[0] for name in KERAS.files if "/" in name})
OPTIONS = {"seq": {"return_sequences": True}, "state": {"return_state": True},
           "zero": {"zero_output_for_mask": True}, "backwards": {"go_backwards": True}}


@pytest.mark.parametrize("case", CASES)
def test_masking_matches_keras(case):
    """Masking(0.) -> LSTM / GRU in Keras 3, same weights, a right-padded batch: same outputs."""
    kind, *words = case.split("_")
    options = {k: v for word in words for k, v in OPTIONS.get(word, {}).items()}
    layer = (LSTM if kind == "lstm" else GRU)(KERAS[f"{case}/w0"].shape[1] // (4 if kind == "lstm" else 3),
                                              **options)
    x, mask = KERAS["x"], KERAS["mask"]
    assert mask.sum(axis=1).tolist() == [6, 4, 2]
    layer.build((None, *x.shape[1:]))
    layer.set_weights([KERAS[f"{case}/w{i}"] for i in range(3)])
    mine = as_list(layer.forward(backend.asarray(x), mask=backend.asarray(mask)))
    references = [KERAS[f"{case}/y{i}"] for i in range(sum(f"{case}/y" in n for n in KERAS.files))]
    assert len(mine) == len(references)
    for i, (a, b) in enumerate(zip(mine, references)):
        assert_close(a, b, 2e-6, name=f"{case} output {i}")


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU(reset_after)", "GRU(reset_before)"])
def test_gradcheck_with_a_mask_and_dropout_in_training(name):
    """The dropout masks and the time mask together (gradcheck reseeds before every forward)."""
    layer = built(name, return_sequences=True, dropout=0.3, recurrent_dropout=0.4)
    gradcheck(WithMask(layer, WITH_HOLES), normal(B, T, D, seed=1), training=True).assert_ok(TOL)
