"""The array-module shim, and the CuPy backend against NumPy (skipped without CuPy and a GPU)."""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close, randomize_params

import tinyrnn
from tinyrnn import backend, gradcheck
from tinyrnn.layers import GRU, LSTM, RNN, Conv1D, Dense, LNSimpleRNNCell, PeepholeLSTMCell, SimpleRNN


def test_numpy_is_the_default_and_float32_trains():
    assert backend.get_backend() == "numpy" and backend.xp is numpy
    assert backend.floatx() == numpy.float32
    assert backend.asarray([1, 2]).dtype == numpy.float32


def test_float_precision_is_scoped():
    with backend.float_precision("float64"):
        assert backend.floatx() == numpy.float64
        assert Dense(2)(numpy.ones((1, 3))).dtype == numpy.float64
    assert backend.floatx() == numpy.float32
    with pytest.raises(ValueError, match="float32 or float64"):
        backend.set_floatx("int32")


def test_to_numpy_returns_host_arrays():
    a = numpy.arange(3.0)
    assert backend.to_numpy(a) is a
    assert isinstance(backend.to_numpy([1.0, 2.0]), numpy.ndarray)


def _cupy_with_a_gpu():
    try:
        import cupy
        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # not installed, or no driver / device
        return None


gpu = pytest.mark.skipif(_cupy_with_a_gpu() is None, reason="needs CuPy and an NVIDIA GPU")

LAYERS = {
    "SimpleRNN": lambda: SimpleRNN(4, return_sequences=True),
    "LSTM": lambda: LSTM(4, return_sequences=True),
    "GRU": lambda: GRU(4, return_sequences=True),
    "GRU(reset_before)": lambda: GRU(4, return_sequences=True, reset_after=False),
    "peephole": lambda: RNN(PeepholeLSTMCell(4), return_sequences=True),
    "LN cell": lambda: RNN(LNSimpleRNNCell(4), return_sequences=True),
    "Conv1D causal": lambda: Conv1D(4, 2, padding="causal", dilation_rate=2, activation="relu"),
}


def _run(layer, x, dy):
    y = layer.forward(backend.asarray(x, "float64"))
    layer.zero_grads()
    dx = layer.backward(backend.asarray(dy, "float64"))
    return [backend.to_numpy(a) for a in (y, dx, *layer.grads.values())]


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_cupy_backend_matches_numpy(name):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(2, 9, 3))
    with backend.float_precision("float64"):
        cpu = LAYERS[name]()
        cpu.build(x.shape)
        randomize_params(cpu, seed=1)
        dy = rng.normal(size=cpu.forward(x).shape)
        expected = _run(cpu, x, dy)
        try:
            tinyrnn.set_backend("cupy")
            gpu_layer = LAYERS[name]()
            gpu_layer.build(x.shape)
            gpu_layer.set_weights(cpu.get_weights())
            got = _run(gpu_layer, x, dy)
            gradcheck(gpu_layer, x).assert_ok(1e-7)
        finally:
            tinyrnn.set_backend("numpy")
    for mine, ref in zip(got, expected, strict=True):
        assert_close(mine, ref, atol=1e-10, name=name)
