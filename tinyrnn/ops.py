"""Operations with hand-written backward passes, for composing layers (``keras.ops``).

A custom layer's ``call()``, a ``Lambda``, a cell in Keras's cell protocol or a
functional model combines layer outputs with these. Each operation is a small
class with its forward and its backward side by side, like a cell:

    forward(*arrays)        -> (output, cache)
    backward(dout, cache)   -> the gradient of every input (None where none)

and the function below it (``add``, ``matmul``, ...) applies it through
``graph.apply``: on plain arrays it just computes; on ``Value``s it records the
call so that ``graph.backward`` can run the backward (see ``tinyrnn.graph``).
The arithmetic operators of ``Value`` are these operations, so
``a * b + c``, ``x @ w`` and ``x[..., :n]`` record as they read.

Broadcasting. An element-wise operation broadcasts its inputs as NumPy does;
its backward sums the gradient over the broadcast axes (``unbroadcast``):
if a (1, H) bias was added to a (B, H) array, its gradient is the sum over B.

Every operation is gradient-checked in float64 (``tests/test_ops.py``).
"""

from __future__ import annotations

import numbers

import numpy

from tinyrnn import activations, backend, graph
from tinyrnn.graph import Value, apply


class Op:
    """Base: ``forward(*arrays) -> (out, cache)``, ``backward(dout, cache) -> grads``."""

    def __repr__(self):
        return type(self).__name__


def unbroadcast(g, shape):
    """Sum g (broadcast shape) down to ``shape``: over the leading axes g has in
    addition, and over every axis where ``shape`` has size 1."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _shape(a):
    return numpy.shape(a) if isinstance(a, numbers.Number) else a.shape


def _check_broadcast(name, a, b):
    try:
        numpy.broadcast_shapes(_shape(a), _shape(b))
    except ValueError:
        raise ValueError(
            f"{name}: shapes {tuple(_shape(a))} and {tuple(_shape(b))} do not broadcast (each axis must "
            "match or be 1, counted from the last axis)"
        ) from None


# --- element-wise arithmetic --------------------------------------------------------------------
class Add(Op):
    """y = a + b.   da = dy,  db = dy   (each summed over its broadcast axes)."""

    def forward(self, a, b):
        _check_broadcast("add", a, b)
        return a + b, (_shape(a), _shape(b))

    def backward(self, dy, cache):
        sa, sb = cache
        return unbroadcast(dy, sa), unbroadcast(dy, sb)


class Subtract(Op):
    """y = a - b.   da = dy,  db = -dy."""

    def forward(self, a, b):
        _check_broadcast("subtract", a, b)
        return a - b, (_shape(a), _shape(b))

    def backward(self, dy, cache):
        sa, sb = cache
        return unbroadcast(dy, sa), unbroadcast(-dy, sb)


class Multiply(Op):
    """y = a * b.   da = dy * b,  db = dy * a."""

    def forward(self, a, b):
        _check_broadcast("multiply", a, b)
        return a * b, (a, b)

    def backward(self, dy, cache):
        a, b = cache
        return unbroadcast(dy * b, _shape(a)), unbroadcast(dy * a, _shape(b))


class Divide(Op):
    """y = a / b.   da = dy / b,  db = -dy a / b^2 = -dy y / b."""

    def forward(self, a, b):
        _check_broadcast("divide", a, b)
        y = a / b
        return y, (a, b, y)

    def backward(self, dy, cache):
        a, b, y = cache
        return unbroadcast(dy / b, _shape(a)), unbroadcast(-dy * y / b, _shape(b))


class Negative(Op):
    """y = -x.   dx = -dy."""

    def forward(self, x):
        return -x, None

    def backward(self, dy, cache):
        return (-dy,)


# --- element-wise functions (derivatives from the cached output where possible) ----------------
class Exp(Op):
    """y = exp(x).   dx = dy * y."""

    def forward(self, x):
        y = backend.xp.exp(x)
        return y, y

    def backward(self, dy, y):
        return (dy * y,)


class Log(Op):
    """y = log(x).   dx = dy / x."""

    def forward(self, x):
        return backend.xp.log(x), x

    def backward(self, dy, x):
        return (dy / x,)


class Sqrt(Op):
    """y = sqrt(x).   dx = dy / (2 y)."""

    def forward(self, x):
        y = backend.xp.sqrt(x)
        return y, y

    def backward(self, dy, y):
        return (dy / (2 * y),)


class Square(Op):
    """y = x^2.   dx = 2 x dy."""

    def forward(self, x):
        return x * x, x

    def backward(self, dy, x):
        return (2 * x * dy,)


# --- products and reductions ---------------------------------------------------------------------
class MatMul(Op):
    """y = a @ b, batched over leading axes as NumPy's matmul.

    da = dy b^T,  db = a^T dy   (transposes of the last two axes; summed over
    broadcast batch axes). A 1-D operand is a row (a) or a column (b) vector.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: operands must have at least one axis; use multiply for scalars")
        if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not chain: the last axis of a "
                f"({a.shape[-1]}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} axis of b"
            )
        return a @ b, (a, b)

    def backward(self, dy, cache):
        a, b = cache
        a2 = a[None] if a.ndim == 1 else a                   # (1, K) row
        b2 = b[:, None] if b.ndim == 1 else b                # (K, 1) column
        batch = numpy.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        dy2 = dy.reshape(*batch, a2.shape[-2], b2.shape[-1])  # dy with the vectors' axes put back
        da = dy2 @ b2.swapaxes(-1, -2)                        # dy b^T
        db = a2.swapaxes(-1, -2) @ dy2                        # a^T dy
        return unbroadcast(da, a2.shape).reshape(a.shape), unbroadcast(db, b2.shape).reshape(b.shape)


