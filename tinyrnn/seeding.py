"""One explicit source of randomness for weights, dropout masks and shuffling.

``set_random_seed(seed)`` makes everything that follows reproducible, bit for
bit on the CPU: weight initialisation, dropout masks and the order ``fit``
visits the batches in. Random numbers are drawn with NumPy on the host (then
moved to the backend), so the same seed gives the same weights on every backend.
"""

from __future__ import annotations

import numpy

_rng = numpy.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Reseed tinyrnn's generator (like ``keras.utils.set_random_seed``)."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _rng = numpy.random.default_rng(int(seed))


def get_rng() -> numpy.random.Generator:
    """The generator every random draw in tinyrnn comes from."""
    return _rng


def get_state() -> dict:
    """The generator's state (saved with a model so training resumes exactly)."""
    return _rng.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state returned by ``get_state``."""
    _rng.bit_generator.state = state
