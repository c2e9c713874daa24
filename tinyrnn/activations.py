"""Element-wise activations, each with its derivative written from its *output*.

Backward passes never recompute a forward: they read the activation's output
``a = f(z)`` from the cache and apply ``f'(z)`` expressed through ``a``:

=========  =====================  ==========================
name       a = f(z)               f'(z) in terms of a
=========  =====================  ==========================
linear     z                      1
tanh       tanh(z)                1 - a^2
sigmoid    1 / (1 + exp(-z))      a (1 - a)
relu       max(z, 0)              1 if a > 0 else 0
=========  =====================  ==========================

``forward(z, out=None)`` may write into a preallocated array (the recurrent
layers keep one buffer per time step); ``derivative(a)`` is f' from the output.
"""

from __future__ import annotations

import contextlib

from tinyrnn import backend


class Activation:
    """An activation ``f``: ``forward(z) -> a``, ``derivative(a) -> f'(z)``,
    ``backward(a, da) -> dz = da * f'(z)``."""

    name = "linear"

    def forward(self, z, out=None):
        if out is None:
            return z
        out[...] = z
        return out

    def derivative(self, a):
        return backend.xp.ones_like(a)

    def backward(self, a, da):
        """dL/dz = dL/da * f'(z), with f'(z) read from the output ``a``."""
        return da * self.derivative(a)

    def __repr__(self):
        return self.name


class Linear(Activation):
    def backward(self, a, da):
        return da  # f'(z) = 1


class Tanh(Activation):
    name = "tanh"

    def forward(self, z, out=None):
        return backend.xp.tanh(z, out=out)

    def derivative(self, a):
        return 1.0 - a * a  # d tanh(z)/dz = 1 - tanh(z)^2


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z, out=None):
        return sigmoid(z, out=out)

    def derivative(self, a):
        return a * (1.0 - a)  # d s(z)/dz = s(z) (1 - s(z))


class ReLU(Activation):
    name = "relu"

    def forward(self, z, out=None):
        return backend.xp.maximum(z, 0, out=out)

    def derivative(self, a):
        return (a > 0).astype(a.dtype)  # 1 where the unit was active, 0 elsewhere

    def backward(self, a, da):
        return da * (a > 0)


def sigmoid(z, out=None):
    """The logistic function 1 / (1 + exp(-z)).

    For z below about -88 (float32) exp(-z) overflows to inf and the result is
    0, within 1e-38 of the true value; that overflow's warning is silenced.
    """
    xp = backend.xp
    with overflow_ignored():
        out = xp.exp(xp.negative(z, out=out), out=out)
    out += 1.0
    return xp.reciprocal(out, out=out)


def overflow_ignored():
    """numpy.errstate(over="ignore") on NumPy; CuPy never warns."""
    errstate = getattr(backend.xp, "errstate", None)
    return errstate(over="ignore") if errstate else contextlib.nullcontext()


ACTIVATIONS = {"linear": Linear, None: Linear, "tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU}


def get(activation) -> Activation:
    """An ``Activation`` from a name (``"tanh"``, ``"sigmoid"``, ``"relu"``, ``"linear"``, None)."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        activation = activation.lower()
    if activation not in ACTIVATIONS:
        names = ", ".join(repr(k) for k in ACTIVATIONS if k)
        raise ValueError(f"unknown activation {activation!r}: expected one of {names} or None")
    return ACTIVATIONS[activation]()
