"""Metrics: numbers to watch during training, never differentiated.

Keras semantics: a metric function returns one value per sample, the mean over
the last axis, e.g. (B, T, 1) -> (B, T) and (B, 1) -> (B,); ``Sequential``
averages those over the samples of an epoch (``reduce`` gives that mean as a
Python float).

The course's metric for sequence-to-sequence forecasts only scores the last
time step, the one that matters for the forecast::

    def last_time_step_mse(Y_true, Y_pred):
        return tinyrnn.metrics.mean_squared_error(Y_true[:, -1], Y_pred[:, -1])

It is built in under that name, and a user's own function works the same way
(``metrics=[last_time_step_mse]``), reported under its function name.
"""

from __future__ import annotations

import numpy

from tinyrnn import backend


def mean_squared_error(y_true, y_pred):
    """mean((y_pred - y_true)**2) over the last axis: (B, ..., D) -> (B, ...)."""
    y_true, y_pred = backend.xp.asarray(y_true), backend.xp.asarray(y_pred)
    return backend.xp.mean(backend.xp.square(y_pred - y_true), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """mean(|y_pred - y_true|) over the last axis: (B, ..., D) -> (B, ...)."""
    y_true, y_pred = backend.xp.asarray(y_true), backend.xp.asarray(y_pred)
    return backend.xp.mean(backend.xp.abs(y_pred - y_true), axis=-1)


mse = mean_squared_error
mae = mean_absolute_error


def last_time_step_mse(y_true, y_pred):
    """MSE of the last time step only: (B, T, D) -> (B,).

    ``mean_squared_error(y_true[:, -1], y_pred[:, -1])``: a sequence-to-sequence
    model is trained on every step but judged, like a forecast, on the last.
    """
    y_true, y_pred = backend.xp.asarray(y_true), backend.xp.asarray(y_pred)
    return mean_squared_error(y_true[:, -1], y_pred[:, -1])


METRICS = {
    "mse": ("mse", mean_squared_error),
    "mean_squared_error": ("mse", mean_squared_error),
    "mae": ("mae", mean_absolute_error),
    "mean_absolute_error": ("mae", mean_absolute_error),
    "last_time_step_mse": ("last_time_step_mse", last_time_step_mse),
}
"""Accepted names (case-insensitive) and the (reported name, function) each gives."""


def get(identifier) -> tuple[str, object]:
    """``(name, fn)`` for a metric name or a user's callable (named by its ``__name__``)."""
    names = ", ".join(repr(k) for k in METRICS)
    if isinstance(identifier, str):
        found = METRICS.get(identifier.lower())
        if found is None:
            raise ValueError(f"unknown metric {identifier!r}: expected a function or one of {names}")
        return found
    if callable(identifier):
        name = getattr(identifier, "__name__", None) or type(identifier).__name__
        return name, identifier
    raise TypeError(
        f"metric must be a function fn(y_true, y_pred) or one of {names}; "
        f"got {type(identifier).__name__} {identifier!r}"
    )


def reduce(value) -> float:
    """The mean of a metric's per-sample values as a Python float (NumPy or CuPy input)."""
    return float(numpy.mean(backend.to_numpy(value)))
