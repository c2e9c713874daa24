"""The recurrent layers keep their tape's large arrays from batch to batch (``backend.ArrayPool``):
what they compute does not change, and what a caller holds is never overwritten.

The pool takes arrays from ``ArrayPool.min_bytes`` (1 MiB); the tests lower it to 0 so that the
small test layers (B=6, T=5, D=3, H=4) use it, and compare with a run that never reuses an array.
"""

from __future__ import annotations

import copy

import numpy
import pytest
from helpers import assert_close, randomize_params, recurrent_builders

from tinyrnn import backend, seeding
from tinyrnn.backend import ArrayPool
from tinyrnn.layers.base import parameter_owners

B, T, D, H = 6, 5, 3, 4
BUILDERS = recurrent_builders(H, keras_protocol=False)


@pytest.fixture
def pool_everything(monkeypatch):
    monkeypatch.setattr(ArrayPool, "min_bytes", 0)


def test_pool_hands_back_what_it_was_given(pool_everything):
    pool = ArrayPool()
    a = pool.empty((3, 4), "float64")
    assert pool.empty((3, 4), "float64") is not a                   # nothing given back yet
    pool.give(a)
    assert pool.empty((3, 4), "float32") is not a                   # another dtype
    assert pool.empty((3, 4), "float64") is a
    assert pool.empty((3, 4), "float64") is not a                   # handed out once


def test_pool_takes_back_only_what_it_made(pool_everything):
    pool = ArrayPool()
    made_elsewhere = numpy.empty((7, 7))
    pool.empty((7, 7), "float64")                                    # the shape is asked for
    pool.give(made_elsewhere)
    assert pool.empty((7, 7), "float64") is not made_elsewhere      # someone else's array: not reused
    whole = pool.empty((2, 7, 7), "float64")
    pool.give(whole[0])                                              # a view of one it made
    assert pool.empty((7, 7), "float64") is not whole[0].base
    arrays = [pool.empty((7, 7), "float64") for _ in range(ArrayPool.keep + 2)]
    pool.give(*arrays)
    taken = [pool.empty((7, 7), "float64") for _ in range(ArrayPool.keep + 2)]
    assert sum(any(t is a for a in arrays) for t in taken) == ArrayPool.keep


def test_small_arrays_are_left_to_numpy():
    pool = ArrayPool()
    small = pool.empty((10, 10), "float64")                          # 800 bytes < min_bytes
    pool.give(small)
    assert pool.empty((10, 10), "float64") is not small


def test_a_copied_layer_has_a_pool_of_its_own(pool_everything):
    layer = BUILDERS["LSTM"](return_sequences=True)
    layer.build((None, None, D))
    layer.forward(numpy.zeros((B, T, D)))
    layer.backward(numpy.ones((B, T, H)))
    twin = copy.deepcopy(layer)
    assert twin.cell.pool is not layer.cell.pool and not twin.cell.pool._free


def test_the_second_batch_reuses_the_first_batch_tape(pool_everything):
    layer = BUILDERS["LSTM"](return_sequences=True)
    layer.build((None, None, D))
    x = numpy.random.default_rng(0).normal(size=(B, T, D))
    layer.forward(x)
    layer.backward(numpy.ones((B, T, H)))
    given = {id(a) for arrays in layer.cell.pool._free.values() for a in arrays}
    assert given                                                      # the tape went back to the pool
    layer.forward(x)
    (_, tapes, *_) = layer._cache
    assert any(id(a) in given for a in tapes[0].pooled)              # and the next batch took it


def train(make, batches, options, pooled, monkeypatch, stateful=False):
    """Three batches of forward and backward (with a parameter update between), float64: the
    outputs, input gradients, weight gradients and returned states of every batch."""
    monkeypatch.setattr(ArrayPool, "min_bytes", 0 if pooled else 2**62)
    seeding.set_random_seed(3)
    with backend.float_precision("float64"):
        layer = make(return_sequences=True, return_state=True, stateful=stateful,
                     **({"batch_size": B} if stateful else {}), **options)
        layer.build((B, T, D))
    for owner in parameter_owners([layer]):
        randomize_params(owner, seed=4)
    rng = numpy.random.default_rng(5)
    record = []
    for x in batches:
        for grad in layer.grads.values():
            grad[...] = 0
        y, *states = layer.forward(x, training=True)
        held = [numpy.array(s) for s in states]                      # what the caller holds now ...
        upstream = [rng.normal(size=y.shape)] + [rng.normal(size=s.shape) for s in states]
        dx = layer.backward(upstream)
        record.append((numpy.array(y), numpy.array(dx), {k: g.copy() for k, g in layer.grads.items()},
                       held, states))
        for name, p in layer.params.items():
            p -= 0.1 * layer.grads[name]
    for _, _, _, held, states in record:                             # ... is never overwritten later
        for before, now in zip(held, states):
            numpy.testing.assert_array_equal(now, before)
    return record


@pytest.mark.parametrize("case", ["plain", "dropout", "masked", "stateful", "split"])
@pytest.mark.parametrize("name", BUILDERS)
def test_training_with_the_pool_equals_training_without(monkeypatch, name, case):
    rng = numpy.random.default_rng(6)
    batches = [rng.normal(size=(B, T, D)) for _ in range(3)]
    if case == "masked":
        for x in batches:
            x[:2, -2:] = 0.0                                          # right padding, masked below
    options = {"dropout": 0.2, "recurrent_dropout": 0.3} if case == "dropout" else {}
    if case == "split":
        monkeypatch.setattr(backend, "PARALLEL_GRAIN", 1)
        backend.set_threads(2)
    try:
        make = BUILDERS[name]
        if case == "masked":
            def make_masked(**kw):                                   # the mask as forward's argument
                layer = make(**kw)
                forward = layer.forward
                layer.forward = lambda x, training=False: forward(x, training=training,
                                                                  mask=(x != 0).any(axis=-1))
                return layer
            runs = [train(make_masked, batches, options, pooled, monkeypatch) for pooled in (False, True)]
        else:
            runs = [train(make, batches, options, pooled, monkeypatch, stateful=case == "stateful")
                    for pooled in (False, True)]
    finally:
        backend.set_threads(None)
    for k, (plain, pooled) in enumerate(zip(*runs)):
        assert_close(pooled[0], plain[0], atol=0, name=f"batch {k} outputs")
        assert_close(pooled[1], plain[1], atol=0, name=f"batch {k} dx")
        for w in plain[2]:
            assert_close(pooled[2][w], plain[2][w], atol=0, name=f"batch {k} d{w}")
        for s_plain, s_pooled in zip(plain[3], pooled[3]):
            assert_close(s_pooled, s_plain, atol=0, name=f"batch {k} final state")