class Sum(Op):
    """y = sum of x over ``axis``.   dx = dy broadcast back over the summed axes."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims), x.shape

    def backward(self, dy, shape):
        return (backend.xp.broadcast_to(_keep_axes(dy, shape, self.axis, self.keepdims), shape).copy(),)


class Mean(Sum):
    """y = mean of x over ``axis`` (n entries each).   dx = dy / n broadcast back."""

    def forward(self, x):
        return x.mean(axis=self.axis, keepdims=self.keepdims), x.shape

    def backward(self, dy, shape):
        n = numpy.prod(shape) / max(1, numpy.prod(_reduced_shape(shape, self.axis, True)))
        return (super().backward(dy, shape)[0] / n,)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axis)


def _reduced_shape(shape, axis, keepdims):
    axes = _axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _keep_axes(dy, shape, axis, keepdims):
    """dy with the reduced axes put back as size 1, ready to broadcast to ``shape``."""
    return dy if keepdims else dy.reshape(_reduced_shape(shape, axis, True))


# --- shapes: indexing, joining, splitting, reshaping ----------------------------------------------
class GetItem(Op):
    """y = x[index] (slices, integers, ``...``, ``None``, integer arrays).

    dx = zeros like x with dy added at ``index`` (``add.at``: an entry picked
    twice by an integer array gets both gradients)."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        return x[self.index], (x.shape, x.dtype)

    def backward(self, dy, cache):
        shape, dtype = cache
        dx = backend.xp.zeros(shape, dtype)
        if _has_array(self.index):
            backend.xp.add.at(dx, self.index, dy)
        else:
            dx[self.index] = dy                              # basic indexing: no entry twice
        return (dx,)

    def __repr__(self):
        return f"GetItem[{_index_str(self.index)}]"


