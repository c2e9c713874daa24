"""The course's synthetic time series, its targets and its splits.

Every experiment of the chapter trains on the same data recipe (the book's
``generate_time_series``): each series is the sum of two sine waves of random
frequency and phase plus a little uniform noise,

    series[b, t] = 0.5 sin((t - offset1[b]) (10 freq1[b] + 10))
                 + 0.2 sin((t - offset2[b]) (20 freq2[b] + 20))
                 + 0.1 (u[b, t] - 0.5),      t = linspace(0, 1, n_steps)

with ``freq1, freq2, offset1, offset2, u`` uniform in [0, 1). The series come
back as float32 of shape (B, T, 1): B series, T time steps, one feature.

From one array of series this module cuts the three forecasting tasks:

- ``one_step_ahead``: inputs all steps but the last, target the last value;
- ``n_steps_ahead``: inputs all but the last ``n_ahead`` steps, target those
  ``n_ahead`` values (sequence to vector);
- ``seq2seq_targets``: at every input step t, the ``n_ahead`` values that
  follow it (sequence to sequence).

``split`` makes the course's 7000 / 2000 / 1000 train / valid / test split and
``load_course_data`` puts everything together for one task.

One more task, not the course's, needs a long memory: ``adding_problem``
(add two marked values far apart), the task of the chapter's "why gates
exist" experiment (``tinyrnn.long_memory``).

Data is generated on the host with NumPy (the same seed gives the same bits on
every machine); ``fit`` moves the batches to the current backend.
"""

from __future__ import annotations

import numpy

TASKS = {
    # task -> number of steps generated per series
    "one_step": 51,
    "ten_steps": 60,
    "seq2seq": 60,
}
"""The course's tasks for ``load_course_data`` and the series length each uses."""

N_AHEAD = 10
"""How many steps the ``ten_steps`` and ``seq2seq`` tasks forecast."""


def _check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int, or a ValueError saying what was expected."""
    # A ValueError, not TypeError, for every bad argument: callers catch one error type.
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)):
        raise ValueError(  # noqa: TRY004
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_series(series, min_steps: int, what: str):
    """Check that ``series`` has shape (B, T, D) with T >= ``min_steps``."""
    shape = getattr(series, "shape", None)
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"series must be a 3-D array of shape (B, T, 1) as generate_time_series returns, "
            f"got shape {shape}"
        )
    if shape[1] < min_steps:
        raise ValueError(f"series has {shape[1]} time steps, but {what} needs at least {min_steps}")
    return series


def generate_time_series(batch_size: int, n_steps: int, seed: int | None = None) -> numpy.ndarray:
    """The course's synthetic series: two noisy sine waves per series.

    Parameters
    ----------
    batch_size : int
        B, the number of series (>= 1).
    n_steps : int
        T, the number of time steps of each series (>= 1).
    seed : int or None
        With an int, draw from ``numpy.random.RandomState(seed)``: the same
        stream as ``numpy.random.seed(seed)`` (so the bits match the book's
        notebook), without touching NumPy's global generator. With ``None``,
        draw from NumPy's global generator, as the book does.

    Returns
    -------
    series : float32 array of shape (B, T, 1)
        ``0.5 sin((t - offset1)(10 freq1 + 10)) + 0.2 sin((t - offset2)(20 freq2 + 20))
        + 0.1 (u - 0.5)`` with ``t = linspace(0, 1, T)``; freq1, freq2,
        offset1, offset2 (each (B, 1)) come from one ``rand(4, B, 1)`` draw,
        then the noise u from ``rand(B, T)``. Computed in float64, then cast.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    n_steps = _check_int("n_steps", n_steps, 1)
    if seed is None:
        rand = numpy.random.rand  # the global generator, as in the book
    else:
        seed = _check_int("seed", seed, 0)
        if seed >= 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed}")
        rand = numpy.random.RandomState(seed).rand

    # Same draws, same order, same float64 arithmetic as the book, so the bits match.
    freq1, freq2, offsets1, offsets2 = rand(4, batch_size, 1)  # each (B, 1)
    time = numpy.linspace(0, 1, n_steps)  # (T,)
    series = 0.5 * numpy.sin((time - offsets1) * (freq1 * 10 + 10))  # wave 1, (B, T)
    series += 0.2 * numpy.sin((time - offsets2) * (freq2 * 20 + 20))  # + wave 2
    series += 0.1 * (rand(batch_size, n_steps) - 0.5)  # + noise
    return series[..., numpy.newaxis].astype(numpy.float32)  # (B, T, 1)


