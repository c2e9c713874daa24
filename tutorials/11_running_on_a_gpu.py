# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11. Running on a GPU
#
# tinyrnn's layers never import NumPy or CuPy for their array math: they ask
# the backend shim for its array module, `tinyrnn.backend.xp`. NumPy (the
# CPU) is the default and the reference; CuPy runs the same code on an
# NVIDIA GPU. Switch with
#
# ```python
# tinyrnn.set_backend("cupy")     # or start Python with TINYRNN_BACKEND=cupy
# ```
#
# and build your models *after* switching: a layer keeps its arrays where it
# was built. This tutorial runs everywhere: without CuPy or a GPU it prints
# why and carries on with NumPy, and it compares timings only when a GPU is
# there.
#
# Set `TINYRNN_QUICK=1` for a few-second run.

# %%
import os
import time

import numpy

import tinyrnn
from tinyrnn import Sequential, backend
from tinyrnn.data import load_course_data
from tinyrnn.layers import LSTM, Dense, SimpleRNN, TimeDistributed

QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
print("backend now:", tinyrnn.get_backend())

# %% [markdown]
# ## Asking for the GPU
#
# Expect one of two outcomes:
#
# - with CuPy and an NVIDIA GPU: `GPU ready`, and the backend is `cupy`;
# - otherwise a `RuntimeError` whose message names the fix (install CuPy for
#   your CUDA version, e.g. `pip install tinyrnn[gpu]`, or check the driver
#   with `nvidia-smi`), printed here, and we stay on `numpy`.

# %%
try:
    tinyrnn.set_backend("cupy")
    GPU = True
    print("GPU ready: backend", tinyrnn.get_backend())
except RuntimeError as err:
    GPU = False
    print(f"No GPU backend: {err}")
    print("carrying on with", tinyrnn.get_backend())
tinyrnn.set_backend("numpy")  # every comparison below starts on the CPU

# %% [markdown]
# ## One model, timed on each backend
#
# The course's sequence-to-sequence SimpleRNN model of tutorial 5, built
# after the same seed on each backend, so it starts from the same weights
# (tinyrnn draws its random numbers with NumPy on the host, then moves them).
#
# Expect on the CPU one epoch in about a second (7000 series). On a GPU,
# expect predictions that agree with the CPU's closely, to about 1e-5 to 1e-3
# (float32 sums run in another order there, and an epoch of updates compounds
# the differences), and a time that depends on the sizes: with B = 32 and H = 20 each
# time step launches a handful of tiny GPU kernels, so the GPU is often no
# faster than the CPU here. Larger batches and more units are where it wins.

# %%
data = load_course_data("seq2seq", n_series=N_SERIES)
X_train, Y_train = data["train"]
X_valid = data["valid"][0][:100]


def build_and_time(backend_name, batch_size=32, layer=SimpleRNN, n_series=None):
    """Train one epoch on ``backend_name``; return (seconds, predictions on X_valid as NumPy)."""
    tinyrnn.set_backend(backend_name)
    tinyrnn.set_random_seed(42)
    model = Sequential([
        layer(20, return_sequences=True, input_shape=[None, 1]),
        layer(20, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])
    model.compile(loss="mse", optimizer="adam")
    X, Y = X_train[:n_series], Y_train[:n_series]
    start = time.perf_counter()
    model.fit(X, Y, epochs=1, batch_size=batch_size, verbose=0)  # fit reads each loss: synced
    seconds = time.perf_counter() - start
    predictions = model.predict(X_valid)                                     # NumPy, wherever it ran
    tinyrnn.set_backend("numpy")
    return seconds, predictions


cpu_seconds, cpu_predictions = build_and_time("numpy")
print(f"numpy: one epoch in {cpu_seconds:.2f} s")
if GPU:
    gpu_seconds, gpu_predictions = build_and_time("cupy")
    print(f"cupy:  one epoch in {gpu_seconds:.2f} s ({cpu_seconds / gpu_seconds:.2f}x the CPU's speed)")
    difference = numpy.abs(cpu_predictions - gpu_predictions).max()
    print(f"max |numpy - cupy| prediction difference: {difference:.1e}")
    for batch_size in (256, 1024):
        cpu_big, _ = build_and_time("numpy", batch_size)
        gpu_big, _ = build_and_time("cupy", batch_size)
        print(f"batch {batch_size}: numpy {cpu_big:.2f} s, cupy {gpu_big:.2f} s")
else:
    print("no GPU: timings on the CPU only")

# %% [markdown]
# ## Moving arrays between backends
#
# `backend.asarray(a)` moves host data to the current backend in the
# training dtype, float32; `tinyrnn.to_numpy(a)` copies any array back to the
# host (a NumPy array comes back unchanged). `predict` always returns NumPy.
# Expect `numpy float32 -> numpy float32`, and with a GPU also
# `cupy float32 -> numpy float32`.

# %%
for backend_name in ["numpy"] + (["cupy"] if GPU else []):
    tinyrnn.set_backend(backend_name)
    on_backend = backend.asarray(X_valid[:2])          # (2, 50, 1) on the current backend
    on_host = tinyrnn.to_numpy(on_backend)
    print(type(on_backend).__module__.split(".")[0], on_backend.dtype, "->",
          type(on_host).__module__.split(".")[0], on_host.dtype)
tinyrnn.set_backend("numpy")

# %% [markdown]
# ## On the CPU: one BLAS thread
#
# NumPy hands matrix products to a BLAS library that may use several threads.
# tinyrnn's matrices are small (B = 32, H = 20) and the recurrence is
# sequential, so extra threads mostly wait for each other, and on a busy
# machine they can make training many times slower.
# `tinyrnn.chapter.limit_blas_threads(1)` (what `python -m tinyrnn chapter`
# and the other tutorials do) or `OPENBLAS_NUM_THREADS=1` set before Python
# starts avoid that. Timed here: one epoch of the LSTM model of tutorial 7 on
# 1000 series.
#
# Expect the one-thread epoch to be about as fast as with the default
# threads or faster; on a machine where other programs are running, often
# several times faster (we measured 2 s against 40 s for the full 7000
# series on the project's busy 2-core machine). Where NumPy does not use
# OpenBLAS the function says so (False) and both runs use the default.

# %%
from tinyrnn.chapter import blas_threads, limit_blas_threads  # noqa: E402  (used only here)

default_threads = blas_threads()
default_seconds, _ = build_and_time("numpy", layer=LSTM, n_series=1000)
limited = limit_blas_threads(1)
one_thread_seconds, _ = build_and_time("numpy", layer=LSTM, n_series=1000)
if limited and default_threads is not None:
    limit_blas_threads(default_threads)  # leave the process as we found it
print(f"default BLAS threads ({default_threads}): {default_seconds:.2f} s per epoch; "
      f"one thread (applied: {limited}): {one_thread_seconds:.2f} s")
