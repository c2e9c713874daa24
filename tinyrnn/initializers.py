"""Keras's default initialisers, drawn from tinyrnn's seeded generator.

Arrays are drawn in float64 on the host with NumPy, then cast to ``floatx()``
and moved to the current backend, so one seed gives the same weights everywhere.
"""

from __future__ import annotations

import numpy

from tinyrnn import backend, seeding


def glorot_uniform(shape):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Keras's kernel default).

    For a Conv1D kernel (K, D, F) the fans are K*D and K*F, as in Keras; a vector (n,)
    (``add_weight(shape=(n,))``) has both fans n, a scalar both 1 (Keras's ``compute_fans``).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        fan_in = fan_out = shape[0] if shape else 1
    else:
        receptive = int(numpy.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = numpy.sqrt(6.0 / (fan_in + fan_out))
    return backend.asarray(seeding.get_rng().uniform(-limit, limit, size=shape))


def orthogonal(shape):
    """An orthogonal matrix (Keras's recurrent-kernel default): Q of a QR of N(0, 1)."""
    rows, cols = shape
    a = seeding.get_rng().normal(size=(max(rows, cols), min(rows, cols)))
    q, r = numpy.linalg.qr(a)
    q *= numpy.sign(numpy.diag(r))  # make the decomposition unique
    if rows < cols:
        q = q.T
    return backend.asarray(q[:rows, :cols])


def zeros(shape):
    return backend.xp.zeros(shape, dtype=backend.floatx())


def ones(shape):
    return backend.xp.ones(shape, dtype=backend.floatx())


def random_uniform(shape, minval=-0.05, maxval=0.05):
    """U(minval, maxval), Keras's ``RandomUniform`` (its defaults; Embedding's ``"uniform"``)."""
    return backend.asarray(seeding.get_rng().uniform(minval, maxval, size=tuple(shape)))
