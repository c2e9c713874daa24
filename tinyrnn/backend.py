"""The array-module shim: which array library the engine computes with.

Every layer asks this module for its array module (``backend.xp``) instead of
importing NumPy or CuPy itself, so the same code runs on the CPU (NumPy, the
default and the reference) and on an NVIDIA GPU (CuPy).

Switch with ``tinyrnn.set_backend("cupy")`` or the environment variable
``TINYRNN_BACKEND=cupy`` (read at import time).

The float dtype used to build parameters and convert inputs is ``floatx()``:
float32 for training (the default), float64 for gradient checks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
from concurrent.futures import ThreadPoolExecutor

import numpy

xp = numpy
"""The current array module (``numpy`` or ``cupy``). Read it as ``backend.xp``."""

_name = "numpy"
_floatx = numpy.dtype("float32")
_threads = 1
_pool = None

_CUPY_HINT = (
    "Install CuPy for your CUDA version, e.g. `pip install tinyrnn[gpu]` "
    "(cupy-cuda12x) or `pip install cupy-cuda13x`, or use set_backend('numpy')."
)


def get_backend() -> str:
    """Name of the current backend: ``"numpy"`` or ``"cupy"``."""
    return _name


def set_backend(name: str) -> None:
    """Select the array library: ``"numpy"`` (CPU) or ``"cupy"`` (GPU).

    Raises ``ValueError`` for an unknown name and ``RuntimeError`` naming the
    fix when CuPy is not installed or no GPU can be used. Layers built on one
    backend keep their arrays there: build models after choosing the backend.
    """
    global xp, _name
    if not isinstance(name, str) or name.lower() not in ("numpy", "cupy"):
        raise ValueError(f"unknown backend {name!r}: expected 'numpy' or 'cupy'")
    name = name.lower()
    if name == "numpy":
        xp, _name = numpy, "numpy"
        return
    xp, _name = _import_cupy(), "cupy"


def _import_cupy():
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(f"the 'cupy' backend needs CuPy, which is not installed. {_CUPY_HINT}") from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise RuntimeError(
            f"CuPy is installed but no usable NVIDIA GPU was found ({err}). "
            "Check the driver with `nvidia-smi`, or use set_backend('numpy')."
        ) from err
    if count == 0:
        raise RuntimeError("CuPy is installed but no NVIDIA GPU was found; use set_backend('numpy').")
    return cupy


_clear_session_hooks: list = []


def on_clear_session(hook) -> None:
    """Register a function that ``clear_session`` calls (the layers' name counters)."""
    _clear_session_hooks.append(hook)


def clear_session() -> None:
    """Keras's ``backend.clear_session()``: forget the layer names given so far (the next
    ``Dense`` is ``dense`` again). tinyrnn keeps no other global graph or state to free."""
    for hook in _clear_session_hooks:
        hook()


def floatx() -> numpy.dtype:
    """The float dtype parameters are built in and inputs are converted to."""
    return _floatx


def set_floatx(dtype) -> None:
    """Set the default float dtype: ``"float32"`` (training) or ``"float64"`` (checks)."""
    global _floatx
    dtype = numpy.dtype(dtype)
    if dtype not in (numpy.float32, numpy.float64):
        raise ValueError(f"floatx must be float32 or float64, got {dtype}")
    _floatx = dtype


@contextlib.contextmanager
def float_precision(dtype):
    """Context manager: ``with float_precision("float64"): ...`` then restore."""
    previous = _floatx
    set_floatx(dtype)
    try:
        yield
    finally:
        set_floatx(previous)


def asarray(a, dtype=None):
    """``a`` as an array of the current backend (default dtype: ``floatx()``)."""
    return xp.asarray(a, dtype=_floatx if dtype is None else dtype)


def to_numpy(a) -> numpy.ndarray:
    """A NumPy copy (or view) of ``a``, wherever it lives."""
    if isinstance(a, numpy.ndarray):
        return a
    get = getattr(a, "get", None)  # cupy.ndarray.get() copies to the host
    return get() if callable(get) else numpy.asarray(a)


def is_array(a) -> bool:
    """True for a NumPy array or an array of the current backend."""
    return isinstance(a, (numpy.ndarray, xp.ndarray))



# --- NumPy's BLAS threads (OpenBLAS, as NumPy's wheels ship it) ----------------------------
def _openblas_libraries() -> list:
    """The OpenBLAS libraries this process has loaded (Linux; [] elsewhere)."""
    try:
        maps = pathlib.Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    return [ctypes.CDLL(path) for path in paths]


def _openblas_function(library, action: str):
    """OpenBLAS's ``openblas_{action}_num_threads``, under any of the names its builds export."""
    for name in (f"openblas_{action}_num_threads", f"openblas_{action}_num_threads64_",
                 f"scipy_openblas_{action}_num_threads64_", f"scipy_openblas_{action}_num_threads"):
        function = getattr(library, name, None)
        if function is not None:
            return function
    return None


def limit_blas_threads(n: int) -> bool:
    """Let NumPy's OpenBLAS use ``n`` threads; False where that cannot be done here
    (not Linux, or NumPy not on OpenBLAS: set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS
    before Python starts instead).

    Why the chapter and the benchmark use 1: the course's matrices are small
    (B=32, H=20) and the recurrence is sequential, so a BLAS thread pool only
    adds synchronisation, and on a busy machine its spinning threads made
    training 5-15x slower.
    """
    done = False
    for library in _openblas_libraries():
        setter = _openblas_function(library, "set")
        if setter is not None:
            setter(int(n))
            done = True
    return done


def blas_threads() -> int | None:
    """How many threads NumPy's OpenBLAS uses (None if unknown)."""
    for library in _openblas_libraries():
        getter = _openblas_function(library, "get")
        if getter is not None:
            return int(getter())
    return None


PARALLEL_GRAIN = 2**15
"""Entries per time step (B x G) from which a recurrent layer splits its batch over threads."""


def set_threads(n: int) -> None:
    """Run each large recurrent layer's batch as ``n`` parts, one thread each (default 1).

    NumPy releases the GIL inside its array operations, so the parts compute on
    ``n`` cores at once: the element-wise operations of a step, which NumPy runs
    on one core, as well as the matrix products. With ``n`` > 1 NumPy's BLAS is
    limited to one thread (``limit_blas_threads(1)``) so that the parts' products
    do not compete for the same cores. Only layers whose steps have at least
    ``PARALLEL_GRAIN`` entries (B x G, e.g. B=64 with LSTM(256)) are split; the
    course's small layers (B=32, LSTM(20): 2560) would only pay the threads'
    overhead. The NumPy backend only: on CuPy a batch is never split.
    """
    global _threads, _pool
    n = int(n)
    if n < 1:
        raise ValueError(f"threads must be a positive integer, got {n}")
    if _pool is not None:
        _pool.shutdown()
    _threads, _pool = n, (ThreadPoolExecutor(n, thread_name_prefix="tinyrnn") if n > 1 else None)
    if n > 1:
        limit_blas_threads(1)


def threads() -> int:
    """How many threads a large recurrent layer uses (``set_threads``)."""
    return _threads


def batch_parts(batch_size: int, entries_per_step: int) -> list:
    """The batch as slices of columns: one slice of all of it, or ``threads()``
    slices when several threads are set and a step has ``PARALLEL_GRAIN`` entries."""
    n = min(_threads, batch_size) if _name == "numpy" and entries_per_step >= PARALLEL_GRAIN else 1
    bounds = [batch_size * k // n for k in range(n + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def parallel_map(function, *iterables) -> list:
    """[function(*items) for items in zip(*iterables)], in the threads when there are several."""
    calls = list(zip(*iterables))
    if len(calls) <= 1 or _pool is None:
        return [function(*items) for items in calls]
    return list(_pool.map(lambda items: function(*items), calls))


if os.environ.get("TINYRNN_BACKEND"):
    set_backend(os.environ["TINYRNN_BACKEND"])
