"""Normalisation layers: LayerNormalization (and the math the LN-RNN cell reuses), BatchNormalization."""

from __future__ import annotations

import math

from tinyrnn import backend, initializers
from tinyrnn.layers.base import Layer


def layer_norm_forward(x, gamma, beta, epsilon, axis=-1):
    """Normalise over the feature axis (F features; the last axis by default).

    mu = mean_F(x),  var = mean_F((x - mu)^2),  x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta                 x (..., F) -> y (..., F)

    Returns y and the cache (x_hat, 1 / sqrt(var + eps)). ``gamma`` / ``beta``
    may be None (``scale`` / ``center`` off); they must broadcast along ``axis``
    (e.g. shape (F, 1) for x (F, B) and axis=0, as in the LN-RNN cell).
    """
    xp = backend.xp
    mu = x.mean(axis=axis, keepdims=True)
    centered = x - mu
    inv_std = 1.0 / xp.sqrt((centered * centered).mean(axis=axis, keepdims=True) + epsilon)
    x_hat = centered * inv_std
    y = x_hat if gamma is None else x_hat * gamma
    if beta is not None:
        y = y + beta
    return y, (x_hat, inv_std)


def layer_norm_backward(dy, cache, gamma, axis=-1):
    """Gradients of ``layer_norm_forward``.

    dx_hat = dy * gamma
    dx = (dx_hat - mean_F(dx_hat) - x_hat * mean_F(dx_hat * x_hat)) / sqrt(var + eps)
    dgamma = sum over all other axes of dy * x_hat;   dbeta = sum of dy

    Returns (dx, dgamma, dbeta); dgamma and dbeta are reduced over every axis but ``axis``.
    """
    x_hat, inv_std = cache
    dx_hat = dy if gamma is None else dy * gamma
    dx = inv_std * (dx_hat - dx_hat.mean(axis=axis, keepdims=True)
                    - x_hat * (dx_hat * x_hat).mean(axis=axis, keepdims=True))
    axes = tuple(a for a in range(dy.ndim) if a != axis % dy.ndim)
    return dx, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)


class LayerNormalization(Layer):
    """Layer normalisation over the feature axis, the same in training and
    inference (Ba et al.). Keras weights: gamma (F,), beta (F,).

    See ``layer_norm_forward`` / ``layer_norm_backward`` for the equations.
    """

    weight_names = ("gamma", "beta")
    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,):
            # Keras allows other axes; the course normalises features only.
            raise ValueError(f"LayerNormalization supports axis=-1 (the feature axis), got {axis!r}")
        self.axis, self.epsilon, self.center, self.scale = axis, float(epsilon), center, scale

    def build(self, input_shape):
        F = input_shape[-1]
        if self.scale:
            self.add_param("gamma", initializers.ones((F,)))
        if self.center:
            self.add_param("beta", initializers.zeros((F,)))
        super().build(input_shape)

    def forward(self, x, training=False):
        y, cache = layer_norm_forward(x, self.params.get("gamma"), self.params.get("beta"), self.epsilon)
        self._remember(cache)
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = layer_norm_backward(dy, self._recall(), self.params.get("gamma"))
        if self.scale:
            self.grads["gamma"] += dgamma
        if self.center:
            self.grads["beta"] += dbeta
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


def batch_norm_axes(ndim: int) -> tuple:
    """The axes batch statistics reduce over: all but the last (B for (B, F); B and T for (B, T, F))."""
    return tuple(range(ndim - 1))


def batch_norm_weights(x, mask):
    """Which entries count in the batch statistics, and how many: (w, N).

    w is None (all count; N = B, or B*T) without a mask, else the mask as x's
    dtype, (B, T, 1), and N = sum(mask) (at least 1: an all-masked batch gives
    mu = var = 0, as Keras's N + 1e-7 does).
    """
    axes = batch_norm_axes(x.ndim)
    if mask is None:
        return None, math.prod(x.shape[a] for a in axes)
    w = mask.astype(x.dtype)[..., None]                   # (B, T, 1): 1 counts, 0 masked
    return w, max(float(w.sum()), 1.0)


def batch_norm_moments(x, w, N):
    """The batch moments, over the entries that count (all with w None):

    mu = sum(w * x) / N,   var = sum(w * (x - mu)^2) / N     (biased, as Keras)

    Returns (mu (F,), x - mu (x's shape), var (F,)).
    """
    axes = batch_norm_axes(x.ndim)
    mu = (x if w is None else x * w).sum(axis=axes) / N     # (F,)
    centered = x - mu
    weighted = centered if w is None else centered * w
    return mu, centered, (weighted * centered).sum(axis=axes) / N


def batch_norm_backward(dy, cache, gamma):
    """Gradients of batch normalisation in training mode (through the batch statistics).

    With w the weight of each entry in the statistics (the mask: 1 counts, 0 is a
    masked step; 1 everywhere without one), N = sum(w) (B, or B*T, unmasked), and
    sum over the batch (and time) axes, every entry included:

    dx_hat = dy * gamma
    dx = (dx_hat - w * sum(dx_hat) / N - w * x_hat * sum(dx_hat * x_hat) / N) / sqrt(var + eps)
    dgamma = sum(dy * x_hat);   dbeta = sum(dy)

    A masked step is normalised too (its y depends on mu and var), so its dy
    reaches the statistics; only the entries that made them receive that part.
    (LayerNormalization's gradient with the roles of the axes swapped.)
    Returns (dx, dgamma (F,), dbeta (F,)).
    """
    x_hat, inv_std, w, N = cache
    axes = batch_norm_axes(dy.ndim)
    dx_hat = dy if gamma is None else dy * gamma
    through_stats = dx_hat.sum(axis=axes) / N + x_hat * ((dx_hat * x_hat).sum(axis=axes) / N)
    dx = inv_std * (dx_hat - (through_stats if w is None else w * through_stats))
    return dx, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)


