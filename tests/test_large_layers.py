"""What a large recurrent layer computes differently, for speed, computes the same:

- phase 1 and the input gradient as one matrix product over all steps (``one_product``),
  compared with the per-step products;
- the LSTM's backward factors in slices of time (``cache_slices``), compared with one slice.

The tests lower ``recurrent.ONE_PRODUCT_MACS`` and ``recurrent.CACHE_SLICE`` so that the small
test layers (B=5, T=4, D=3, H=4) take those paths, and compare in float64.
"""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close, randomize_params, recurrent_builders

from tinyrnn import backend, gradcheck, seeding
from tinyrnn.layers import LSTM, recurrent

B, T, D, H = 5, 4, 3, 4
BUILDERS = recurrent_builders(H, keras_protocol=False)


def forward_backward(layer, x, upstream, training):
    seeding.set_random_seed(3)  # the same dropout masks in both runs
    for grad in layer.grads.values():
        grad[...] = 0
    y = layer.forward(x, training=training)
    dx = layer.backward(upstream)
    return (backend.to_numpy(y).copy(), backend.to_numpy(dx).copy(),
            {k: backend.to_numpy(g).copy() for k, g in layer.grads.items()})


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("name", BUILDERS)
def test_one_product_equals_per_step_products(monkeypatch, name, dropout):
    options = {"dropout": 0.3, "recurrent_dropout": 0.4} if dropout else {}
    with backend.float_precision("float64"):
        layer = BUILDERS[name](return_sequences=True, **options)
        layer.build((None, None, D))
    randomize_params(layer, seed=1)
    rng = numpy.random.default_rng(2)
    x, upstream = rng.normal(size=(B, T, D)), rng.normal(size=(B, T, H))
    assert not recurrent.one_product(4 * H, D, B)
    per_step = forward_backward(layer, x, upstream, dropout)
    monkeypatch.setattr(recurrent, "ONE_PRODUCT_MACS", 1)
    assert recurrent.one_product(4 * H, D, B)
    one = forward_backward(layer, x, upstream, dropout)
    assert_close(one[0], per_step[0], atol=1e-13, name="output")
    assert_close(one[1], per_step[1], atol=1e-13, name="dx")
    for k in per_step[2]:
        assert_close(one[2][k], per_step[2][k], atol=1e-12, name=k)


def test_one_product_in_slices_gradcheck(monkeypatch):
    """Several time slices in phase 4 (slice size of one step) with dx written slice by slice."""
    monkeypatch.setattr(recurrent, "ONE_PRODUCT_MACS", 1)
    real = recurrent.sum_over_time_and_batch
    monkeypatch.setattr(recurrent, "sum_over_time_and_batch",
                        lambda *args, **kw: real(*args, **{**kw, "slice_size": 1}))
    with backend.float_precision("float64"):
        layer = LSTM(H, return_sequences=True)
        layer.build((None, None, D))
    randomize_params(layer, seed=4)
    gradcheck(layer, numpy.random.default_rng(5).normal(size=(B, T, D))).assert_ok(1e-7)


@pytest.mark.parametrize("name", ["LSTM", "RNN(PeepholeLSTMCell)"])
def test_backward_factors_in_slices_equal_one_slice(monkeypatch, name):
    with backend.float_precision("float64"):
        layer = BUILDERS[name](return_sequences=True)
        layer.build((None, None, D))
    randomize_params(layer, seed=6)
    rng = numpy.random.default_rng(7)
    x, upstream = rng.normal(size=(B, T, D)), rng.normal(size=(B, T, H))
    assert len(recurrent.cache_slices(T, H * B)) == 1
    whole = forward_backward(layer, x, upstream, False)
    monkeypatch.setattr(recurrent, "CACHE_SLICE", 2 * H * B)        # slices of 2 steps
    assert [(s.start, s.stop) for s in recurrent.cache_slices(T, H * B)] == [(0, 2), (2, 4)]
    sliced = forward_backward(layer, x, upstream, False)
    assert_close(sliced[1], whole[1], atol=1e-13, name="dx")
    for k in whole[2]:
        assert_close(sliced[2][k], whole[2][k], atol=1e-12, name=k)
