"""Embedding: token ids -> learned vectors, a table lookup with a scatter-add backward."""

from __future__ import annotations

import difflib

import numpy

from tinyrnn import backend, initializers, validation
from tinyrnn.layers.base import Layer

_INITIALIZERS = {"uniform": initializers.random_uniform, "random_uniform": initializers.random_uniform,
                 "glorot_uniform": initializers.glorot_uniform, "zeros": initializers.zeros,
                 "ones": initializers.ones}


class Embedding(Layer):
    """Turn integer token ids into dense vectors: ``y = E[ids]``, as Keras's ``Embedding``.

    Shapes: ids of any shape (B,) or (B, T) -> y (..., output_dim); the table
    E ("embeddings") is (input_dim, output_dim), one row per token id, ids in
    [0, input_dim).

    Forward reads rows: ``y[b, t] = E[ids[b, t]]``.

    Backward scatters the upstream gradient back into the rows that were read,
    ``dE[i] += sum of dy[b, t] over every (b, t) with ids[b, t] == i``, so an id
    that appears several times accumulates every one of its gradients
    (``xp.add.at``; plain ``dE[ids] += dy`` would keep only the last). Ids are
    integers and have no gradient: backward returns zeros of the ids' shape
    (float), so a chain of layers still receives an array of the right shape.

    Ids may be an integer array, or a float array of whole numbers (cast, as
    Keras does); a float that is not whole is a TypeError, an id outside
    [0, input_dim) a ValueError naming it.

    ``mask_zero=True`` reserves id 0 for padding (so input_dim must count it:
    vocabulary size + 1), and ``compute_mask(ids)`` gives ``ids != 0``: the
    mask (B, T) that flows to the next layers, so a recurrent layer skips the
    padded steps and the model's loss ignores them (Keras's ``mask_zero``).
    ``input_length`` is accepted for Keras 2 code and ignored.
    """

    weight_names = ("embeddings",)
    accepts_integer_inputs = True     # models and __call__ let integer inputs through to this layer

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False,
                 input_length=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = validation.positive_int(input_dim, "input_dim")
        self.output_dim = validation.positive_int(output_dim, "output_dim")
        if not callable(embeddings_initializer) and embeddings_initializer not in _INITIALIZERS:
            close = difflib.get_close_matches(str(embeddings_initializer), _INITIALIZERS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown embeddings_initializer {embeddings_initializer!r}{hint}: "
                             f"expected one of {', '.join(_INITIALIZERS)} or a function of the shape")
        self.embeddings_initializer = embeddings_initializer
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero       # as Keras: only mask_zero makes (and passes) a mask
        self.input_length = input_length

    def build(self, input_shape):
        init = self.embeddings_initializer
        init = init if callable(init) else _INITIALIZERS[init]
        shape = (self.input_dim, self.output_dim)
        self.add_param("embeddings", backend.asarray(init(shape)))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def compute_mask(self, inputs, mask=None):
        """``ids != 0`` (the ids' shape, bool) with ``mask_zero``, else None (as Keras); any
        incoming ``mask`` is ignored: the ids alone say where the padding is."""
        if not self.mask_zero:
            return None
        ids = inputs if backend.is_array(inputs) and inputs.dtype.kind in "iu" else self.token_ids(inputs)
        return ids != 0

    def token_ids(self, ids):
        """``ids`` checked and as an integer array: whole numbers in [0, input_dim)."""
        ids = ids if backend.is_array(ids) else numpy.asarray(ids)
        kind = ids.dtype.kind
        if kind == "f":
            if not bool(backend.xp.all(ids == backend.xp.round(ids))):
                bad = numpy.argwhere(backend.to_numpy(ids != backend.xp.round(ids)))[0]
                raise TypeError(
                    f"{self.name}: token ids must be integers, got {float(ids[tuple(bad)])!r} at index "
                    f"{tuple(int(i) for i in bad)} (dtype {ids.dtype}): pass the ids of a tokenizer, "
                    "e.g. ids.astype('int64'), not features"
                )
            ids = ids.astype(numpy.int64)
        elif kind not in "iu":
            raise TypeError(f"{self.name}: token ids must be integers, got dtype {ids.dtype}: "
                            "convert them with ids.astype('int64')")
        outside = (ids < 0) | (ids >= self.input_dim)
        if bool(backend.xp.any(outside)):
            where = tuple(int(i) for i in numpy.argwhere(backend.to_numpy(outside))[0])
            raise ValueError(
                f"{self.name}: token id {int(ids[where])} at index {where} is outside [0, input_dim) = "
                f"[0, {self.input_dim}): input_dim must be larger than the largest id "
                f"(the vocabulary size{', plus 1 for the padding id 0' if self.mask_zero else ''})"
            )
        return ids

    def forward(self, ids, training=False):
        ids = self.token_ids(ids)                          # (B, ...) integers
        self._remember(ids)
        return self.params["embeddings"][ids]              # (B, ..., output_dim)

    def backward(self, dy):
        ids = self._recall()
        xp, D = backend.xp, self.output_dim
        dE = dy.reshape(-1, D)                             # (N, D), N = number of ids
        # row id of the table gets every dE row of that id (repeated ids accumulate), done as a
        # scatter-add of the N*D numbers into the flat table: entry (id, j) is id * D + j. (The
        # same sums in the same order as add.at on rows, which NumPy runs several times slower.)
        entries = (ids.reshape(-1, 1) * D + xp.arange(D)).reshape(-1)
        xp.add.at(self.grads["embeddings"].reshape(-1), entries, dE.reshape(-1))
        return backend.xp.zeros(ids.shape, dtype=dy.dtype)  # integer ids: no gradient

    def get_config(self):
        init = self.embeddings_initializer
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": init if isinstance(init, str) else "uniform",
                "mask_zero": self.mask_zero}
