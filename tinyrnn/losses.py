"""Losses: a value for training to minimise, and its gradient for backward.

Keras semantics: the loss of one sample is the mean over the last axis, and
the loss of a batch is the mean of those over the samples. Every sample has
the same number of entries, so the batch loss is the mean over all N entries
of ``y_pred``, and the gradient of every entry carries a factor 1/N.

Shapes: ``y_true`` and ``y_pred`` share one shape, e.g. (B, 1) for a
one-step forecast, (B, T, 1) for a sequence-to-sequence model. A target of
rank one less than a prediction whose last axis is 1 (``(B,)`` against
``(B, 1)``) is accepted, as in Keras.

Classification losses (``SparseCategoricalCrossentropy``,
``CategoricalCrossentropy``, ``BinaryCrossentropy``, each with ``from_logits``)
average over the samples instead: see their docstrings for shapes and formulas.

Masks (Keras's reduction): every loss takes ``mask=``, a bool array of
``y_pred``'s shape without its last axis ((B, T) for (B, T, D) predictions),
True for the samples (time steps) that count. The batch loss is then the mean
over those only, L = sum_s mask_s l_s / sum_s mask_s (0 when none counts), and
the masked samples get zero gradient. A model passes the mask its output
carries (``Masking``, ``Embedding(mask_zero=True)``) by itself.

Use ``get("mse")`` (what ``model.compile(loss="mse")`` passes) or an
instance (``Huber(delta=2.0)``).
"""

from __future__ import annotations

import numbers

from tinyrnn import backend, metrics


class Loss:
    """Base class: ``loss(y_true, y_pred)`` and ``loss.gradient(y_true, y_pred)``.

    Subclasses implement ``elementwise(e)`` (the loss of each entry as a
    function of the error ``e = y_pred - y_true``) and ``elementwise_grad(e)``
    (its derivative with respect to ``e``, hence to ``y_pred``).
    """

    name = "loss"
    class_ids = False  # True: targets are class ids (SparseCategoricalCrossentropy)

    def __call__(self, y_true, y_pred, mask=None):
        """The mean loss over all N entries (over the unmasked samples' entries with ``mask``),
        as a 0-d array of ``y_pred``'s dtype."""
        y_true, y_pred = _match(y_true, y_pred)
        m, n = _mask_and_count(mask, y_pred, self.name, per_sample=y_pred.shape[-1])
        return backend.xp.asarray(_masked(self.elementwise(y_pred - y_true), m).sum() / n)

    def gradient(self, y_true, y_pred, mask=None):
        """dL/dy_pred for the mean loss: ``elementwise_grad(e) / N``, shape of ``y_pred``
        (``mask * elementwise_grad(e) / N_valid`` with a mask)."""
        y_true, y_pred = _match(y_true, y_pred)
        m, n = _mask_and_count(mask, y_pred, self.name, per_sample=y_pred.shape[-1])
        return _masked(self.elementwise_grad(y_pred - y_true), m) / n

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


def _float_array(y_pred):
    """y_pred as a backend array of a float dtype (floatx for integer data)."""
    y_pred = backend.xp.asarray(y_pred)
    return y_pred if y_pred.dtype.kind == "f" else y_pred.astype(backend.floatx())


def _match(y_true, y_pred):
    """Both as arrays of ``y_pred``'s float dtype and shape (Keras squeezes a (B,) target)."""
    y_pred = _float_array(y_pred)
    y_true = backend.xp.asarray(y_true, dtype=y_pred.dtype)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"loss: y_true has shape {tuple(y_true.shape)} but y_pred has shape {tuple(y_pred.shape)}; "
            "they must match (check the targets' time axis and last axis)"
        )
    return y_true, y_pred


