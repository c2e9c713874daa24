"""Checks shared by the public entry points, each error naming what was expected and what came.

Shapes are written with the course's letters: B batch, T time, D features, so a
student reads "expected (B, T, D), got (32, 50)" and knows which axis is missing.
"""

from __future__ import annotations

import numpy

from tinyrnn import backend

AXIS_LETTERS = {1: "(B,)", 2: "(B, D)", 3: "(B, T, D)"}
"""How an input of each rank reads in the course's letters."""


def axis_letters(ndim: int) -> str:
    """``"(B, T, D)"`` for 3 axes, ``"(B, D)"`` for 2, ``"(B, ...)"`` beyond."""
    return AXIS_LETTERS.get(ndim, "(B, ...)")


def shape_str(shape) -> str:
    """``(None, 5, 1)`` as ``"(None, 5, 1)"`` and ``(3,)`` as ``"(3,)"``."""
    return str(tuple(shape))


def positive_int(value, what: str) -> int:
    """``value`` as an int after checking it is a positive integer (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def float_array(a, what: str):
    """``a`` as an array of finite real floats (NumPy, or the backend's array as given).

    TypeError for integer, boolean, complex, object or string data (the message
    says how to convert); ValueError for ragged nested lists and for NaN or Inf.
    """
    arr = float_dtype(a, what)
    finite = backend.xp.isfinite(backend.xp.asarray(arr))
    if not bool(finite.all()):
        bad = numpy.argwhere(~backend.to_numpy(finite))
        first = tuple(int(i) for i in bad[0])
        raise ValueError(f"{what} contains {len(bad)} NaN or Inf value(s), the first at index {first}: "
                         "clean or impute them before training")
    return arr


def float_dtype(a, what: str):
    """``a`` as an array of real floats (values not inspected): the dtype half of ``float_array``."""
    arr = a if backend.is_array(a) else _as_numpy(a, what)
    kind = arr.dtype.kind
    if kind in "iu":
        raise TypeError(f"{what} has integer dtype {arr.dtype}: convert it with {what}.astype('float32')")
    if kind != "f":
        raise TypeError(
            f"{what} must hold real floating-point numbers, got dtype {arr.dtype} "
            f"({_KIND_NAMES.get(kind, 'not numbers')})"
        )
    return arr


_KIND_NAMES = {"b": "booleans", "c": "complex numbers", "O": "Python objects", "U": "strings", "S": "bytes",
               "M": "dates", "m": "time differences", "V": "records"}


def _as_numpy(a, what):
    try:
        return numpy.asarray(a)
    except ValueError as err:  # nested lists of different lengths
        raise ValueError(
            f"{what} could not be made into one array ({err}). Do its sequences have different lengths? "
            "Pad or cut them to the same number of time steps T first."
        ) from None


def check_samples(a, what: str) -> None:
    """At least one sample (B >= 1), and no other axis of length 0 (T = 0 time steps, D = 0 features)."""
    if a.ndim == 0:
        raise ValueError(f"{what} must be an array of samples (B, ...), got a scalar")
    if a.shape[0] == 0:
        raise ValueError(f"{what} must hold at least one sample (B >= 1), got an empty batch of shape "
                         f"{shape_str(a.shape)}")
    if a.size == 0:
        letters = axis_letters(a.ndim).strip("()").split(", ")
        axis = list(a.shape).index(0)
        name = letters[axis] if len(letters) == a.ndim else f"axis {axis}"
        raise ValueError(
            f"{what} has shape {shape_str(a.shape)} = {axis_letters(a.ndim)}: {name} = 0, "
            "but every sample needs at least one time step and one feature"
        )


def same_samples(x, y, x_name: str = "x", y_name: str = "y") -> None:
    """x and y hold the same number of samples B."""
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        got = "a scalar" if y.ndim == 0 else str(y.shape[0])
        raise ValueError(
            f"{x_name} and {y_name} must have the same number of samples (B): "
            f"{x_name} has {x.shape[0]}, {y_name} has {got}"
        )
