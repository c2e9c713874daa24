"""The layer contract every tinyrnn layer follows.

A layer holds

- ``params``: dict name -> array, the trainable parameters;
- ``grads``: dict with the same keys, where ``backward`` *accumulates*;
- ``state``: dict name -> array, non-trainable weights (BatchNorm's moving
  statistics), saved and loaded with the others but never trained.

``forward(x, training=False) -> y`` keeps what backward needs in the layer's
cache; ``backward(dy) -> dx`` consumes that cache (a second backward without a
new forward is an error, never stale data). ``build(input_shape)`` creates the
parameters; ``__call__`` builds lazily on the first input.

``get_weights`` / ``set_weights`` use Keras's order and shapes (the names in
``weight_names``), so weights taken from a Keras layer load unchanged.

Shapes use one alphabet: B batch, T time, D input features, H units, K kernel
width, F filters. ``input_shape`` tuples include the batch axis (``None``).
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import re
from collections import defaultdict

import numpy

from tinyrnn import backend, validation

_name_counters: dict[str, itertools.count] = defaultdict(itertools.count)


def _snake_case(name: str) -> str:
    name = re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", name).lower()


def unique_name(prefix: str) -> str:
    """Keras-style names: ``dense``, ``dense_1``, ``dense_2``, ..."""
    n = next(_name_counters[prefix])
    return prefix if n == 0 else f"{prefix}_{n}"


def constructor_arguments(cls) -> list:
    """The keywords ``cls(...)`` accepts: the named parameters of its ``__init__``, then, while
    that ``__init__`` takes ``**kwargs`` (and so hands the rest on), its parent's, up the MRO."""
    names = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.name not in names
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names


def unexpected_arguments_error(cls, unexpected, valid) -> TypeError:
    """A TypeError naming the class, each unknown keyword and the closest valid one."""
    lines = []
    for key in unexpected:
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean {close[0]}=?)" if close else ""
        lines.append(f"{cls.__name__}() got an unexpected keyword argument {key!r}{hint}")
    return TypeError("; ".join(lines) + f". {cls.__name__} takes: {', '.join(valid)}")


class Layer:
    """Base class: see the module docstring for the contract."""

    weight_names: tuple[str, ...] = ()

    def __init__(self, input_shape=None, name=None, trainable=True, input_dim=None, **unexpected):
        if unexpected:  # every layer hands the keywords it does not know on to here
            raise unexpected_arguments_error(type(self), unexpected, type(self).argument_names())
        self.name = name or unique_name(_snake_case(type(self).__name__))
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        self.input_shape = None if input_shape is None else (None, *tuple(input_shape))
        self.trainable = trainable
        self.params: dict = {}
        self.grads: dict = {}
        self.state: dict = {}
        self.built = False
        self._cache = None

    @classmethod
    def argument_names(cls) -> list:
        """The keyword arguments the constructor accepts (named in a misspelling's error)."""
        return constructor_arguments(cls)

    # --- building ---------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create ``params`` (and zeroed ``grads``) for inputs of ``input_shape``."""
        self.input_shape = (None, *tuple(input_shape)[1:])
        self.built = True

    def add_param(self, name: str, value) -> None:
        """Register a trainable parameter and its zeroed gradient."""
        self.params[name] = value
        self.grads[name] = backend.xp.zeros_like(value)

    def compute_output_shape(self, input_shape) -> tuple:
        """Output shape for an input shape (batch axis included, may be None)."""
        return tuple(input_shape)

    # --- running ----------------------------------------------------------
    def __call__(self, x, training: bool = False):
        x = validation.float_dtype(x, "x")
        if not self.built:
            self.build(tuple(x.shape))
        return self.forward(x, training=training)

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def _remember(self, cache) -> None:
        """Keep what backward needs (called by forward)."""
        self._cache = cache

    def _recall(self):
        """Hand backward its cache exactly once."""
        if self._cache is None:
            raise RuntimeError(
                f"{self.name}: backward() needs a forward() first; each forward() "
                "allows one backward() (call forward again before the next backward)"
            )
        cache, self._cache = self._cache, None
        return cache

    def zero_grads(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    # --- weights ----------------------------------------------------------
    def _weight_dict(self) -> dict:
        return {**self.params, **self.state}

    def get_weights(self) -> list:
        """Weights as NumPy arrays in Keras's ``get_weights()`` order."""
        weights = self._weight_dict()
        return [backend.to_numpy(weights[k]).copy() for k in self.weight_names if k in weights]

    def set_weights(self, weights) -> None:
        """Load weights given in Keras's ``get_weights()`` order and shapes."""
        if not self.built:
            raise RuntimeError(
                f"{self.name}: set_weights() needs a built layer: give it input_shape= "
                "or call it on an input first"
            )
        current = self._weight_dict()
        names = [k for k in self.weight_names if k in current]
        weights = list(weights)
        if len(weights) != len(names):
            raise ValueError(
                f"{self.name}: set_weights() expected {len(names)} arrays ({', '.join(names)}), "
                f"got {len(weights)}"
            )
        for key, w in zip(names, weights):
            w = numpy.asarray(backend.to_numpy(w))
            target = current[key]
            if w.shape != target.shape:
                raise ValueError(
                    f"{self.name}: weight {key!r} must have shape {target.shape}, got {w.shape}"
                )
            target[...] = backend.xp.asarray(w, dtype=target.dtype)

    def count_params(self) -> int:
        return int(sum(int(numpy.prod(w.shape)) for w in self._weight_dict().values()))

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (for saving)."""
        return {"name": self.name}

    def sublayers(self) -> list:
        """Layers this layer wraps (their params are not in ``self.params``)."""
        return []

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
