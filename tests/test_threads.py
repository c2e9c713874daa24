"""The engine's threads (``backend.set_threads``): a recurrent layer's batch split over
threads computes what one thread does, and the engine's BLAS threads are its rule's,
inside its calls only.

The tests lower ``backend.PARALLEL_GRAIN`` so that the small test layers
(B=5, T=4, D=3, H=4) split too; the batch size is odd so the parts differ in size.
"""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close, randomize_params, recurrent_builders
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyrnn import backend, gradcheck, seeding
from tinyrnn.layers import GRU, LSTM
from tinyrnn.models import Sequential

B, T, D, H = 5, 4, 3, 4
BUILDERS = recurrent_builders(H, keras_protocol=False)


@pytest.fixture(autouse=True, scope="module")
def leave_threads_as_found():
    """Put the engine's defaults and the process's BLAS threads back for the other tests."""
    blas = backend.blas_threads()
    yield
    backend.set_threads(None)
    backend.set_blas_threads(None)
    if blas:
        backend.limit_blas_threads(blas)


@pytest.fixture
def threads(monkeypatch):
    """set_threads(n) for the test, with every layer large enough to split; the default afterwards."""
    monkeypatch.setattr(backend, "PARALLEL_GRAIN", 1)
    yield backend.set_threads
    backend.set_threads(None)


def forward_backward(layer, x, upstream, training, seed):
    """Outputs, input gradient, weight gradients and hidden-gradient norms of one forward/backward."""
    seeding.set_random_seed(seed)  # the same dropout masks in both runs
    for grad in layer.grads.values():
        grad[...] = 0
    y = layer.forward(x, training=training)
    ys = y if isinstance(y, list) else [y]
    dx = layer.backward(upstream if len(ys) > 1 else upstream[0])
    return ([backend.to_numpy(o).copy() for o in ys], backend.to_numpy(dx).copy(),
            {k: backend.to_numpy(g).copy() for k, g in layer.grads.items()}, layer.hidden_grad_norms.copy())


@pytest.mark.parametrize("options", [
    {"return_sequences": True},
    {"return_sequences": False, "return_state": True},
    {"return_sequences": True, "return_state": True, "dropout": 0.3, "recurrent_dropout": 0.4},
], ids=["seq", "last+state", "seq+state+dropout"])
@pytest.mark.parametrize("name", BUILDERS)
def test_split_batch_equals_one_thread(threads, name, options):
    with backend.float_precision("float64"):
        layer = BUILDERS[name](**options)
        layer.build((None, None, D))
    randomize_params(layer, seed=1)
    rng = numpy.random.default_rng(2)
    x = rng.normal(size=(B, T, D))
    shapes = layer.compute_output_shape((B, T, D))
    shapes = shapes if isinstance(shapes, list) else [shapes]
    upstream = [rng.normal(size=shape) for shape in shapes]
    training = "dropout" in options
    threads(1)
    one = forward_backward(layer, x, upstream, training, seed=3)
    threads(2)
    assert len(backend.batch_parts(B, 1)) == 2
    split = forward_backward(layer, x, upstream, training, seed=3)
    for mine, ref in zip(split[0], one[0]):
        assert_close(mine, ref, atol=1e-13, name="output")
    assert_close(split[1], one[1], atol=1e-13, name="dx")
    for k in one[2]:
        assert_close(split[2][k], one[2][k], atol=1e-12, name=k)
    assert_close(split[3], one[3], atol=1e-12, name="hidden_grad_norms")


@pytest.mark.parametrize("name", ["LSTM", "GRU(reset_after)"])
def test_gradcheck_on_three_threads(threads, name):
    threads(3)
    with backend.float_precision("float64"):
        layer = BUILDERS[name](return_sequences=True)
        layer.build((None, None, D))
    randomize_params(layer, seed=4)
    x = numpy.random.default_rng(5).normal(size=(B, T, D))
    gradcheck(layer, x).assert_ok(1e-7)


