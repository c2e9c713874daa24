"""Losses: a value for training to minimise, and its gradient for backward.

Keras semantics: the loss of one sample is the mean over the last axis, and
the loss of a batch is the mean of those over the samples. Every sample has
the same number of entries, so the batch loss is the mean over all N entries
of ``y_pred``, and the gradient of every entry carries a factor 1/N.

Shapes: ``y_true`` and ``y_pred`` share one shape, e.g. (B, 1) for a
one-step forecast, (B, T, 1) for a sequence-to-sequence model. A target of
rank one less than a prediction whose last axis is 1 (``(B,)`` against
``(B, 1)``) is accepted, as in Keras.

Use ``get("mse")`` (what ``model.compile(loss="mse")`` passes) or an
instance (``Huber(delta=2.0)``).
"""

from __future__ import annotations

import numbers

from tinyrnn import backend


class Loss:
    """Base class: ``loss(y_true, y_pred)`` and ``loss.gradient(y_true, y_pred)``.

    Subclasses implement ``elementwise(e)`` (the loss of each entry as a
    function of the error ``e = y_pred - y_true``) and ``elementwise_grad(e)``
    (its derivative with respect to ``e``, hence to ``y_pred``).
    """

    name = "loss"

    def __call__(self, y_true, y_pred):
        """The mean loss over all entries, as a 0-d array of ``y_pred``'s dtype."""
        y_true, y_pred = _match(y_true, y_pred)
        return backend.xp.asarray(backend.xp.mean(self.elementwise(y_pred - y_true)))

    def gradient(self, y_true, y_pred):
        """dL/dy_pred for the mean loss: ``elementwise_grad(e) / N``, shape of ``y_pred``."""
        y_true, y_pred = _match(y_true, y_pred)
        n = y_pred.size
        return self.elementwise_grad(y_pred - y_true) / n

    def elementwise(self, e):
        raise NotImplementedError

    def elementwise_grad(self, e):
        raise NotImplementedError

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this loss."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanSquaredError(Loss):
    """Mean squared error.

    L = mean(e**2) with e = y_pred - y_true, over all N entries;
    dL/dy_pred = 2 * e / N.
    """

    name = "mean_squared_error"

    def elementwise(self, e):
        return e * e

    def elementwise_grad(self, e):
        return 2.0 * e


class MeanAbsoluteError(Loss):
    """Mean absolute error.

    L = mean(|e|) with e = y_pred - y_true, over all N entries;
    dL/dy_pred = sign(e) / N (0 where e == 0, the subgradient Keras's autodiff uses).
    """

    name = "mean_absolute_error"

    def elementwise(self, e):
        return backend.xp.abs(e)

    def elementwise_grad(self, e):
        return backend.xp.sign(e)


class Huber(Loss):
    """Huber loss (Keras's formula): quadratic near zero, linear beyond ``delta``.

    With e = y_pred - y_true and d = delta, each entry contributes

        l(e) = 0.5 * e**2                 if |e| <= d
               d * |e| - 0.5 * d**2        otherwise

    and L = mean(l(e)) over all N entries. Its derivative is

        dL/dy_pred = e / N                if |e| <= d
                     d * sign(e) / N       otherwise

    which is ``clip(e, -d, d) / N``.
    """

    name = "huber_loss"

    def __init__(self, delta=1.0):
        if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not delta > 0:
            raise ValueError(f"Huber delta must be a positive number, got {delta!r}")
        self.delta = float(delta)  # a Python float keeps float32 arrays float32

    def elementwise(self, e):
        xp, d = backend.xp, self.delta
        abs_e = xp.abs(e)
        return xp.where(abs_e <= d, 0.5 * e * e, d * abs_e - 0.5 * d * d)

    def elementwise_grad(self, e):
        return backend.xp.clip(e, -self.delta, self.delta)

    def get_config(self) -> dict:
        return {"delta": self.delta}


def _match(y_true, y_pred):
    """Both as arrays of ``y_pred``'s float dtype and shape (Keras squeezes a (B,) target)."""
    xp = backend.xp
    y_pred = xp.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(backend.floatx())
    y_true = xp.asarray(y_true, dtype=y_pred.dtype)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"loss: y_true has shape {tuple(y_true.shape)} but y_pred has shape {tuple(y_pred.shape)}; "
            "they must match (check the targets' time axis and last axis)"
        )
    return y_true, y_pred


LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
}
"""Accepted names (case-insensitive) and the class each builds."""


def mean_squared_error(y_true, y_pred):
    """Keras's function form: the mean of (y_pred - y_true)^2 over the last axis, one value per
    sample (shape ``y_pred.shape[:-1]``); ``compile(loss=mean_squared_error)`` uses ``MeanSquaredError``."""
    y_true, y_pred = _match(y_true, y_pred)
    return MeanSquaredError().elementwise(y_pred - y_true).mean(axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Keras's function form: the mean of |y_pred - y_true| over the last axis, one value per sample."""
    y_true, y_pred = _match(y_true, y_pred)
    return MeanAbsoluteError().elementwise(y_pred - y_true).mean(axis=-1)


mse, mae = mean_squared_error, mean_absolute_error
_FUNCTIONS = {mean_squared_error: "mse", mean_absolute_error: "mae"}


def get(identifier) -> Loss:
    """A ``Loss`` from an instance, a name ("mse", "mae", "huber" or their long Keras names)
    or Keras's function (``losses.mean_squared_error``)."""
    if isinstance(identifier, Loss):
        return identifier
    if callable(identifier) and identifier in _FUNCTIONS:
        identifier = _FUNCTIONS[identifier]
    names = ", ".join(repr(k) for k in LOSSES)
    if isinstance(identifier, str):
        cls = LOSSES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}: expected a Loss instance or one of {names}")
        return cls()
    raise TypeError(
        f"loss must be a Loss instance or one of {names}; got {type(identifier).__name__} {identifier!r}"
    )