def _mask_and_count(mask, y_pred, who, per_sample=1):
    """``(m, n)``: the mask on y_pred's entries and the number of entries the mean divides by.

    A sample is one row of y_pred's last axis (shape ``y_pred.shape[:-1]``). Without a
    mask: m = None and n = samples * per_sample. With one (bool, ``y_pred.shape[:-1]``):
    m = mask[..., None] as y_pred's dtype and n = (unmasked samples) * per_sample,
    at least per_sample (a batch with nothing unmasked has loss 0, Keras's divide_no_nan).
    """
    if mask is None:
        samples = y_pred.size // y_pred.shape[-1] if y_pred.ndim and y_pred.shape[-1] else y_pred.size
        return None, samples * per_sample
    mask = backend.xp.asarray(mask)
    if tuple(mask.shape) != tuple(y_pred.shape[:-1]):
        raise ValueError(
            f"{who}: the mask has shape {tuple(mask.shape)} but y_pred has shape {tuple(y_pred.shape)}: a "
            f"loss's mask has one True/False per sample, y_pred's shape without its last axis "
            f"{tuple(y_pred.shape[:-1])} (for (B, T, D) predictions, one per time step: (B, T))"
        )
    m = mask.astype(y_pred.dtype)[..., None]
    return m, max(int(mask.sum()), 1) * per_sample


def _masked(a, m):
    """``a * m`` with a mask, ``a`` itself without one (the unmasked path does no extra work)."""
    return a if m is None else a * m


# --- classification: cross-entropies ---------------------------------------------
EPSILON = 1e-7
"""Keras's ``backend.epsilon()``: probabilities are clipped to [EPSILON, 1 - EPSILON] before the log."""


class _Crossentropy(Loss):
    """Base of the cross-entropies: they override ``__call__`` and ``gradient`` whole.

    The loss of one sample is a sum over the C classes (categorical) or a mean
    over the last axis (binary); the batch loss is the mean over the N samples
    (every leading axis: B, or B * T for a sequence of predictions (B, T, C)).
    """

    def __init__(self, from_logits=False):
        if not isinstance(from_logits, bool):
            raise TypeError(f"{self.name}: from_logits must be True or False, got {from_logits!r}")
        self.from_logits = from_logits

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits}

    def _pred(self, y_pred):
        """y_pred as a float array; probabilities (from_logits=False) checked to lie in [0, 1]."""
        y_pred = _float_array(y_pred)
        if not self.from_logits and y_pred.size and (float(y_pred.min()) < 0 or float(y_pred.max()) > 1):
            raise ValueError(
                f"{self.name}: from_logits=False expects probabilities in [0, 1], but y_pred holds values "
                f"from {float(y_pred.min()):.4g} to {float(y_pred.max()):.4g}. If the last layer has no "
                f"softmax/sigmoid (raw scores, logits), use {type(self).__name__}(from_logits=True)"
            )
        return y_pred


