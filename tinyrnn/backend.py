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
import functools
import os
import pathlib
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy

xp = numpy
"""The current array module (``numpy`` or ``cupy``). Read it as ``backend.xp``."""

_name = "numpy"
_floatx = numpy.dtype("float32")
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
@functools.cache
def _openblas_functions() -> tuple:
    """(setters, getter): OpenBLAS's ``openblas_set_num_threads`` of every OpenBLAS library
    loaded with NumPy, and one ``openblas_get_num_threads`` (None: none found; not Linux,
    or NumPy not on OpenBLAS). Looked up once: the engine calls them around every batch."""
    libraries = _openblas_libraries()
    setters = [f for f in (_openblas_function(lib, "set") for lib in libraries) if f is not None]
    getters = [f for f in (_openblas_function(lib, "get") for lib in libraries) if f is not None]
    return setters, (getters[0] if getters else None)


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
    """Let NumPy's OpenBLAS use ``n`` threads, for the whole process and until changed;
    False where that cannot be done here (not Linux, or NumPy not on OpenBLAS: set
    OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before Python starts instead).

    The engine does not need it: inside its calls it sets the BLAS threads it wants
    and puts yours back afterwards (``set_threads`` says the rule). This sets them
    for everything else, your own NumPy code included.
    """
    setters, _ = _openblas_functions()
    for setter in setters:
        setter(int(n))
    return bool(setters)


def blas_threads() -> int | None:
    """How many threads NumPy's OpenBLAS uses now (None if unknown)."""
    _, getter = _openblas_functions()
    return None if getter is None else int(getter())


@contextlib.contextmanager
def blas_threads_set_to(n: int):
    """Context manager: NumPy's OpenBLAS on ``n`` threads inside, as it was afterwards.

    How the engine applies its thread rule (``set_threads``) without changing the
    BLAS threads of the caller's own NumPy code. Setting them costs about 0.5 us;
    nothing is done where they are already ``n`` or cannot be set.
    """
    setters, getter = _openblas_functions()
    before = None if getter is None else int(getter())
    if before is None or before == n:
        yield
        return
    for setter in setters:
        setter(n)
    try:
        yield
    finally:
        for setter in setters:
            setter(before)


# --- the engine's threads: a large recurrent layer's batch split over the cores ----------
PARALLEL_GRAIN = 2**15
"""Entries per time step (B x G) from which a recurrent layer splits its batch over threads."""

SHARED_PRODUCT_MACS = 2**20
"""Multiply-adds of a step's recurrent product (G x H x B) from which a recurrent layer whose
batch is not split gives its products every core's BLAS threads."""

_threads = None        # set_threads: None is every available core
_blas_override = None  # set_blas_threads: None is the engine's rule
_pool = None           # the threads that run a split batch's parts, made on first use


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. under ``taskset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(n: int | None = None) -> None:
    """Let the engine use ``n`` cores (default, and ``None``: every available core).

    The rule the engine applies inside ``fit``, ``evaluate``, ``predict``,
    ``train_step`` and a model's ``forward`` / ``backward``, fastest on every
    workload of ``python -m tinyrnn bench``:

    * **small operations run on one thread.** NumPy's BLAS gets one thread
      (``limit_blas_threads`` is applied for the call and your setting put back
      afterwards): the course's products ((80, 20) x (20, 32)) are too small to
      share, a thread pool only adds synchronisation, and on a busy machine its
      spinning threads made training 5-15x slower.
    * **a recurrent layer with large products shares them.** A layer whose batch is not
      split (below) but whose steps' recurrent products have at least
      ``SHARED_PRODUCT_MACS`` multiply-adds (G x H x B, e.g. the book's GRU(128) at B=32:
      1.6 M; the course's LSTM(20): 51 k) gives its products every core's BLAS threads.
    * **a large recurrent layer splits its batch over the cores.** A layer whose
      steps have at least ``PARALLEL_GRAIN`` entries (B x G, e.g. B=64 with
      LSTM(256): 65536; the course's LSTM(20) at B=32 has 2560) cuts its batch
      into ``min(n, B)`` parts of columns that unroll at once, one thread each
      (NumPy releases the GIL inside its array operations, so the element-wise
      operations of a step, which NumPy runs on one core, run on ``n`` cores as
      well as the products). The parts share the cores: each part's BLAS gets
      ``n // parts`` threads, one when the batch is split over all of them.

    ``set_threads(1)`` runs everything on one core. ``set_blas_threads(k)``
    overrides the BLAS threads inside the engine. The NumPy backend only: on
    CuPy a batch is never split. Results do not depend on the split: the parts
    compute what the whole batch computes (the weight gradients are summed over
    the parts in a fixed order, so a run is repeatable bit for bit on the same
    machine; on a machine with another number of cores a large layer's
    gradients may differ in the last bits of float32).
    """
    global _threads, _pool
    if n is not None:
        n = int(n)
        if n < 1:
            raise ValueError(f"threads must be a positive integer (or None for every core), got {n}")
    if _pool is not None:
        _pool.shutdown()
    _threads, _pool = n, None


def threads() -> int:
    """How many cores the engine uses (``set_threads``; by default every available core)."""
    return _threads or available_cores()