class BatchNormalization(Layer):
    """Batch normalisation of each feature over every other axis, as Keras applies
    it to (B, F) or, between recurrent layers, (B, T, F) inputs (Ioffe & Szegedy).

    Training (``training=True``), with the statistics over the batch (and time) axes,
    over the unmasked steps only when a (B, T) mask comes with x (as Keras 3),
    w = mask[..., None] (1 everywhere without one) and N = sum(w):

        mu = sum(w * x) / N,  var = sum(w * (x - mu)^2) / N   (biased, as Keras)
        x_hat = (x - mu) / sqrt(var + eps),   y = gamma * x_hat + beta
        moving_mean     <- momentum * moving_mean     + (1 - momentum) * mu
        moving_variance <- momentum * moving_variance + (1 - momentum) * var

    Inference (``training=False``, or a layer with ``trainable=False`` as in Keras):

        x_hat = (x - moving_mean) / sqrt(moving_variance + eps),  y = gamma * x_hat + beta

    Backward in training mode goes through mu and var (``batch_norm_backward``);
    in inference mode the layer is affine: dx = dy * gamma / sqrt(moving_variance + eps).
    Both modes: dgamma = sum(dy * x_hat), dbeta = sum(dy). Every step is normalised,
    masked or not; the mask only chooses which steps make the statistics, and
    it passes on unchanged. Inference ignores it (the moving statistics serve all).

    Keras weights, in order: gamma (F,), beta (F,) (trainable, in ``params``),
    moving_mean (F,), moving_variance (F,) (non-trainable, in ``state``).
    """

    weight_names = ("gamma", "beta", "moving_mean", "moving_variance")
    supports_masking = True   # the mask passes on unchanged

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,):
            # Keras allows other axes; the course normalises features only.
            raise ValueError(f"BatchNormalization supports axis=-1 (the feature axis), got {axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization: momentum must be a number in [0, 1], got {momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"BatchNormalization: epsilon must be a positive number, got {epsilon!r}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale

    def build(self, input_shape):
        self._check_ndim(len(input_shape), input_shape)
        F = input_shape[-1]
        if F is None:
            raise ValueError(f"{self.name}: BatchNormalization needs the number of features F; got shape "
                             f"{tuple(input_shape)}")
        if self.scale:
            self.add_param("gamma", initializers.ones((F,)))
        if self.center:
            self.add_param("beta", initializers.zeros((F,)))
        self.state["moving_mean"] = initializers.zeros((F,))
        self.state["moving_variance"] = initializers.ones((F,))
        super().build(input_shape)

    def forward(self, x, training=False, mask=None):
        xp = backend.xp
        self._check_ndim(x.ndim, x.shape)
        F = self.state["moving_mean"].shape[0]
        if x.shape[-1] != F:
            raise ValueError(f"{self.name}: built for F={F} features (last axis), got shape {tuple(x.shape)} "
                             f"with {x.shape[-1]}")
        use_batch_statistics = training and self.trainable
        w, N = batch_norm_weights(x, mask) if use_batch_statistics else (None, None)
        if use_batch_statistics:
            mu, centered, var = batch_norm_moments(x, w, N)     # (F,), x's shape, (F,)
            self._update_moving_statistics(mu, var)
        else:
            centered = x - self.state["moving_mean"]
            var = self.state["moving_variance"]
        inv_std = 1.0 / xp.sqrt(var + self.epsilon)             # (F,)
        x_hat = centered * inv_std
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        y = x_hat if gamma is None else x_hat * gamma
        if beta is not None:
            y = y + beta
        self._remember((use_batch_statistics, x_hat, inv_std, w, N))
        return y

    def _update_moving_statistics(self, mu, var):
        """moving <- momentum * moving + (1 - momentum) * batch, in place (saved arrays stay valid)."""
        for key, batch in (("moving_mean", mu), ("moving_variance", var)):
            moving = self.state[key]
            moving[...] = moving * self.momentum + batch * (1.0 - self.momentum)

    def backward(self, dy):
        use_batch_statistics, x_hat, inv_std, w, N = self._recall()
        gamma = self.params.get("gamma")
        if use_batch_statistics:
            dx, dgamma, dbeta = batch_norm_backward(dy, (x_hat, inv_std, w, N), gamma)
        else:
            axes = batch_norm_axes(dy.ndim)
            # affine: d x_hat / dx = 1 / sqrt(moving_variance + eps)
            dx = (dy if gamma is None else dy * gamma) * inv_std
            dgamma, dbeta = (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)
        if self.scale:
            self.grads["gamma"] += dgamma
        if self.center:
            self.grads["beta"] += dbeta
        return dx

    def _check_ndim(self, ndim, shape):
        if ndim < 2:
            raise ValueError(f"{self.name}: BatchNormalization expects inputs (B, F) or (B, T, F), "
                             f"got shape {tuple(shape)}")

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
