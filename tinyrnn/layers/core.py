"""Core layers: Dense, Flatten, TimeDistributed, Dropout, RepeatVector, InputLayer, Masking, and
for composing: Input, Activation, Lambda, Reshape, Permute."""

from __future__ import annotations

import numpy

from tinyrnn import activations, backend, graph, initializers, seeding, validation
from tinyrnn.layers.base import Layer, unique_name


class InputLayer(Layer):
    """Declares the input shape of a ``Sequential`` model; passes x through.

    ``shape`` (or Keras 2's ``input_shape``) leaves out the batch axis; ``batch_shape=(B, ...)``
    (or ``shape`` with ``batch_size=B``) fixes the batch size B too, as a stateful layer needs.
    """

    def __init__(self, input_shape=None, name=None, shape=None, batch_shape=None, **kwargs):
        if batch_shape is not None:           # Keras 3's spelling of batch_input_shape
            kwargs["batch_input_shape"] = batch_shape
        super().__init__(input_shape=input_shape if input_shape is not None else shape, name=name, **kwargs)
        if self.input_shape is None:
            raise ValueError("InputLayer needs input_shape=, e.g. InputLayer(input_shape=[None, 1])")
        self.built = True

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        config = {**super().get_config(), "input_shape": list(self.input_shape[1:])}
        if self.batch_size is not None:
            config["batch_size"] = self.batch_size
        return config


class Dense(Layer):
    """Fully connected layer on the last axis: ``y = f(x W + b)``.

    Shapes: x (..., D) -> y (..., H); W (D, H), b (H,). Like Keras, any leading
    axes are kept, so on (B, T, D) it acts at every time step.

    Backward, with dz = dy * f'(z) read from the cached y:
    dW = sum over all leading axes of x^T dz;  db = sum of dz;  dx = dz W^T.

    Every product is one 2-D matrix product over all N = B*T rows. A recurrent
    layer's (B, T, D) output is a view of its time-major (T, D, B) array; making
    that view (N, D) rows would copy it through a slow transposition, so such an
    x is read as the (D, T*B) matrix instead (a cheap copy: whole rows of B), and
    dx is returned as a view of the (D, T, B) array W dz^T, whose rows of B the
    recurrent layer's backward copies cheaply into its (T, D, B) layout (``_time_major``).
    """

    weight_names = ("kernel", "bias")
    supports_masking = True   # per time step: a (B, T) mask passes on unchanged

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = validation.positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = use_bias

    def build(self, input_shape):
        self.add_param("kernel", initializers.glorot_uniform((input_shape[-1], self.units)))
        if self.use_bias:
            self.add_param("bias", initializers.zeros((self.units,)))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def forward(self, x, training=False):
        D = self.params["kernel"].shape[0]
        if x.shape[-1] != D:
            raise ValueError(f"{self.name}: built for D={D} input features, got D={x.shape[-1]} "
                             f"(input shape {tuple(x.shape)})")
        W, xp = self.params["kernel"], backend.xp
        if _time_major(x):                                    # x (B, T, D) viewing a (T, D, B) array
            B, T = x.shape[:2]
            X = x.transpose(2, 1, 0).reshape(D, T * B)        # columns (t, b): the D x N matrix x^T
            z = xp.empty((B, T, self.units), x.dtype)
            z[...] = (W.T @ X).reshape(-1, T, B).transpose(2, 1, 0)   # (H, N) -> (B, T, H)
        else:
            X = None
            z = (x.reshape(-1, D) @ W).reshape(*x.shape[:-1], self.units)
        if self.use_bias:
            z += self.params["bias"]
        y = self.activation.forward(z)
        self._remember((x, X, y))
        return y

    def backward(self, dy):
        x, X, y = self._recall()
        W = self.params["kernel"]
        dz = self.activation.backward(y, dy)                  # (..., H)
        dz2 = dz.reshape(-1, self.units)                      # (N, H), N = product of leading axes
        if self.use_bias:
            self.grads["bias"] += dz2.sum(axis=0)             # (H,)
        if X is None:
            self.grads["kernel"] += x.reshape(-1, x.shape[-1]).T @ dz2   # (D, H)
            return (dz2 @ W.T).reshape(x.shape)              # (..., D)
        B, T = x.shape[:2]
        dZ = dz.transpose(2, 1, 0).reshape(self.units, T * B)  # (H, N), columns (t, b) as X's
        self.grads["kernel"] += X @ dZ.T                      # x^T dz, (D, H)
        dX = (W @ dZ).reshape(-1, T, B)                       # (D, T, B)
        return dX.transpose(2, 1, 0)                          # (B, T, D), a view of (D, T, B) memory

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias}