def test_training_with_threads_follows_one_thread(threads):
    rng = numpy.random.default_rng(6)
    x, y = rng.normal(size=(40, T, D)).astype("float32"), rng.normal(size=(40, T, H)).astype("float32")
    losses = []
    for n in (1, 2):
        threads(n)
        seeding.set_random_seed(7)
        model = Sequential([LSTM(H, return_sequences=True, input_shape=[None, D]),
                            GRU(H, return_sequences=True)])
        model.compile(loss="mse", optimizer="adam")
        losses.append(model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"])
    assert_close(numpy.array(losses[1]), numpy.array(losses[0]), rtol=1e-5, name="loss curve")


def test_batch_parts():
    assert backend.threads() == backend.available_cores()           # the default: every core
    backend.set_threads(1)
    try:
        assert backend.batch_parts(64, 10**6) == [slice(0, 64)]      # one thread: one part
        backend.set_threads(2)
        assert backend.batch_parts(64, backend.PARALLEL_GRAIN) == [slice(0, 32), slice(32, 64)]
        assert backend.batch_parts(5, backend.PARALLEL_GRAIN) == [slice(0, 2), slice(2, 5)]
        assert backend.batch_parts(1, backend.PARALLEL_GRAIN) == [slice(0, 1)]       # one sequence
        assert backend.batch_parts(32, 32 * 80) == [slice(0, 32)]    # the course's LSTM(20): too small
    finally:
        backend.set_threads(None)


@settings(max_examples=50, deadline=None)
@given(batch_size=st.integers(1, 300), n_threads=st.integers(1, 8), entries=st.integers(1, 2**17))
def test_batch_parts_partition_the_batch(batch_size, n_threads, entries):
    backend.set_threads(n_threads)
    try:
        parts = backend.batch_parts(batch_size, entries)
    finally:
        backend.set_threads(None)
    covered = [i for part in parts for i in range(batch_size)[part]]
    assert covered == list(range(batch_size))                        # every sequence once, in order
    sizes = [part.stop - part.start for part in parts]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1           # as even as it can be
    split = n_threads > 1 and entries >= backend.PARALLEL_GRAIN
    assert len(parts) == (min(n_threads, batch_size) if split else 1)


@pytest.mark.parametrize("bad", [0, -2])
def test_thread_settings_refuse_non_positive(bad):
    with pytest.raises(ValueError, match="positive"):
        backend.set_threads(bad)
    with pytest.raises(ValueError, match="positive"):
        backend.set_blas_threads(bad)
    assert backend.threads() == backend.available_cores() and backend.blas_threads_override() is None


def test_engine_blas_rule():
    backend.set_threads(4)
    try:
        assert backend.engine_blas_threads() == 1                  # small operations, a batch not split
        assert backend.engine_blas_threads(4) == 1                 # a batch split over the 4 cores
        assert backend.engine_blas_threads(2) == 2                 # B=2 in 2 parts: 2 cores a part
        assert backend.engine_blas_threads(1, backend.SHARED_PRODUCT_MACS - 1) == 1
        assert backend.engine_blas_threads(1, backend.SHARED_PRODUCT_MACS) == 4  # large products, not split
        assert backend.engine_blas_threads(2, backend.SHARED_PRODUCT_MACS) == 2
        backend.set_blas_threads(3)
        assert backend.engine_blas_threads() == 3 == backend.engine_blas_threads(4)
    finally:
        backend.set_threads(None)
        backend.set_blas_threads(None)


needs_openblas = pytest.mark.skipif(backend.blas_threads() is None,
                                    reason="NumPy's BLAS threads cannot be read here (not OpenBLAS on Linux)")


@needs_openblas
def test_blas_threads_set_to_is_scoped():
    backend.limit_blas_threads(2)
    with backend.blas_threads_set_to(1):
        assert backend.blas_threads() == 1
    assert backend.blas_threads() == 2
    with pytest.raises(KeyError), backend.blas_threads_set_to(1):
        raise KeyError("an error inside")
    assert backend.blas_threads() == 2                               # put back on the way out too


def recording_blas_threads(layer, seen):
    """Wrap layer.cell's step_forward / step_backward to record, at every step, the step's
    batch columns (a part's, when the batch is split) and NumPy's BLAS threads."""
    def recorder(name, method):
        def recorded(t, arrays, *rest):
            columns = (arrays if name == "forward" else arrays[0]).shape[-1]
            seen.add((name, columns, backend.blas_threads()))
            return method(t, arrays, *rest)
        return recorded
    layer.cell.step_forward = recorder("forward", layer.cell.step_forward)
    layer.cell.step_backward = recorder("backward", layer.cell.step_backward)


def two_layer_model():
    model = Sequential([LSTM(H, return_sequences=True, input_shape=[None, D]), GRU(H, return_sequences=True)])
    model.compile(loss="mse", optimizer="adam")
    return model


@needs_openblas
@pytest.mark.parametrize("n_threads, grain, shared_macs, batch_size, expected", [
    (2, None, None, 8, {("forward", 8, 1), ("backward", 8, 1)}),  # small layers: one BLAS thread
    (2, None, 1, 8, {("forward", 8, 2), ("backward", 8, 2)}),     # large products, not split: every core
    (2, 1, None, 8, {("forward", 4, 1), ("backward", 4, 1)}),     # large, in 2 parts: 1 BLAS thread each
    (4, 1, None, 2, {("forward", 1, 2), ("backward", 1, 2)}),     # large, B=2 on 4 cores: 2 a part
], ids=["small", "shared-products", "large-split", "large-two-sequences"])
def test_fit_uses_the_rule_inside_and_leaves_the_caller_blas_threads(monkeypatch, n_threads, grain,
                                                                       shared_macs, batch_size, expected):
    if grain is not None:
        monkeypatch.setattr(backend, "PARALLEL_GRAIN", grain)
    if shared_macs is not None:
        monkeypatch.setattr(backend, "SHARED_PRODUCT_MACS", shared_macs)
    backend.set_threads(n_threads)
    backend.limit_blas_threads(2)                                    # the caller's own setting
    rng = numpy.random.default_rng(8)
    x, y = rng.normal(size=(batch_size, T, D)), rng.normal(size=(batch_size, T, H))
    model = two_layer_model()
    seen = set()
    try:
        model.build((None, T, D))
        for layer in model.layers:
            recording_blas_threads(layer, seen)
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
        one_sequence = ("forward", 1, 2 if shared_macs else 1)     # fit's check of y's shape
        assert seen == expected | {one_sequence}
        assert backend.blas_threads() == 2                           # the caller's, after fit
        model.predict(x)
        assert backend.blas_threads() == 2
        backend.set_blas_threads(2)                                  # the override, everywhere inside
        seen.clear()
        model.train_step(backend.asarray(x), backend.asarray(y))
        assert {threads for _, _, threads in seen} == {2}
    finally:
        backend.set_threads(None)
        backend.set_blas_threads(None)


def test_training_on_split_batches_is_repeatable_bit_for_bit(threads):
    """Same seed, same threads: the same weights to the last bit (the parts' sums have a fixed order)."""
    threads(2)
    rng = numpy.random.default_rng(9)
    x, y = rng.normal(size=(40, T, D)).astype("float32"), rng.normal(size=(40, T, H)).astype("float32")
    weights = []
    for _ in range(2):
        seeding.set_random_seed(10)
        model = two_layer_model()
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        assert len(backend.batch_parts(8, 1)) == 2                   # the layers did split
        weights.append(model.get_weights())
    for mine, ref in zip(*weights):
        numpy.testing.assert_array_equal(mine, ref)