def split(array, n_train: int = 7000, n_valid: int = 2000):
    """Split along axis 0 into (train, valid, test), in that order.

    ``train = array[:n_train]``, ``valid = array[n_train:n_train + n_valid]``
    and ``test`` is the rest, which must not be empty. The defaults are the
    course's 7000 / 2000 / 1000 split of 10000 series. The parts are views.
    """
    n_train = _check_int("n_train", n_train, 1)
    n_valid = _check_int("n_valid", n_valid, 0)
    n_rows = len(array)
    if n_rows <= n_train + n_valid:
        raise ValueError(
            f"split needs more than n_train + n_valid = {n_train} + {n_valid} = {n_train + n_valid} "
            f"rows to leave a test set, got {n_rows} rows; pass smaller n_train / n_valid"
        )
    return array[:n_train], array[n_train : n_train + n_valid], array[n_train + n_valid :]


def one_step_ahead(series):
    """Inputs and target for forecasting the next value.

    Parameters
    ----------
    series : array of shape (B, T, 1)

    Returns
    -------
    X : array of shape (B, T - 1, 1)
        ``series[:, :-1]``, every step but the last.
    y : array of shape (B, 1)
        ``series[:, -1]``, the last value.
    """
    _check_series(series, 2, "one_step_ahead")
    return series[:, :-1], series[:, -1]


def n_steps_ahead(series, n_ahead: int = N_AHEAD):
    """Inputs and targets for forecasting the next ``n_ahead`` values at once.

    Parameters
    ----------
    series : array of shape (B, T, 1)
    n_ahead : int
        How many future values to forecast (1 <= n_ahead < T).

    Returns
    -------
    X : array of shape (B, T - n_ahead, 1)
        ``series[:, :-n_ahead]``.
    Y : array of shape (B, n_ahead)
        ``series[:, -n_ahead:, 0]``, the last ``n_ahead`` values.
    """
    n_ahead = _check_int("n_ahead", n_ahead, 1)
    _check_series(series, n_ahead + 1, f"n_steps_ahead with n_ahead={n_ahead}")
    return series[:, :-n_ahead], series[:, -n_ahead:, 0]


def seq2seq_targets(series, n_ahead: int = N_AHEAD, n_inputs: int | None = None):
    """Sequence-to-sequence targets: at every input step, the next ``n_ahead`` values.

    ``Y[:, t, k - 1] = series[:, t + k, 0]`` for t = 0..T-1 and k = 1..n_ahead,
    so ``Y[:, -1]`` equals the ``Y`` of ``n_steps_ahead`` when T is the series
    length minus ``n_ahead`` (the default).

    Parameters
    ----------
    series : array of shape (B, L, 1)
    n_ahead : int
        How many values ahead each step forecasts (>= 1).
    n_inputs : int or None
        T, the number of input steps; ``None`` means ``L - n_ahead``.
        Needs T + n_ahead <= L.

    Returns
    -------
    Y : array of shape (B, T, n_ahead)
        A copy with the dtype of ``series``.
    """
    n_ahead = _check_int("n_ahead", n_ahead, 1)
    _check_series(series, n_ahead + 1, f"seq2seq_targets with n_ahead={n_ahead}")
    length = series.shape[1]
    if n_inputs is None:
        n_inputs = length - n_ahead
    n_inputs = _check_int("n_inputs", n_inputs, 1)
    if n_inputs + n_ahead > length:
        raise ValueError(
            f"n_inputs + n_ahead = {n_inputs} + {n_ahead} = {n_inputs + n_ahead} exceeds the series "
            f"length {length}; pass n_inputs <= {length - n_ahead}"
        )
    # index[t, k - 1] = t + k: one gather builds all (T, n_ahead) windows at once.
    index = numpy.arange(n_inputs)[:, None] + numpy.arange(1, n_ahead + 1)[None, :]  # (T, n_ahead)
    return series[:, index, 0]  # (B, T, n_ahead)