def set_blas_threads(n: int | None = None) -> None:
    """NumPy's BLAS threads inside the engine's calls: ``n`` for every product, or
    ``None`` (the default) for the engine's rule (see ``set_threads``).

    Scoped like the rule: your own NumPy code keeps its BLAS threads (set those
    with ``limit_blas_threads``).
    """
    global _blas_override
    if n is not None:
        n = int(n)
        if n < 1:
            raise ValueError(f"BLAS threads must be a positive integer (or None for the engine's rule), "
                             f"got {n}")
    _blas_override = n


def blas_threads_override() -> int | None:
    """The BLAS threads set with ``set_blas_threads`` (None: the engine's rule)."""
    return _blas_override


def engine_blas_threads(n_parts: int = 1, macs: int = 0) -> int:
    """The BLAS threads the engine gives an operation (see ``set_threads``): one,
    ``threads() // n_parts`` in each of ``n_parts`` parts of a split batch, or every core
    for a layer not split whose steps' products have ``macs`` >= ``SHARED_PRODUCT_MACS``
    multiply-adds; ``set_blas_threads`` overrides all three."""
    if _blas_override is not None:
        return _blas_override
    if n_parts > 1:
        return max(1, threads() // n_parts)
    return threads() if macs >= SHARED_PRODUCT_MACS else 1


def engine_blas(n_parts: int = 1, macs: int = 0):
    """Context manager: NumPy's BLAS on ``engine_blas_threads(n_parts, macs)`` threads
    inside, the caller's setting afterwards."""
    return blas_threads_set_to(engine_blas_threads(n_parts, macs))


def batch_parts(batch_size: int, entries_per_step: int) -> list:
    """The batch as slices of columns: one slice of all of it, or ``min(threads(), B)``
    slices when a step has ``PARALLEL_GRAIN`` entries (see ``set_threads``)."""
    n = min(threads(), batch_size) if _name == "numpy" and entries_per_step >= PARALLEL_GRAIN else 1
    bounds = [batch_size * k // n for k in range(n + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


class ArrayPool:
    """Arrays a layer allocates anew every batch, kept for its next batch.

    A large recurrent layer allocates the same arrays for every batch (its tape: W3's
    LSTM(256) about 40 MB a batch part), and glibc gives blocks that large back to the
    system when they are freed, so each batch page-faults its memory in again (W3: 5,200
    faults and 55-180 ms of kernel time a batch). A layer's cells take their tape's arrays
    from its pool (``empty``) and give them back once backward is done with them (``give``):
    the memory stays mapped between batches, held by the layer (as much as one batch's
    tape) and freed with it. Arrays under ``min_bytes`` come from NumPy as before (malloc
    keeps small blocks), and on CuPy every array does (CuPy has its own memory pool).
    Thread-safe: a split batch's parts share their layer's pool.
    """

    min_bytes = 2**20
    keep = 4  # arrays kept per shape and dtype, at most

    def __init__(self):
        self._free: dict = {}  # (shape, dtype) -> arrays given back; a key exists once empty() asked
        self._made: dict = {}  # id -> weak reference: the arrays this pool made, the only ones it takes back
        self._lock = threading.Lock()

    def empty(self, shape, dtype):
        """An uninitialised array: one given back earlier when there is one of this shape and dtype."""
        shape, dtype = tuple(shape), numpy.dtype(dtype)
        if _name == "numpy" and int(numpy.prod(shape)) * dtype.itemsize >= self.min_bytes:
            with self._lock:
                free = self._free.setdefault((shape, dtype), [])
                if free:
                    return free.pop()
                array = xp.empty(shape, dtype)
                key = id(array)
                self._made[key] = weakref.ref(array, lambda _, made=self._made, key=key: made.pop(key, None))
                return array
        return xp.empty(shape, dtype)

    def give(self, *arrays) -> None:
        """Arrays this pool made (``empty``) that nothing will read or write any more (no
        view of them in use either), for ``empty`` to hand out again, at most ``keep`` of a
        shape; any other array (a small one, a view, one made elsewhere) is left alone."""
        with self._lock:
            for a in arrays:
                ref = self._made.get(id(a))
                if ref is not None and ref() is a:
                    free = self._free[(a.shape, a.dtype)]
                    if len(free) < self.keep:
                        free.append(a)

    def clear(self) -> None:
        """Let go of every kept array."""
        with self._lock:
            self._free.clear()

    def __deepcopy__(self, memo):
        return ArrayPool()  # a copied layer starts with a pool of its own, empty

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()


def parallel_map(function, *iterables, macs: int = 0) -> list:
    """[function(*items) for items in zip(*iterables)], one thread per call when there are
    several, sharing the engine's cores: each call's BLAS gets ``threads() // calls``.
    One call runs in the caller's thread, its BLAS on every core when its steps' products
    have ``macs`` >= ``SHARED_PRODUCT_MACS`` multiply-adds (``engine_blas_threads``)."""
    global _pool
    calls = list(zip(*iterables))
    if len(calls) <= 1:
        with engine_blas(1, macs):
            return [function(*items) for items in calls]
    if _pool is None:
        _pool = ThreadPoolExecutor(threads(), thread_name_prefix="tinyrnn")
    with engine_blas(len(calls)):
        return list(_pool.map(lambda items: function(*items), calls))


if os.environ.get("TINYRNN_BACKEND"):
    set_backend(os.environ["TINYRNN_BACKEND"])
