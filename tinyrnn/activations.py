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
"""

from __future__ import annotations

from tinyrnn import backend


class Activation:
    """An activation ``f`` with ``forward(z) -> a`` and ``backward(a, da) -> dz``."""

    name = "linear"

    def forward(self, z):
        return z

    def backward(self, a, da):
        """dL/dz = dL/da * f'(z), with f'(z) read from the output ``a``."""
        return da

    def __repr__(self):
        return self.name


class Tanh(Activation):
    name = "tanh"

    def forward(self, z):
        return backend.xp.tanh(z)

    def backward(self, a, da):
        return da * (1.0 - a * a)  # d tanh(z)/dz = 1 - tanh(z)^2


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z):
        return sigmoid(z)

    def backward(self, a, da):
        return da * a * (1.0 - a)  # d s(z)/dz = s(z) (1 - s(z))


class ReLU(Activation):
    name = "relu"

    def forward(self, z):
        return backend.xp.maximum(z, 0)

    def backward(self, a, da):
        return da * (a > 0)  # 1 where the unit was active, 0 elsewhere


def sigmoid(z):
    """The logistic function, computed as 0.5 (1 + tanh(z / 2)): stable for any z."""
    xp = backend.xp
    return 0.5 + 0.5 * xp.tanh(0.5 * z)


ACTIVATIONS = {"linear": Activation, None: Activation, "tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU}


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
