"""Merge layers: several inputs of one shape (or shapes that broadcast) into one output.

Each takes a list ``[x_1, ..., x_n]`` and has its backward written by hand:

===========  ==========================  ===========================================
layer        y                           dx_k
===========  ==========================  ===========================================
Add          x_1 + ... + x_n             dy
Subtract     x_1 - x_2                   dy, -dy
Multiply     x_1 * ... * x_n             dy * prod of the other inputs
Average      (x_1 + ... + x_n) / n       dy / n
Maximum      max_k x_k                   dy where x_k is the (first) largest, else 0
Concatenate  [x_1, ..., x_n] on axis     the slice of dy that x_k filled
===========  ==========================  ===========================================

(every dx_k summed over the axes along which x_k was broadcast, ``ops.unbroadcast``).
"""

from __future__ import annotations

import functools

import numpy

from tinyrnn import backend
from tinyrnn.layers.base import Layer
from tinyrnn.ops import unbroadcast


class _Merge(Layer):
    """Base: checks the list of inputs, keeps their shapes for the backward."""

    n_inputs = None  # a fixed number of inputs (Subtract: 2), else any n >= 2
    supports_masking = True

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape] if _is_list_of_shapes(input_shape) else None
        if shapes is None or len(shapes) < 2 or (self.n_inputs and len(shapes) != self.n_inputs):
            count = f"exactly {self.n_inputs}" if self.n_inputs else "at least 2"
            raise ValueError(f"{self.name}: {type(self).__name__} takes a list of {count} inputs, "
                             f"e.g. {type(self).__name__}()([a, b])")
        self.compute_output_shape(shapes)
        super().build(shapes)

    def compute_output_shape(self, input_shape):
        try:
            out = functools.reduce(_broadcast, [tuple(s) for s in input_shape])
        except ValueError:
            raise ValueError(f"{self.name}: inputs of shapes {[tuple(s) for s in input_shape]} cannot be "
                             "merged: each axis must match or be 1") from None
        return out

    def compute_mask(self, inputs, mask=None):
        """Keras's: a step counts where it counts in any input (logical or); None when an input has none."""
        if mask is None or any(m is None for m in mask):
            return None
        return functools.reduce(backend.xp.logical_or, mask)

    def forward(self, xs, training=False):
        if not isinstance(xs, (list, tuple)):
            raise TypeError(f"{self.name}: {type(self).__name__} takes a list of inputs, e.g. layer([a, b])")
        self.compute_output_shape([x.shape for x in xs])
        y, cache = self.merge(list(xs))
        self._remember(([x.shape for x in xs], cache))
        return y

    def backward(self, dy):
        shapes, cache = self._recall()
        return [unbroadcast(d, s) for d, s in zip(self.merge_backward(dy, cache, len(shapes)), shapes)]


class Add(_Merge):
    """y = x_1 + ... + x_n;  dx_k = dy."""

    def merge(self, xs):
        return functools.reduce(lambda a, b: a + b, xs), None

    def merge_backward(self, dy, cache, n):
        return [dy] * n


class Subtract(_Merge):
    """y = x_1 - x_2;  dx_1 = dy,  dx_2 = -dy."""

    n_inputs = 2

    def merge(self, xs):
        return xs[0] - xs[1], None

    def merge_backward(self, dy, cache, n):
        return [dy, -dy]


class Multiply(_Merge):
    """y = x_1 * ... * x_n;  dx_k = dy * prod_{j != k} x_j (no division: zeros are fine)."""

    def merge(self, xs):
        return functools.reduce(lambda a, b: a * b, xs), xs

    def merge_backward(self, dy, xs, n):
        return [functools.reduce(lambda a, b: a * b, [dy] + xs[:k] + xs[k + 1:]) for k in range(n)]


class Average(_Merge):
    """y = (x_1 + ... + x_n) / n;  dx_k = dy / n."""

    def merge(self, xs):
        return functools.reduce(lambda a, b: a + b, xs) / len(xs), None

    def merge_backward(self, dy, cache, n):
        return [dy / n] * n


class Maximum(_Merge):
    """y = max_k x_k entry by entry;  dx_k = dy where x_k gave the max (the first on a tie), else 0."""

    def merge(self, xs):
        stacked = backend.xp.stack(backend.xp.broadcast_arrays(*xs))     # (n, ...)
        winner = stacked.argmax(axis=0)                                   # which input gave each entry
        return stacked.max(axis=0), winner

    def merge_backward(self, dy, winner, n):
        return [dy * (winner == k) for k in range(n)]


class Concatenate(_Merge):
    """y = [x_1, ..., x_n] joined on ``axis`` (default -1: the features);
    dx_k = the slice of dy that x_k filled."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        shapes = [list(s) for s in input_shape]
        axis = self.axis % len(shapes[0])
        rest = {tuple(s[:axis] + s[axis + 1:]) for s in shapes}
        if len({len(s) for s in shapes}) != 1 or len(_known(rest)) > 1:
            raise ValueError(f"{self.name}: Concatenate(axis={self.axis}) needs inputs whose shapes match "
                             f"except on that axis, got {[tuple(s) for s in input_shape]}")
        sizes = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[axis] = None if None in sizes else int(numpy.sum(sizes))
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        """Keras's: each input's mask (all True for an input without one) spread over its own entries,
        joined on ``axis``, then any over the last axis."""
        if mask is None or all(m is None for m in mask):
            return None
        xp = backend.xp
        full = [xp.ones(x.shape, bool) if m is None else
                (xp.broadcast_to(m[..., None], x.shape) if m.ndim < x.ndim else m)
                for x, m in zip(inputs, mask)]
        return xp.any(xp.concatenate(full, axis=self.axis), axis=-1)

    def merge(self, xs):
        return backend.xp.concatenate(xs, axis=self.axis), [x.shape[self.axis] for x in xs]

    def merge_backward(self, dy, sizes, n):
        return backend.xp.split(dy, numpy.cumsum(sizes)[:-1], axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _known(shapes):
    """The shapes with unknown (None) sizes left out of the comparison: None matches anything."""
    return {tuple(d for d in s if d is not None) for s in shapes}


def _broadcast(a, b):
    if len(a) != len(b):
        raise ValueError("ranks differ")
    out = []
    for x, y in zip(a, b):
        if x is None or y is None:
            out.append(y if x in (None, 1) else x)
        elif x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError("sizes differ")
    return tuple(out)


def _is_list_of_shapes(shape) -> bool:
    return (isinstance(shape, (list, tuple)) and bool(shape)
            and all(isinstance(s, (list, tuple)) for s in shape))