def _has_array(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


def _index_str(index) -> str:
    def one(i):
        if isinstance(i, slice):
            return ":".join("" if v is None else str(v) for v in (i.start, i.stop)) + (
                f":{i.step}" if i.step is not None else "")
        return "..." if i is Ellipsis else str(i)

    return ", ".join(one(i) for i in (index if isinstance(index, tuple) else (index,)))


class Concatenate(Op):
    """y = [x_1, x_2, ...] joined along ``axis``.   dx_k = the slice of dy that x_k filled."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, *xs):
        _check_same_shapes("concatenate", xs, skip_axis=self.axis)
        return backend.xp.concatenate(xs, axis=self.axis), [x.shape[self.axis] for x in xs]

    def backward(self, dy, sizes):
        bounds = numpy.cumsum(sizes)[:-1]
        return tuple(backend.xp.split(dy, bounds, axis=self.axis))


class Stack(Op):
    """y = x_1, x_2, ... stacked along a new ``axis``.   dx_k = dy taken at k on that axis."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        _check_same_shapes("stack", xs)
        return backend.xp.stack(xs, axis=self.axis), len(xs)

    def backward(self, dy, n):
        return tuple(backend.xp.take(dy, k, axis=self.axis) for k in range(n))


def _check_same_shapes(name, xs, skip_axis=None):
    """Every array of ``xs`` has the rank and sizes of the first (except on ``skip_axis``)."""
    shapes = [tuple(_shape(x)) for x in xs]

    def rest(s):
        if skip_axis is None:
            return s
        if not s:
            return None
        axis = skip_axis % len(s)
        return s[:axis] + s[axis + 1:]

    if len({len(s) for s in shapes}) > 1 or len({rest(s) for s in shapes}) > 1:
        where = "" if skip_axis is None else f" except on axis {skip_axis}"
        raise ValueError(f"{name}: shapes {', '.join(map(str, shapes))} differ{where}; every array must have "
                         f"the same shape{where}")


class Split(Op):
    """(y_1, ..., y_n) = x split along ``axis`` (into n equal parts, or at indices).

    dx = the outputs' gradients joined again (zeros for an output not used)."""

    def __init__(self, indices_or_sections, axis=-1):
        self.indices_or_sections, self.axis = indices_or_sections, axis

    def forward(self, x):
        parts = tuple(backend.xp.split(x, self.indices_or_sections, axis=self.axis))
        return parts, [p.shape for p in parts]

    def backward(self, dys, shapes):
        dys = [backend.xp.zeros(s, _dtype_of(dys)) if d is None else d for d, s in zip(dys, shapes)]
        return (backend.xp.concatenate(dys, axis=self.axis),)


def _dtype_of(arrays):
    return next(a.dtype for a in arrays if a is not None)


class Reshape(Op):
    """y = x reshaped to ``shape`` (one entry may be -1).   dx = dy reshaped back."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(self.shape), x.shape

    def backward(self, dy, shape):
        return (dy.reshape(shape),)


class Transpose(Op):
    """y = x with its axes permuted (reversed by default).   dx = dy with the inverse permutation."""

    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x):
        axes = self.axes or tuple(reversed(range(x.ndim)))
        return x.transpose(axes), axes

    def backward(self, dy, axes):
        return (dy.transpose(numpy.argsort(axes)),)


class ExpandDims(Op):
    """y = x with a new axis of size 1 at ``axis``.   dx = dy without it."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        return backend.xp.expand_dims(x, self.axis), x.shape

    def backward(self, dy, shape):
        return (dy.reshape(shape),)


class Squeeze(ExpandDims):
    """y = x without the size-1 axis (or axes) ``axis``.   dx = dy with it again."""

    def forward(self, x):
        return backend.xp.squeeze(x, axis=self.axis), x.shape


class ZerosLike(Op):
    """y = zeros shaped like x: a constant, no gradient flows to x."""

    def forward(self, x):
        return backend.xp.zeros_like(x), None

    def backward(self, dy, cache):
        return (None,)


# --- the functions a call() uses ------------------------------------------------------------------
def add(a, b):
    return apply(Add(), a, b)


def subtract(a, b):
    return apply(Subtract(), a, b)


def multiply(a, b):
    return apply(Multiply(), a, b)


def divide(a, b):
    return apply(Divide(), a, b)


def negative(x):
    return apply(Negative(), x)


def exp(x):
    return apply(Exp(), x)


def log(x):
    return apply(Log(), x)


def sqrt(x):
    return apply(Sqrt(), x)


def square(x):
    return apply(Square(), x)


def matmul(a, b):
    return apply(MatMul(), a, b)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops.sum
    return apply(Sum(axis, keepdims), x)


def mean(x, axis=None, keepdims=False):
    return apply(Mean(axis, keepdims), x)


def take(x, index):
    """x[index] as an operation (what ``Value.__getitem__`` calls)."""
    return apply(GetItem(index), x)


def concatenate(xs, axis=-1):
    return apply(Concatenate(axis), *_sequence(xs, "concatenate"))


def stack(xs, axis=0):
    return apply(Stack(axis), *_sequence(xs, "stack"))


def split(x, indices_or_sections, axis=-1):
    parts = apply(Split(indices_or_sections, axis), x)
    return list(parts)


def reshape(x, newshape):
    return apply(Reshape(newshape), x)


def transpose(x, axes=None):
    return apply(Transpose(axes), x)


def expand_dims(x, axis):
    return apply(ExpandDims(axis), x)


def squeeze(x, axis=None):
    return apply(Squeeze(axis), x)


def zeros_like(x):
    return apply(ZerosLike(), x)


def zeros(shape, dtype=None):
    """A constant array of zeros (no gradient)."""
    return backend.xp.zeros(tuple(shape), dtype or backend.floatx())


def ones(shape, dtype=None):
    """A constant array of ones (no gradient)."""
    return backend.xp.ones(tuple(shape), dtype or backend.floatx())


def convert_to_tensor(x, dtype=None):
    """An array of the backend (a Value is returned as it is)."""
    return x if isinstance(x, Value) else backend.asarray(x, dtype=dtype or backend.floatx())


def _sequence(xs, name):
    if not isinstance(xs, (list, tuple)) or not xs:
        raise TypeError(f"{name} takes a non-empty list of arrays, e.g. {name}([a, b])")
    return xs


# the activations as functions: ops.tanh(x) is activations.tanh(x)
tanh, sigmoid, relu, softmax = activations.tanh, activations.sigmoid, activations.relu, activations.softmax


# --- the operators of Value --------------------------------------------------------------------------
def _reflected(function):
    return lambda self, other: function(other, self)


Value.__add__, Value.__radd__ = add, _reflected(add)
Value.__sub__, Value.__rsub__ = subtract, _reflected(subtract)
Value.__mul__, Value.__rmul__ = multiply, _reflected(multiply)
Value.__truediv__, Value.__rtruediv__ = divide, _reflected(divide)
Value.__matmul__, Value.__rmatmul__ = matmul, _reflected(matmul)
Value.__neg__ = negative
Value.__getitem__ = take
Value.__pow__ = lambda self, p: square(self) if p == 2 else _unsupported_power(p)
Value.T = property(transpose)
Value.reshape = lambda self, *shape: reshape(self, shape[0] if len(shape) == 1 else shape)
Value.sum = sum
Value.mean = mean


def _unsupported_power(p):
    raise ValueError(f"x ** {p}: only x ** 2 is an operation (ops.square); use ops.exp / ops.log for others")


__all__ = [
    "add", "subtract", "multiply", "divide", "negative", "exp", "log", "sqrt", "square", "matmul", "sum",
    "mean", "take", "concatenate", "stack", "split", "reshape", "transpose", "expand_dims", "squeeze",
    "zeros", "ones", "zeros_like", "convert_to_tensor", "tanh", "sigmoid", "relu", "softmax", "graph",
]
