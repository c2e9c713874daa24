"""The layer contract (tinyrnn/layers/base.py), checked on every layer class with parameters.

``backward`` *accumulates* into ``grads``: two forward/backward passes with upstream
gradients G1 and G2 leave grads = dL1/dp + dL2/dp, for every parameter. A ``=``
where a ``+=`` belongs passes every single-pass test (gradcheck zeroes the grads
first) and silently drops a batch part, a time slice or an earlier call.

The list is complete by construction: every registered layer class is either in
``LAYERS`` or has no parameters once built (checked below), so a new layer with
parameters cannot be left out.
"""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close, randomize_params

from tinyrnn import backend, layers
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    AdditiveAttention,
    Attention,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Dense,
    Embedding,
    LayerNormalization,
    LNSimpleRNNCell,
    MultiHeadAttention,
    PeepholeLSTMCell,
    SimpleRNN,
    SimpleRNNCell,
    TimeDistributed,
)
from tinyrnn.layers.base import parameter_owners

B, T, D, H = 2, 5, 3, 4

# name -> (a new layer, its input shape, forward in training mode)
LAYERS = {
    "Dense": (lambda: Dense(H), (B, D), False),
    "Dense(tanh, on (B, T, D))": (lambda: Dense(H, activation="tanh"), (B, T, D), False),
    "TimeDistributed(Dense)": (lambda: TimeDistributed(Dense(H, activation="tanh")), (B, T, D), False),
    "LayerNormalization": (lambda: LayerNormalization(), (B, T, D), False),
    "BatchNormalization(training)": (lambda: BatchNormalization(), (B, T, D), True),
    "BatchNormalization(inference)": (lambda: BatchNormalization(), (B, T, D), False),
    "Conv1D": (lambda: Conv1D(H, 2), (B, T, D), False),
    "Conv1D(causal, dilated)": (lambda: Conv1D(H, 2, padding="causal", dilation_rate=2), (B, T, D), False),
    "SimpleRNN": (lambda: SimpleRNN(H, return_sequences=True), (B, T, D), False),
    "LSTM": (lambda: LSTM(H, return_sequences=True), (B, T, D), False),
    "GRU(reset_after)": (lambda: GRU(H, return_sequences=True), (B, T, D), False),
    "GRU(reset_before)": (lambda: GRU(H, reset_after=False, return_sequences=True), (B, T, D), False),
    "RNN(SimpleRNNCell)": (lambda: RNN(SimpleRNNCell(H), return_state=True), (B, T, D), False),
    "RNN(PeepholeLSTMCell)": (lambda: RNN(PeepholeLSTMCell(H), return_sequences=True), (B, T, D), False),
    "RNN(LNSimpleRNNCell)": (lambda: RNN(LNSimpleRNNCell(H), return_sequences=True), (B, T, D), False),
    "Embedding": (lambda: Embedding(D, H), (B, T), False),     # token ids in [0, D), repeated
    "Bidirectional(LSTM, mul)": (lambda: Bidirectional(LSTM(H, return_sequences=True), merge_mode="mul"),
                                 (B, T, D), False),
    # several inputs: a list of shapes ([query, value] (B, Tq, D), (B, Tv, D))
    "Attention(concat, scaled)": (lambda: Attention(use_scale=True, score_mode="concat"),
                                  [(B, T, D), (B, H, D)], False),
    "AdditiveAttention": (lambda: AdditiveAttention(), [(B, T, D), (B, H, D)], False),
    "MultiHeadAttention": (lambda: MultiHeadAttention(2, H), [(B, T, D), (B, H, D)], False),
}


# gradients that are zero by the math: the key bias adds q_i . b_k to a whole row of scores,
# which softmax ignores (tests/test_attention.py)
ZERO_GRADIENTS = {("MultiHeadAttention", "key_bias")}


