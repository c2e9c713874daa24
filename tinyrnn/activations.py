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
softmax    exp(z) / sum exp(z)    not element-wise: dz = a * (da - sum(da * a))
=========  =====================  ==========================

``forward(z, out=None)`` may write into a preallocated array (the recurrent
layers keep one buffer per time step); ``derivative(a)`` is f' from the output.

As in Keras, the activations are also functions of layer outputs:
``tinyrnn.activations.tanh(x)``, ``sigmoid``, ``relu``, ``softmax``, ``linear``,
and ``get("tanh")`` returns an activation that can be called the same way.
Called on a ``Value`` (inside a custom ``call()``) the call is recorded and its
backward is the activation's own ``backward`` (``tinyrnn.graph``).
"""

from __future__ import annotations

from tinyrnn import backend, graph


class Activation:
    """An activation ``f``: ``forward(z) -> a``, ``derivative(a) -> f'(z)``,
    ``backward(a, da) -> dz = da * f'(z)``; calling it, ``f(x)``, applies it as
    an operation (recorded on a ``Value``)."""

    name = "linear"

    def __call__(self, x):
        return graph.apply(ActivationCall(self), x)

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
        return logistic(z, out=out)

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


class Softmax(Activation):
    """a = exp(z) / sum_j exp(z_j) over the last axis (z shifted by its max first,
    which changes nothing mathematically and keeps exp from overflowing).

    Not element-wise: the Jacobian is da_i/dz_j = a_i (delta_ij - a_j), so the
    backward is its product with da: dz = a * (da - sum_j da_j a_j).
    """

    name = "softmax"

    def forward(self, z, out=None):
        xp = backend.xp
        e = xp.exp(z - z.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        if out is None:
            return e
        out[...] = e
        return out

    def derivative(self, a):
        raise TypeError("softmax is not element-wise: use backward(a, da) (the Jacobian-vector product)")

    def backward(self, a, da):
        return a * (da - (da * a).sum(axis=-1, keepdims=True))


class ActivationCall:
    """An activation as an operation of ``tinyrnn.graph``: the cache is the output a."""

    def __init__(self, activation):
        self.activation = activation

    def forward(self, z):
        a = self.activation.forward(z)
        return a, a

    def backward(self, da, a):
        return (self.activation.backward(a, da),)

    def __repr__(self):
        return self.activation.name


def logistic(z, out=None):
    """The logistic function 1 / (1 + exp(-z)), as (1 + tanh(z / 2)) / 2.

    The same function (tanh(z / 2) = (1 - e^-z) / (1 + e^-z)), in four operations as
    1 / (1 + exp(-z)) is, but tanh never overflows: no warning to silence, and NumPy's
    tanh is faster than its exp. Below z of about -18 (float32) it gives 0, within
    2e-8 of the true value.
    """
    xp = backend.xp
    half = xp.asarray(0.5, dtype=z.dtype) if hasattr(z, "dtype") else 0.5
    out = xp.tanh(xp.multiply(z, half, out=out), out=out)
    out *= half
    out += half
    return out


ACTIVATIONS = {"linear": Linear, None: Linear, "tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU,
               "softmax": Softmax}


def linear(x):
    """f(x) = x, as a function (Keras's ``activations.linear``)."""
    return Linear()(x)


def tanh(x):
    """tanh(x) as a function of an array or a Value (recorded)."""
    return Tanh()(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) as a function of an array or a Value (recorded)."""
    return Sigmoid()(x)


def relu(x):
    """max(x, 0) as a function of an array or a Value (recorded)."""
    return ReLU()(x)


def softmax(x):
    """softmax over the last axis as a function of an array or a Value (recorded)."""
    return Softmax()(x)


_FUNCTIONS = {linear: "linear", tanh: "tanh", sigmoid: "sigmoid", relu: "relu", softmax: "softmax"}


def get(activation) -> Activation:
    """An ``Activation`` from a name (``"tanh"``, ``"sigmoid"``, ``"relu"``, ``"softmax"``,
    ``"linear"``, None) or one of the functions above; it is callable: ``get("tanh")(x)``."""
    if isinstance(activation, Activation):
        return activation
    if callable(activation) and activation in _FUNCTIONS:
        activation = _FUNCTIONS[activation]
    if isinstance(activation, str):
        activation = activation.lower()
    if activation not in ACTIVATIONS:
        names = ", ".join(repr(k) for k in ACTIVATIONS if k)
        raise ValueError(f"unknown activation {activation!r}: expected one of {names} or None")
    return ACTIVATIONS[activation]()
