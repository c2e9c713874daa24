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

Masks: where the model's output carries a mask (B, T), only the time steps
that count are averaged (``reduce(values, mask)``), and the epoch's mean weighs
every such step alike, as Keras's metrics do.

Classification: ``sparse_categorical_accuracy`` (class ids), ``categorical_accuracy``
(one-hot), ``binary_accuracy`` (threshold 0.5), and ``accuracy`` (``"accuracy"`` or
``"acc"``), which picks one of those three from the shapes of the targets and predictions.
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


# --- classification: accuracies (one value per sample: 1.0 right, 0.0 wrong) ------------
def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the predicted class (argmax over the C classes) is the id in ``y_true``, else 0.0.

    ``y_true`` (B,) or (B, T) of class ids (a trailing axis of 1 accepted, as in
    Keras; whole-number floats fine), ``y_pred`` (B, C) or (B, T, C) of
    probabilities or logits: -> (B,) or (B, T).
    """
    xp = backend.xp
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return (xp.argmax(y_pred, axis=-1) == y_true).astype(_float(y_pred))


def categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_pred) is argmax(y_true) (one-hot targets), else 0.0: (B, ..., C) -> (B, ...)."""
    xp = backend.xp
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    return (xp.argmax(y_pred, axis=-1) == xp.argmax(y_true, axis=-1)).astype(_float(y_pred))


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """The fraction of entries whose prediction ``y_pred > threshold`` equals the 0/1 target,
    over the last axis: (B, ..., D) -> (B, ...); a (B,) target for (B, 1) predictions is accepted."""
    xp = backend.xp
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    dtype = _float(y_pred)
    return xp.mean(((y_pred > threshold).astype(dtype) == y_true).astype(dtype), axis=-1)


def accuracy(y_true, y_pred):
    """Keras's ``"accuracy"``, chosen from the shapes (Keras chooses from the loss):

    - ``y_true`` has one axis less than ``y_pred`` (or a last axis of 1) and C = y_pred's
      last axis > 1: integer class ids -> ``sparse_categorical_accuracy``;
    - same shapes and C > 1: one-hot rows -> ``categorical_accuracy``;
    - otherwise (a single output unit): 0/1 targets -> ``binary_accuracy``.

    Multi-label targets (several independent sigmoid outputs, shapes equal, C > 1)
    look one-hot to this rule: ask for ``"binary_accuracy"`` by name there.
    """
    return accuracy_function(y_true, y_pred)(y_true, y_pred)


def accuracy_function(y_true, y_pred):
    """The accuracy ``accuracy`` uses for these shapes (see its docstring)."""
    true_shape, pred_shape = tuple(backend.xp.asarray(y_true).shape), tuple(backend.xp.asarray(y_pred).shape)
    classes = pred_shape[-1] if pred_shape else 1
    if classes > 1 and true_shape in (pred_shape[:-1], (*pred_shape[:-1], 1)):
        return sparse_categorical_accuracy
    if classes > 1 and true_shape == pred_shape:
        return categorical_accuracy
    return binary_accuracy


def _float(y_pred):
    return y_pred.dtype if y_pred.dtype.kind == "f" else backend.floatx()


METRICS = {
    "mse": ("mse", mean_squared_error),
    "mean_squared_error": ("mse", mean_squared_error),
    "mae": ("mae", mean_absolute_error),
    "mean_absolute_error": ("mae", mean_absolute_error),
    "last_time_step_mse": ("last_time_step_mse", last_time_step_mse),
    "accuracy": ("accuracy", accuracy),
    "acc": ("acc", accuracy),
    "sparse_categorical_accuracy": ("sparse_categorical_accuracy", sparse_categorical_accuracy),
    "categorical_accuracy": ("categorical_accuracy", categorical_accuracy),
    "binary_accuracy": ("binary_accuracy", binary_accuracy),
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


def reduce(value, mask=None) -> float:
    """The mean of a metric's per-sample values as a Python float (NumPy or CuPy input).

    With ``mask`` (bool, the values' shape, e.g. (B, T)): the mean over the values
    where the mask is True only (0.0 when there are none, Keras's divide_no_nan)."""
    value = backend.to_numpy(value)
    if mask is None:
        return float(numpy.mean(value))
    mask = backend.to_numpy(mask)
    if mask.shape != value.shape:
        raise ValueError(
            f"metric: the mask has shape {mask.shape} but the metric's values have shape {value.shape}: "
            "a masked output needs a metric with one value per time step (B, T), such as mse or "
            "accuracy on a sequence output (return_sequences=True)"
        )
    valid = int(mask.sum())
    return float((value * mask).sum() / valid) if valid else 0.0