def built(name, seed=0):
    make, shape, training = LAYERS[name]
    with backend.float_precision("float64"):
        layer = make()
        layer.build([(None, *s[1:]) for s in shape] if isinstance(shape, list) else (None, *shape[1:]))
    for k, owner in enumerate(parameter_owners([layer])):   # Bidirectional: its two directions
        randomize_params(owner, seed=seed + k)   # random biases and gains: defaults hide terms
    return layer, shape, training


def upstream(y, seed):
    """A random upstream gradient for each output (a list for return_state)."""
    rng = numpy.random.default_rng(seed)
    if isinstance(y, list):
        return [rng.normal(size=part.shape) for part in y]
    return rng.normal(size=y.shape)


def grads_after(layer, x, training, dys):
    """layer.grads after zeroing them and one forward/backward per upstream gradient in ``dys``."""
    layer.zero_grads()
    for dy in dys:
        layer.forward(x, training=training)
        layer.backward(dy)
    return {f"{owner.name}/{k}": backend.to_numpy(g).copy()
            for owner in parameter_owners([layer]) for k, g in owner.grads.items()}


@pytest.mark.parametrize("name", LAYERS)
def test_backward_accumulates_over_two_passes(name):
    layer, shape, training = built(name)
    rng = numpy.random.default_rng(1)
    ids = layer.accepts_integer_inputs           # an Embedding reads token ids
    if isinstance(shape, list):                  # several inputs
        x = [rng.normal(size=s) for s in shape]
    else:
        x = rng.integers(0, layer.input_dim, size=shape) if ids else rng.normal(size=shape)
    y = layer.forward(x, training=training)
    dy1, dy2 = upstream(y, seed=2), upstream(y, seed=3)
    first = grads_after(layer, x, training, [dy1])
    second = grads_after(layer, x, training, [dy2])
    both = grads_after(layer, x, training, [dy1, dy2])
    names = [f"{owner.name}/{k}" for owner in parameter_owners([layer]) for k in owner.params]
    assert sorted(both) == sorted(names) and both
    for key in both:
        if (name, key.split("/")[-1]) not in ZERO_GRADIENTS:
            assert numpy.abs(first[key]).max() > 1e-3 and numpy.abs(second[key]).max() > 1e-3, key
        assert_close(both[key], first[key] + second[key], atol=1e-12, name=f"{name} {key}")


WITHOUT_PARAMETERS = {  # the other registered layers, built: none may have parameters
    "Flatten": lambda: layers.Flatten(),
    "Dropout": lambda: layers.Dropout(0.5),
    "RepeatVector": lambda: layers.RepeatVector(2),
    "InputLayer": lambda: layers.InputLayer(input_shape=[T, D]),
    "Activation": lambda: layers.Activation("tanh"),
    "Masking": lambda: layers.Masking(),
    "Lambda": lambda: layers.Lambda(lambda x: x * 2),
    "Reshape": lambda: layers.Reshape((D, T)),
    "Permute": lambda: layers.Permute((2, 1)),
    **{name: (lambda name=name: _merge_built(name))
       for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Concatenate")},
}


def _merge_built(name):
    """A merge layer built for two (B, T, D) inputs."""
    layer = getattr(layers, name)()
    layer.build([(None, T, D), (None, T, D)])
    return layer


def test_every_layer_class_with_parameters_is_in_the_list():
    listed = set()
    for name in LAYERS:
        layer = built(name)[0]
        listed |= {type(layer).__name__} | {type(sub).__name__ for sub in layer.sublayers()}
    registered = {name for name, cls in layers._REGISTRY.items() if issubclass(cls, layers.Layer)}
    assert registered - listed == set(WITHOUT_PARAMETERS), "a new layer class: add it to LAYERS"
    for name, make in WITHOUT_PARAMETERS.items():
        layer = make()
        if not layer.built:
            layer.build((None, D) if name == "RepeatVector" else (None, T, D))
        assert not layer.params, f"{name} has parameters: move it to LAYERS"
