"""Property tests: random sizes and options give Keras's output shapes and pass the gradient check.

The expected shapes are Keras's documented rules, written out here independently
of tinyrnn's code: for recurrent layers (B, T, H) with ``return_sequences`` else
(B, H), plus one (B, H) per state with ``return_state`` (h, and c for LSTM); for
Dense the last axis becomes H; for Conv1D

    T_out = ceil((T - K_eff + 1) / s)   (valid),   ceil(T / s)   (same, causal),

with K_eff = (K - 1) r + 1 (TensorFlow's conv_output_length).
"""

import math

import numpy
from helpers import randomize_params
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinyrnn import gradcheck
from tinyrnn.layers import GRU, LSTM, Conv1D, Dense, SimpleRNN
from tinyrnn.layers.convolutional import effective_kernel_size

SHAPES = settings(max_examples=20, deadline=None)
GRADIENTS = settings(max_examples=20, deadline=None)  # each example checks every entry: small sizes

RECURRENT = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU": 1}


def random_input(shape, seed, scale=1.0):
    return numpy.random.default_rng(seed).normal(scale=scale, size=shape).astype("float32")


GRADCHECK_FLOOR = 1e-5
"""Entries smaller than this are judged on their absolute error (<= 1e-7 * 1e-5 = 1e-12).

The finite differences' rounding noise is about 1e-13 (|L| * 1e-16 / eps), so with
gradcheck's default floor (1e-6) an entry of a true gradient near 1e-7 (an unlucky
cancellation, a saturated unit, h_0 = 0 feeding the recurrent kernel) fails the 1e-7
bound on noise alone: measured, 2 configurations in 400. A wrong backward line still
scores about 1 on every entry of ordinary size."""


def checked(layer, shape, seed, training=False):
    """gradcheck with random parameters (biases too: zero defaults hide bugs), scaled so
    few units saturate (a saturated unit's gradients are tiny, see GRADCHECK_FLOOR)."""
    layer.build((None, *shape[1:]))
    randomize_params(layer, seed, scale=0.3)
    x = random_input(shape, seed, scale=0.5)
    return gradcheck(layer, x, seed=seed, training=training, floor=GRADCHECK_FLOOR)


# --- recurrent layers -------------------------------------------------------------------------
@st.composite
def recurrent_cases(draw, small=False):
    top = 3 if small else 6
    kind = draw(st.sampled_from(sorted(RECURRENT)))
    kwargs = {"return_sequences": draw(st.booleans()), "return_state": draw(st.booleans())}
    if kind == "GRU":
        kwargs["reset_after"] = draw(st.booleans())
    sizes = [draw(st.integers(1, top)) for _ in "BTDH"]
    return kind, kwargs, sizes


def keras_recurrent_shapes(kind, kwargs, B, T, H):
    y = (B, T, H) if kwargs["return_sequences"] else (B, H)
    return [y] + [(B, H)] * STATES[kind] if kwargs["return_state"] else y


@SHAPES
@given(recurrent_cases(), st.integers(0, 2**16))
def test_recurrent_output_shapes_are_keras_shapes(case, seed):
    kind, kwargs, (B, T, D, H) = case
    layer = RECURRENT[kind](H, **kwargs)
    assert layer.compute_output_shape((None, None, D)) == keras_recurrent_shapes(kind, kwargs, None, None, H)
    out = layer(random_input((B, T, D), seed))
    outputs = out if kwargs["return_state"] else [out]
    expected = keras_recurrent_shapes(kind, kwargs, B, T, H)
    assert [o.shape for o in outputs] == (expected if kwargs["return_state"] else [expected])
    assert layer.compute_output_shape((B, T, D)) == expected
    last = outputs[0][:, -1] if kwargs["return_sequences"] else outputs[0]
    if kwargs["return_state"]:
        numpy.testing.assert_array_equal(outputs[1], last)  # Keras: the state h_T is the last output


@GRADIENTS
@given(recurrent_cases(small=True), st.sampled_from([0.0, 0.3]), st.integers(0, 2**16))
def test_recurrent_layers_pass_the_gradient_check(case, dropout, seed):
    kind, kwargs, (B, T, D, H) = case
    layer = RECURRENT[kind](H, dropout=dropout, recurrent_dropout=dropout, **kwargs)
    checked(layer, (B, T, D), seed, training=dropout > 0).assert_ok(1e-7)


# --- Dense ---------------------------------------------------------------------------------------
@SHAPES
@given(st.lists(st.integers(1, 5), min_size=2, max_size=3), st.integers(1, 6), st.integers(0, 2**16))
def test_dense_output_shapes_are_keras_shapes(shape, H, seed):
    layer = Dense(H)
    *leading, D = shape  # (B, D) or (B, T, D)
    expected = (*leading, H)
    assert layer.compute_output_shape((None, *leading[1:], D)) == (None, *leading[1:], H)
    assert layer(random_input(shape, seed)).shape == expected


@GRADIENTS
@given(st.lists(st.integers(1, 3), min_size=2, max_size=3), st.integers(1, 3),
       st.sampled_from([None, "tanh", "sigmoid"]), st.integers(0, 2**16))
def test_dense_passes_the_gradient_check(shape, H, activation, seed):
    checked(Dense(H, activation=activation), shape, seed).assert_ok(1e-7)


# --- Conv1D --------------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw, small=False):
    top = 3 if small else 5
    K, r, s = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same", "causal"]))
    k_eff = effective_kernel_size(K, r)
    low = k_eff if padding == "valid" else 1  # a valid-padded input must be at least as long as the kernel
    T = draw(st.integers(low, low + (4 if small else 8)))
    B, D, F = (draw(st.integers(1, top)) for _ in "BDF")
    return dict(filters=F, kernel_size=K, strides=s, padding=padding, dilation_rate=r), (B, T, D)


def keras_conv_length(T, kernel_size, strides, padding, dilation_rate, **_):
    k_eff = (kernel_size - 1) * dilation_rate + 1
    if padding == "valid":
        return math.ceil((T - k_eff + 1) / strides)
    return math.ceil(T / strides)


@SHAPES
@given(conv_cases(), st.integers(0, 2**16))
def test_conv1d_output_shapes_are_keras_shapes(case, seed):
    options, (B, T, D) = case
    layer = Conv1D(**options)
    expected = (B, keras_conv_length(T, **options), options["filters"])
    assert layer.compute_output_shape((None, T, D)) == (None, *expected[1:])
    assert layer.compute_output_shape((None, None, D)) == (None, None, options["filters"])
    assert layer(random_input((B, T, D), seed)).shape == expected


@SHAPES
@given(conv_cases(), st.data())
def test_conv1d_refuses_valid_inputs_shorter_than_the_kernel(case, data):
    options, (B, _, D) = case
    k_eff = effective_kernel_size(options["kernel_size"], options["dilation_rate"])
    assume(k_eff > 1)
    T = data.draw(st.integers(1, k_eff - 1), label="T")
    layer = Conv1D(**{**options, "padding": "valid"})
    try:
        layer(random_input((B, T, D), 0))
    except ValueError as err:
        assert f"spans {k_eff} time steps" in str(err) and "padding='same'" in str(err)
    else:
        raise AssertionError(f"T={T} < K_eff={k_eff} was accepted")


@GRADIENTS
@given(conv_cases(small=True), st.sampled_from([None, "tanh"]), st.integers(0, 2**16))
def test_conv1d_passes_the_gradient_check(case, activation, seed):
    options, shape = case
    checked(Conv1D(activation=activation, **options), shape, seed).assert_ok(1e-7)