class CategoricalCrossentropy(_Crossentropy):
    """Cross-entropy of one-hot (or soft) targets y and predictions over C classes.

    Shapes: ``y_true`` and ``y_pred`` (B, C) or (B, T, C); N = y_pred.size / C samples.

    ``from_logits=True`` (y_pred = z, raw scores), stable by log-sum-exp:

        log p = z - max(z) - log(sum_j exp(z_j - max(z)))
        L = -(1/N) sum_n sum_i y_i log p_i
        dL/dz = (p * sum_i y_i - y) / N  =  (p - y) / N   for one-hot y

    ``from_logits=False`` (y_pred = probabilities, Keras's formula): each row is
    renormalised, q = p / S with S = sum_j p_j, then clipped to [eps, 1 - eps]
    (eps = 1e-7) before the log:

        L = -(1/N) sum_n sum_i y_i log(clip(q_i))
        dL/dp_j = (-y_j m_j / q_j + sum_i y_i m_i) / (S N)

    where m_i = 1 where q_i was not clipped (0 where it was: the clip is flat there).
    For a softmax output (S = 1, nothing clipped) this is -y/(p N) + 1/N; the
    constant 1/N is in the null space of softmax's Jacobian, whose backward
    turns the whole into the fused gradient (p - y) / N on the logits.

    With ``mask`` (shape ``y_pred.shape[:-1]``), the sums run over the unmasked
    samples and N counts them; a masked sample's gradient is zero.
    """

    name = "categorical_crossentropy"

    def __call__(self, y_true, y_pred, mask=None):
        """The mean cross-entropy over the N samples (the unmasked ones with ``mask``), a 0-d
        array of ``y_pred``'s dtype."""
        y_true, y_pred = self._targets(y_true, y_pred)
        xp = backend.xp
        weights, n = _mask_and_count(mask, y_pred, self.name)
        return xp.asarray(-_masked(y_true * self._log_probs(y_pred), weights).sum() / n)

    def gradient(self, y_true, y_pred, mask=None):
        """dL/dy_pred (shape of ``y_pred``): on the logits, or on the probabilities."""
        y_true, y_pred = self._targets(y_true, y_pred)
        xp = backend.xp
        weights, n = _mask_and_count(mask, y_pred, self.name)
        y_sum = y_true.sum(axis=-1, keepdims=True)
        if self.from_logits:
            return _masked(_softmax(y_pred) * y_sum - y_true, weights) / n
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        m = ((q > EPSILON) & (q < 1.0 - EPSILON)).astype(y_pred.dtype)
        ym = _masked(y_true * m, weights)
        return (-ym / xp.clip(q, EPSILON, 1.0 - EPSILON) + ym.sum(axis=-1, keepdims=True)) / (s * n)

    def _log_probs(self, y_pred):
        """log p for every class: log-softmax of logits, or the log of renormalised, clipped probabilities."""
        xp = backend.xp
        if self.from_logits:
            shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
            return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        q = y_pred / y_pred.sum(axis=-1, keepdims=True)
        return xp.log(xp.clip(q, EPSILON, 1.0 - EPSILON))

    def _targets(self, y_true, y_pred):
        """(one-hot y_true, y_pred) as float arrays of one shape."""
        y_pred = self._pred(y_pred)
        y_true = backend.xp.asarray(y_true, dtype=y_pred.dtype)
        if y_true.shape != y_pred.shape:
            sparse = (" For integer class ids use SparseCategoricalCrossentropy"
                      " (\"sparse_categorical_crossentropy\").")
            hint = (sparse
                    if y_true.shape == y_pred.shape[:-1] or y_true.shape == (*y_pred.shape[:-1], 1) else "")
            raise ValueError(
                f"{self.name}: y_true has shape {tuple(y_true.shape)} but y_pred has shape "
                f"{tuple(y_pred.shape)}; one-hot targets must have y_pred's shape.{hint}"
            )
        return y_true, y_pred


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy of integer class ids: ``CategoricalCrossentropy`` of their one-hot rows.

    Shapes: ``y_true`` (B,) or (B, T) of ids in 0..C-1 (a trailing axis of 1, (B, 1),
    is accepted as in Keras), ``y_pred`` (B, C) or (B, T, C). Ids may come as
    floats (``fit`` converts targets to floats) if their values are whole numbers.
    Values and gradients are those of ``CategoricalCrossentropy`` with y = onehot(ids).
    """

    name = "sparse_categorical_crossentropy"
    class_ids = True  # fit takes integer targets, shaped like the output without its last axis

    def __call__(self, y_true, y_pred, mask=None):
        """The mean cross-entropy over the N samples, as ``CategoricalCrossentropy``'s: with one-hot
        y, sum_i y_i log p_i is the one term log p_id, so only that term is computed."""
        ids, y_pred = self._ids(y_true, y_pred)
        xp = backend.xp
        weights, n = _mask_and_count(mask, y_pred, self.name)
        if self.from_logits:                                  # log p_id = z_id - max - log sum exp(z - max)
            top = y_pred.max(axis=-1, keepdims=True)
            log_sum = xp.log(xp.exp(y_pred - top).sum(axis=-1, keepdims=True))
            log_p = (_pick(y_pred, ids)[..., None] - top) - log_sum
        else:                                                 # log clip(p_id / S)
            q_id = _pick(y_pred, ids)[..., None] / y_pred.sum(axis=-1, keepdims=True)
            log_p = xp.log(xp.clip(q_id, EPSILON, 1.0 - EPSILON))
        return xp.asarray(-_masked(log_p, weights).sum() / n)

    def gradient(self, y_true, y_pred, mask=None):
        """``CategoricalCrossentropy.gradient`` with y = onehot(ids), without making y
        (the sums over i keep the one term i = id; m_id: q_id was not clipped):

            logits:         p - y over N                          (p = softmax(z))
            probabilities:  m_id / (S N), and at the id (m_id - m_id / q_id) / (S N)
        """
        ids, y_pred = self._ids(y_true, y_pred)
        xp = backend.xp
        weights, n = _mask_and_count(mask, y_pred, self.name)
        if self.from_logits:
            grad = xp.ascontiguousarray(_softmax(y_pred))
            flat, rows = _at_ids(grad, ids)
            flat[rows] -= 1.0                                                 # p - y
            return _masked(grad, weights) / n
        s = y_pred.sum(axis=-1, keepdims=True)
        q_id = _pick(y_pred, ids)[..., None] / s                              # (..., 1)
        m_id = _masked(((q_id > EPSILON) & (q_id < 1.0 - EPSILON)).astype(y_pred.dtype), weights)
        sn = s * n
        grad = xp.empty(y_pred.shape, y_pred.dtype)
        grad[...] = m_id / sn                                                 # sum_i y_i m_i / (S N)
        flat, rows = _at_ids(grad, ids)
        flat[rows] = ((-m_id / xp.clip(q_id, EPSILON, 1.0 - EPSILON) + m_id) / sn).reshape(-1)
        return grad

    def _ids(self, y_true, y_pred):
        """(integer class ids, shape y_pred.shape[:-1], checked; y_pred as a float array)."""
        y_pred = self._pred(y_pred)
        return class_ids(y_true, y_pred.shape, self.name), y_pred

    def _targets(self, y_true, y_pred):
        y_pred = self._pred(y_pred)
        return one_hot(y_true, y_pred.shape, self.name).astype(y_pred.dtype), y_pred


def _at_ids(a, ids):
    """(a as (N, C) rows, the index of each row's entry at its class id): a view, so that
    ``flat[rows]`` reads a[..., id] and ``flat[rows] = v`` writes it (a C-contiguous)."""
    rows = (backend.xp.arange(ids.size), ids.reshape(-1))
    return a.reshape(-1, a.shape[-1]), rows


def _pick(a, ids):
    """a[..., id]: each sample's entry at its class, shape ids.shape."""
    flat, rows = _at_ids(a, ids)
    return flat[rows].reshape(ids.shape)


class BinaryCrossentropy(_Crossentropy):
    """Cross-entropy of targets y in [0, 1] (usually 0 or 1) for independent yes/no outputs.

    Shapes: ``y_true`` and ``y_pred`` share one shape, e.g. (B, 1) or (B, T, 1)
    ((B,) against (B, 1) accepted); N = y_pred.size entries, each its own Bernoulli.

    ``from_logits=True`` (z, stable for any z; p = sigmoid(z)):

        l = max(z, 0) - z y + log(1 + exp(-|z|)),    dL/dz = (p - y) / N

    ``from_logits=False`` (p clipped to [eps, 1 - eps], eps = 1e-7, as Keras):

        l = -(y log p + (1 - y) log(1 - p)),    dL/dp = m (p - y) / (p (1 - p) N)

    with m = 1 where p was not clipped. L = mean(l) over all N entries (over the
    entries of the unmasked samples with ``mask``, shape ``y_pred.shape[:-1]``).
    """

    name = "binary_crossentropy"

    def __call__(self, y_true, y_pred, mask=None):
        """The mean binary cross-entropy over all N entries (the unmasked samples' with ``mask``),
        a 0-d array of ``y_pred``'s dtype."""
        y_true, y_pred = _match(y_true, self._pred(y_pred))
        xp = backend.xp
        if self.from_logits:
            z = y_pred
            per_entry = xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))
        else:
            p = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
            per_entry = -(y_true * xp.log(p) + (1.0 - y_true) * xp.log(1.0 - p))
        weights, n = _mask_and_count(mask, y_pred, self.name, per_sample=y_pred.shape[-1])
        return xp.asarray(_masked(per_entry, weights).sum() / n)

    def gradient(self, y_true, y_pred, mask=None):
        """dL/dy_pred, shape of ``y_pred``: (p - y) / N on logits, its chain rule on probabilities."""
        y_true, y_pred = _match(y_true, self._pred(y_pred))
        xp = backend.xp
        weights, n = _mask_and_count(mask, y_pred, self.name, per_sample=y_pred.shape[-1])
        if self.from_logits:
            return _masked(_sigmoid(y_pred) - y_true, weights) / n
        m = ((y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)).astype(y_pred.dtype)
        p = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        return _masked(m * (p - y_true), weights) / (p * (1.0 - p) * n)