def _time_major(x) -> bool:
    """True for a (B, T, D) array whose memory is time-major (T, D, B), as a recurrent
    layer's output (a view of its (T, D, B) array), on the NumPy backend."""
    return (x.ndim == 3 and x.shape[0] > 1 and backend.get_backend() == "numpy"
            and x.transpose(1, 2, 0).flags.c_contiguous)


class Flatten(Layer):
    """(B, d1, d2, ...) -> (B, d1 * d2 * ...); backward reshapes back."""

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(numpy.prod(rest))
        return (input_shape[0], size)

    def forward(self, x, training=False):
        self._remember(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._recall())


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: (B, T, ...) -> (B*T, ...) -> layer -> (B, T, ...).

    The wrapped layer's parameters are shared by all time steps, so its
    gradients sum over B and T.

    Masks, as Keras 3: a mask (B, T, ...) passes on unchanged, and a wrapped
    layer that takes a mask (``takes_mask``) gets each step's, flattened like
    the input: (B, T) -> (B*T,), (B, T, T2) -> (B*T, T2) (for a recurrent layer
    over a nested sequence). A layer that takes none (``Dense``) gets none.
    """

    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps a Layer, got {type(layer).__name__}")
        self.layer = layer
        self.params, self.grads, self.state = layer.params, layer.grads, layer.state
        self.weight_names = layer.weight_names

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"{self.name}: TimeDistributed expects inputs (B, T, ...), got shape {tuple(input_shape)}"
            )
        self.layer.build((None, *input_shape[2:]))
        self.layer.built = True
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (*input_shape[:2], *inner[1:])

    def forward(self, x, training=False, mask=None):
        B, T = x.shape[:2]
        inner = {"mask": mask.reshape(B * T, *mask.shape[2:])} if mask is not None and self.layer.takes_mask \
            else {}
        y = self.layer.forward(x.reshape(B * T, *x.shape[2:]), training=training, **inner)
        self._remember((B, T))
        return y.reshape(B, T, *y.shape[1:])

    def backward(self, dy):
        B, T = self._recall()
        dx = self.layer.backward(dy.reshape(B * T, *dy.shape[2:]))
        return dx.reshape(B, T, *dx.shape[1:])

    def sublayers(self):
        return [self.layer]

    def get_config(self):
        from tinyrnn.layers import serialize  # local import: serialize knows every layer

        return {**super().get_config(), "layer": serialize(self.layer)}


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate``
    and scale the rest by 1 / (1 - rate); identity in inference.

    y = x * m, with m = bernoulli(1 - rate) / (1 - rate);  dx = dy * m.
    Masks come from tinyrnn's seeded generator.
    """

    supports_masking = True

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = _rate(rate)

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._remember(())  # identity: backward passes dy through
            return x
        mask = dropout_mask(x.shape, self.rate, x.dtype)
        self._remember((mask,))
        return x * mask

    def backward(self, dy):
        cache = self._recall()
        return dy * cache[0] if cache else dy

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class Masking(Layer):
    """Mark the padded time steps: those whose features all equal ``mask_value`` (Keras's ``Masking``).

    Shapes: x (B, T, D) -> y (B, T, D) and the mask (B, T) for the next layers.

        keep[b, t] = any over d of (x[b, t, d] != mask_value)       (B, T) bool: the mask
        y = x * keep[..., None]          (a masked step outputs zeros, as in Keras)
        dx = dy * keep[..., None]        (no gradient reaches a masked step)

    A recurrent layer after it skips the masked steps, and the model's loss and
    metrics ignore them (see ``Layer.forward_with_mask``).
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise TypeError(f"Masking: mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        """``any(x != mask_value, axis=-1)``: (B, T, D) -> (B, T) bool, True where a step holds data."""
        return backend.xp.any(inputs != self.mask_value, axis=-1)

    def forward(self, x, training=False):
        keep = self.compute_mask(x)[..., None].astype(x.dtype)   # (B, T, 1): 1 keep, 0 masked
        self._remember(keep)
        return x * keep

    def backward(self, dy):
        return dy * self._recall()                               # (B, T, D)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class RepeatVector(Layer):
    """Vector to sequence: (B, D) -> (B, n, D), the same vector at each of n steps.

    Backward sums the gradient over the n copies: dx = sum_t dy[:, t].
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = validation.positive_int(n, "n")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, *input_shape[1:])

    def forward(self, x, training=False):
        if x.ndim != 2:
            raise ValueError(f"{self.name}: RepeatVector expects inputs (B, D), got shape {x.shape}")
        self._remember(True)
        return backend.xp.repeat(x[:, None], self.n, axis=1)

    def backward(self, dy):
        self._recall()
        return dy.sum(axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


def dropout_mask(shape, rate, dtype):
    """An inverted-dropout mask: 0 with probability ``rate``, else 1 / (1 - rate)."""
    keep = seeding.get_rng().random(shape) >= rate
    return backend.xp.asarray(keep / (1.0 - rate), dtype=dtype)


def _rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be a number in [0, 1), got {rate!r}")
    return float(rate)


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):  # noqa: N802
    """A symbolic input for the functional API: ``x = Input(shape=[None, 1])``.

    ``shape`` leaves out the batch axis (``None`` for sizes known only when the
    data comes, e.g. the time steps). Calling layers and operations on the
    result records the graph that ``Model(inputs, outputs)`` runs.
    """
    if batch_shape is None:
        if shape is None:
            raise ValueError("Input needs shape=, e.g. Input(shape=[None, 1]) for (B, T, 1) sequences")
        batch_shape = (batch_size, *tuple(shape))
    return graph.Value(shape=tuple(None if d is None else int(d) for d in batch_shape),
                       name=name or unique_name("input_layer"))