def course_split_sizes(n_series: int) -> tuple[int, int, int]:
    """(n_train, n_valid, n_test): 70% / 20% / 10% of ``n_series`` (7000 / 2000 / 1000 of 10000)."""
    n_series = _check_int("n_series", n_series, 10)
    n_train = n_series * 7 // 10
    n_valid = n_series * 2 // 10
    return n_train, n_valid, n_series - n_train - n_valid


def load_course_data(task: str, seed: int | None = 42, n_series: int = 10000) -> dict:
    """The course's data for one task, split into train / valid / test.

    Parameters
    ----------
    task : str
        ``"one_step"``: ``generate_time_series(n_series, 51)``, X (B, 50, 1),
        Y (B, 1), the next value.
        ``"ten_steps"``: ``generate_time_series(n_series, 60)``, X (B, 50, 1),
        Y (B, 10), the next ten values.
        ``"seq2seq"``: the same 60-step series, X (B, 50, 1), Y (B, 50, 10)
        with ``Y[:, t, k - 1] = series[:, t + k, 0]``.
    seed : int or None
        Passed to ``generate_time_series`` (42, the course's seed, by default).
    n_series : int
        How many series to generate (>= 10). 10000 gives the course's
        7000 / 2000 / 1000 split; other sizes split 70% / 20% / 10%.

    Returns
    -------
    dict
        ``{"train": (X, Y), "valid": (X, Y), "test": (X, Y)}``, float32 arrays.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(map(repr, TASKS))}")
    n_train, n_valid, _ = course_split_sizes(n_series)
    series = generate_time_series(n_series, TASKS[task], seed=seed)
    if task == "one_step":
        X, Y = one_step_ahead(series)
    elif task == "ten_steps":
        X, Y = n_steps_ahead(series, N_AHEAD)
    else:
        X = series[:, :-N_AHEAD]
        Y = seq2seq_targets(series, N_AHEAD)
    parts_X = split(X, n_train, n_valid)
    parts_Y = split(Y, n_train, n_valid)
    return {name: (x, y) for name, x, y in zip(("train", "valid", "test"), parts_X, parts_Y)}


# --- a long-memory task: the adding problem ------------------------------------------------------
ADDING_BASELINE_MSE = 1 / 6
"""The adding problem's trivial MSE: always answering the mean, 1, misses by var(y) = 2 / 12."""


def adding_problem(n_samples: int, n_steps: int, seed: int | None = None):
    """The adding problem (Hochreiter & Schmidhuber, 1997): add two marked values that lie far apart.

    Each sample is T steps of two features: a random value, and a marker that
    is 1 at exactly two steps and 0 elsewhere. The target is the sum of the two
    marked values. The first marker sits among the first ``max(1, T // 10)``
    steps, the second among the last ``T - T // 2``, so the first value must be
    remembered for at least about T / 2 steps (and for about 0.9 T on average),
    while every unmarked value must be ignored.

    Answering the mean (1) scores an MSE of var(y) = 1/6 (``ADDING_BASELINE_MSE``);
    remembering only the second value scores 1/12. A model has learnt the task
    when its MSE is a small fraction of 1/6.

    Parameters
    ----------
    n_samples : int
        B, the number of samples (>= 1).
    n_steps : int
        T, the number of time steps of each sample (>= 2).
    seed : int or None
        Seeds ``numpy.random.default_rng``: the same seed gives the same data.

    Returns
    -------
    X : float32 array of shape (B, T, 2)
        ``X[:, :, 0]`` the values, uniform in [0, 1); ``X[:, :, 1]`` the markers.
    y : float32 array of shape (B, 1)
        The sum of the two marked values, in [0, 2).
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_steps = _check_int("n_steps", n_steps, 2)
    rng = numpy.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n_samples, n_steps))                  # (B, T)
    first = rng.integers(0, max(1, n_steps // 10), size=n_samples)            # (B,) early
    second = rng.integers(n_steps // 2, n_steps, size=n_samples)              # (B,) late
    rows = numpy.arange(n_samples)
    markers = numpy.zeros((n_samples, n_steps))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = numpy.stack([values, markers], axis=-1).astype(numpy.float32)         # (B, T, 2)
    y = (values[rows, first] + values[rows, second])[:, numpy.newaxis]        # (B, 1)
    return X, y.astype(numpy.float32)