def _softmax(z):
    xp = backend.xp
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: exp of -|z| only."""
    xp = backend.xp
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def one_hot(ids, shape, who="one_hot"):
    """Integer class ids of shape ``shape[:-1]`` (or ``(*shape[:-1], 1)``) as one-hot rows of ``shape``
    (checked by ``class_ids``)."""
    c = shape[-1]
    return (class_ids(ids, shape, who)[..., None] == backend.xp.arange(c)).astype(backend.floatx())


def class_ids(ids, shape, who="one_hot"):
    """Integer class ids of shape ``shape[:-1]`` (or ``(*shape[:-1], 1)``), checked, as int64 ``shape[:-1]``.

    Raises a ValueError naming the offending id when one is not a whole number or
    lies outside 0..C-1 (C = shape[-1]), or when the ids' shape does not fit.
    """
    xp = backend.xp
    ids = xp.asarray(ids)
    c = shape[-1]
    if ids.shape == (*shape[:-1], 1) and len(shape) > 1:
        ids = ids[..., 0]
    if ids.shape != tuple(shape[:-1]):
        raise ValueError(
            f"{who}: class ids y_true have shape {tuple(ids.shape)} but y_pred has shape {tuple(shape)}; "
            f"sparse targets have y_pred's shape without its last (class) axis: {tuple(shape[:-1])}"
        )
    if ids.dtype.kind == "f":
        bad = ids != xp.round(ids)
        if bool(bad.any()):
            raise ValueError(
                f"{who}: class ids must be integers, got {float(ids[bad].ravel()[0])!r}; "
                "pass integer class ids 0..C-1 (or one-hot rows to categorical_crossentropy)"
            )
    elif ids.dtype.kind not in "iu":
        raise ValueError(f"{who}: class ids must be integers, got an array of dtype {ids.dtype}")
    out = (ids < 0) | (ids >= c)
    if bool(out.any()):
        raise ValueError(
            f"{who}: class id {ids[out].ravel()[0].item()!r} is out of range for C={c} classes "
            f"(y_pred's last axis): ids must lie in 0..{c - 1}"
        )
    return ids.astype("int64")


LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
}
"""Accepted names (case-insensitive) and the class each builds."""


def mean_squared_error(y_true, y_pred):
    """Keras's function form: the mean of (y_pred - y_true)^2 over the last axis, one value per
    sample (shape ``y_pred.shape[:-1]``); ``compile(loss=mean_squared_error)`` uses ``MeanSquaredError``."""
    return metrics.mean_squared_error(*_match(y_true, y_pred))


def mean_absolute_error(y_true, y_pred):
    """Keras's function form: the mean of |y_pred - y_true| over the last axis, one value per sample."""
    return metrics.mean_absolute_error(*_match(y_true, y_pred))


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