class Activation(Layer):
    """An activation as a layer: y = f(x);  dx = f'(x) dy (read from the cached y)."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        y = self.activation.forward(x)
        self._remember(y)
        return y

    def backward(self, dy):
        return self.activation.backward(self._recall(), dy)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


class Lambda(Layer):
    """A function of layer outputs as a layer: ``Lambda(lambda x: x[..., :10] * 2)``.

    The function uses ``tinyrnn.ops`` (and operators on its argument); its calls
    are recorded, and backward runs their hand-written backward passes.
    """

    def __init__(self, function, output_shape=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a function, got {type(function).__name__}")
        self.function = function

    def call(self, inputs):
        return self.function(inputs)

    def get_config(self):
        raise TypeError(f"{self.name}: a Lambda layer's function cannot be saved; write a Layer subclass "
                        "with call() and register it with tinyrnn.layers.register")


class Reshape(Layer):
    """(B, ...) -> (B, *target_shape) (one entry may be -1);  dx = dy reshaped back."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if -1 in self.target_shape and all(d is not None for d in rest):
            known = int(numpy.prod([d for d in self.target_shape if d != -1]))
            inferred = int(numpy.prod(rest)) // known
            return (input_shape[0], *(inferred if d == -1 else d for d in self.target_shape))
        return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))

    def forward(self, x, training=False):
        self._remember(x.shape)
        return x.reshape(x.shape[0], *self.target_shape)

    def backward(self, dy):
        return dy.reshape(self._recall())

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permute the non-batch axes: ``Permute((2, 1))`` turns (B, T, D) into (B, D, T).

    ``dims`` numbers the axes from 1 (the batch axis stays first); dx = dy with
    the inverse permutation."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute dims must be a permutation of 1..{len(self.dims)}, got {dims}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def forward(self, x, training=False):
        self._remember(True)
        return x.transpose(0, *self.dims)

    def backward(self, dy):
        self._recall()
        return dy.transpose(0, *(int(i) + 1 for i in numpy.argsort(self.dims)))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}
