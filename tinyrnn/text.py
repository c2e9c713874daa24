"""Text for language models: a character tokenizer, the tiny-Shakespeare corpus, windows of it.

The book's character model (the NLP chapter of Géron's *Hands-On Machine
Learning*, 3rd edition) reads Shakespeare one character at a time and learns
to predict the next one. This module holds everything before the model:

- ``CharTokenizer``: characters to integer ids and back, in the spirit of Keras's
  ``TextVectorization(split="character", standardize="lower")`` (``adapt``,
  ``get_vocabulary``, ``vocabulary_size``, calling it encodes, ``decode``);
- ``shakespeare_text`` / ``load_shakespeare``: the corpus, shipped inside the
  package (1,115,394 characters, no network), and the book's split;
- ``WindowBatches``: stateless training batches, windows of ``length + 1``
  characters with shift 1, shuffled; ``StatefulBatches``: the text cut into
  ``batch_size`` contiguous streams, row b of batch k + 1 continuing row b of
  batch k, for a stateful model.

Ids, as Keras numbers them: 0 is the padding token ``""``, 1 the unknown token
``"[UNK]"``, then the characters from the most frequent to the least (ties: the
larger character first, as Keras's ``np.lexsort(...)[::-1]``). The book then
subtracts 2 (``encoded -= 2``) to get 39 ids for Shakespeare's 39 distinct
lowercase characters, no padding and no unknown. ``CharTokenizer(special_tokens=False)``
numbers the characters that way directly: the book's ids, and a character never
seen by ``adapt`` is an error (there is no id for it).

Shapes: B batch (streams), T = ``length`` time steps; every batch is a pair of
int64 arrays (x, y) of shape (B, T) with ``y[:, t] = x[:, t + 1]`` for t < T - 1
(the target is the input shifted by one character).
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.resources
import math

import numpy

from tinyrnn import seeding, validation

PAD, UNKNOWN = "", "[UNK]"
"""Keras's two reserved tokens: id 0 (padding) and id 1 (a character not in the vocabulary)."""

SHAKESPEARE_CHARS = 1_115_394
"""Length of the tiny-Shakespeare corpus, in characters."""

TRAIN_END, VALID_END = 1_000_000, 1_060_000
"""The book's split: characters [0, 1,000,000) train, [1,000,000, 1,060,000) validation, the rest test."""


# --- tokenizer ------------------------------------------------------------------------------------
class CharTokenizer:
    """Characters <-> integer ids, as Keras's ``TextVectorization(split="character", standardize="lower")``.

    Parameters
    ----------
    standardize : "lower" or None
        ``"lower"`` lowercases the text before it is split into characters (Keras's
        ``standardize="lower"``: punctuation is kept); None keeps it as it is.
    special_tokens : bool
        True (Keras's numbering): id 0 is padding, id 1 an unknown character, the
        characters start at 2, and an unknown character encodes as 1.
        False (the book's numbering, Keras's ids minus 2): the characters start at
        0, and a character ``adapt`` never saw is a ValueError naming it.

    Examples
    --------
    >>> tokenizer = CharTokenizer()
    >>> tokenizer.adapt("To be, or not to be")
    >>> tokenizer.get_vocabulary()[:5]
    ['', '[UNK]', ' ', 'o', 't']
    >>> ids = tokenizer("to be")          # int64 array (5,)
    >>> tokenizer.decode(ids)
    'to be'
    """

    def __init__(self, standardize="lower", special_tokens=True):
        if standardize not in ("lower", None):
            raise ValueError(f"standardize must be 'lower' or None, got {standardize!r}")
        self.standardize = standardize
        self.special_tokens = bool(special_tokens)
        self._vocabulary: list[str] | None = None
        self._ids: dict[str, int] = {}
        self._lookup: numpy.ndarray | None = None

    # --- vocabulary ---
    def adapt(self, text: str) -> None:
        """Learn the vocabulary: every character of ``text`` (after ``standardize``), most frequent first.

        Ties go to the larger character first (Keras sorts by count, then by token,
        both descending).
        """
        text = self._standardized(text, "adapt")
        if not text:
            raise ValueError("adapt needs some text to learn characters from, got an empty string")
        counts = collections.Counter(text)
        self._set_vocabulary(sorted(counts, key=lambda c: (counts[c], c), reverse=True))

    def _set_vocabulary(self, chars: list[str]) -> None:
        self._vocabulary = ([PAD, UNKNOWN] if self.special_tokens else []) + list(chars)
        self._ids = {c: i for i, c in enumerate(self._vocabulary)}
        self._lookup = self._lookup_table()

    def get_vocabulary(self, include_special_tokens=True) -> list[str]:
        """The token of every id, in id order (Keras's ``get_vocabulary``)."""
        vocabulary = self._require_adapted("get_vocabulary")
        if self.special_tokens and not include_special_tokens:
            return vocabulary[2:]
        return list(vocabulary)

    def vocabulary_size(self) -> int:
        """The number of ids: the characters, plus 2 with ``special_tokens`` (padding and unknown)."""
        return len(self._require_adapted("vocabulary_size"))

    # --- encode and decode ---
    def __call__(self, text: str) -> numpy.ndarray:
        """Encode: ``text`` (str, standardized) -> ids, int64 array of shape (len(text),)."""
        self._require_adapted("encode")
        text = self._standardized(text, "encode")
        codes = numpy.frombuffer(text.encode("utf-32-le"), dtype=numpy.uint32)   # one code point each
        ids = numpy.full(codes.shape, -1, dtype=numpy.int64)
        inside = codes < len(self._lookup)
        ids[inside] = self._lookup[codes[inside]]
        unknown = ids < 0
        if unknown.any():
            if not self.special_tokens:
                where = int(numpy.argmax(unknown))
                raise ValueError(
                    f"character {text[where]!r} at index {where} is not in the vocabulary "
                    f"({len(self._vocabulary)} characters learnt by adapt) and special_tokens=False "
                    "leaves no id for unknown characters: adapt on a text that contains it, or use "
                    "CharTokenizer(special_tokens=True), which encodes it as 1 ([UNK])")
            ids[unknown] = self._ids[UNKNOWN]
        return ids

    encode = __call__

    def decode(self, ids) -> str:
        """Ids (any shape of integers, read in order) -> text; padding decodes to "" and
        an unknown character to "[UNK]". ``decode(tokenizer(s)) == s.lower()`` when every
        character of ``s`` is in the vocabulary."""
        vocabulary = self._require_adapted("decode")
        ids = numpy.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"decode takes integer ids, got dtype {ids.dtype}: pass ids.astype('int64')")
        flat = ids.reshape(-1)
        outside = (flat < 0) | (flat >= len(vocabulary))
        if outside.any():
            bad = int(flat[numpy.argmax(outside)])
            raise ValueError(f"id {bad} is outside [0, {len(vocabulary)}), the tokenizer's vocabulary_size()"
                             + ("; book ids (Keras's minus 2) need CharTokenizer(special_tokens=False)"
                                if self.special_tokens and bad < 0 else ""))
        return "".join(vocabulary[i] for i in flat.tolist())

    # --- helpers ---
    def _standardized(self, text, what) -> str:
        if not isinstance(text, str):
            raise TypeError(f"{what} takes one string, got {type(text).__name__}")
        return text.lower() if self.standardize == "lower" else text

    def _require_adapted(self, what) -> list[str]:
        if self._vocabulary is None:
            raise RuntimeError(f"call tokenizer.adapt(text) before {what}: the tokenizer has no "
                               "vocabulary yet")
        return self._vocabulary

    def _lookup_table(self) -> numpy.ndarray:
        """ids by code point: a table as long as the largest code point + 1, -1 where unknown."""
        chars = [c for c in self._vocabulary if len(c) == 1]
        table = numpy.full(max(map(ord, chars)) + 1, -1, dtype=numpy.int64)
        for c in chars:
            table[ord(c)] = self._ids[c]
        return table

    def get_config(self) -> dict:
        return {"standardize": self.standardize, "special_tokens": self.special_tokens,
                "vocabulary": self.get_vocabulary(include_special_tokens=False)}

    @classmethod
    def from_config(cls, config: dict) -> CharTokenizer:
        """A tokenizer with ``config``'s vocabulary (the characters, in id order), no adapt needed."""
        tokenizer = cls(config.get("standardize", "lower"), config.get("special_tokens", True))
        tokenizer._set_vocabulary(config["vocabulary"])
        return tokenizer

    def __repr__(self):
        size = "not adapted" if self._vocabulary is None else f"{len(self._vocabulary)} ids"
        return (f"CharTokenizer(standardize={self.standardize!r}, special_tokens={self.special_tokens}; "
                f"{size})")


# --- the corpus -----------------------------------------------------------------------------------
def shakespeare_text() -> str:
    """The tiny-Shakespeare corpus (Karpathy's char-rnn data), 1,115,394 characters, read from
    the package (``tinyrnn/corpora/tinyshakespeare.txt``): no network."""
    resource = importlib.resources.files("tinyrnn") / "corpora" / "tinyshakespeare.txt"
    return resource.read_text(encoding="utf-8")


@dataclasses.dataclass
class TextSplits:
    """A corpus encoded and split: the tokenizer and the int64 ids of each part."""

    tokenizer: CharTokenizer
    train: numpy.ndarray
    valid: numpy.ndarray
    test: numpy.ndarray


def load_shakespeare(special_tokens=False) -> TextSplits:
    """Tiny Shakespeare as the book prepares it: lowercased, one id per character, the book's split.

    The tokenizer is adapted on the whole text (as the book does); with the default
    ``special_tokens=False`` the ids are the book's (Keras's minus 2): 0 to 38, 39
    characters. Split: characters [0, 1,000,000) train, [1,000,000, 1,060,000)
    validation, [1,060,000, 1,115,394) test.
    """
    text = shakespeare_text()
    tokenizer = CharTokenizer(standardize="lower", special_tokens=special_tokens)
    tokenizer.adapt(text)
    ids = tokenizer(text)
    return TextSplits(tokenizer, ids[:TRAIN_END], ids[TRAIN_END:VALID_END], ids[VALID_END:])


# --- windows ----------------------------------------------------------------------------------------
def _ids_array(ids, what="ids") -> numpy.ndarray:
    ids = numpy.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"{what} must be a 1-D array of integer ids (a tokenizer's output), "
                         f"got shape {ids.shape} dtype {ids.dtype}")
    return ids


class WindowBatches:
    """Stateless training batches: every window of ``length + 1`` ids (shift 1), shuffled.

    Window i is ``ids[i : i + length + 1]``; its inputs are the first ``length`` ids
    and its targets the last ``length`` (the same window shifted by one), so one
    batch is x, y of shape (B, T) = (batch_size, length). There are
    ``len(ids) - length`` windows, in ``len(self) = ceil(windows / batch_size)``
    batches (the last one smaller): 31,247 for the book's 1,000,000 training
    characters, length 100 and batch 32.

    Nothing is materialised: each batch gathers its windows from ``ids`` when it
    is reached (memory: one permutation of the window starts, and one batch).
    Iterating again is a new epoch with a new order, drawn from tinyrnn's generator
    (``tinyrnn.set_random_seed``), or from ``seed`` when one is given.
    """

    def __init__(self, ids, length, batch_size=32, shuffle=True, seed=None):
        self.ids = _ids_array(ids)
        self.length = validation.positive_int(length, "length")
        self.batch_size = validation.positive_int(batch_size, "batch_size")
        self.n_windows = len(self.ids) - self.length
        if self.n_windows < 1:
            raise ValueError(f"a window needs length + 1 = {self.length + 1} ids, but only {len(self.ids)} "
                             "were given: use a shorter length or more text")
        self.shuffle = shuffle
        self.rng = numpy.random.default_rng(seed) if seed is not None else None
        self._offsets = numpy.arange(self.length + 1)

    def __len__(self) -> int:
        return math.ceil(self.n_windows / self.batch_size)

    def __iter__(self):
        rng = self.rng if self.rng is not None else seeding.get_rng()
        starts = rng.permutation(self.n_windows) if self.shuffle else numpy.arange(self.n_windows)
        for first in range(0, self.n_windows, self.batch_size):
            windows = self.ids[starts[first:first + self.batch_size, None] + self._offsets]  # (B, T + 1)
            yield windows[:, :-1], windows[:, 1:]

    def __repr__(self):
        return (f"WindowBatches({self.n_windows} windows of {self.length} + 1 ids, batch {self.batch_size}, "
                f"{len(self)} batches, shuffle={self.shuffle})")


class StatefulBatches:
    """Stateful training batches: the ids cut into ``batch_size`` contiguous streams.

    Stream b is ``ids[b S : (b + 1) S]`` with ``S = len(ids) // batch_size`` (the
    remainder is dropped); batch k takes from every stream its k-th window of
    ``length + 1`` ids, windows that do not overlap (shift ``length``), so

        x_k[b] = stream_b[k T : (k + 1) T],    y_k[b] = stream_b[k T + 1 : (k + 1) T + 1]

    and row b of batch k + 1 continues row b of batch k: a stateful model's final
    state for row b is the right initial state for row b of the next batch.
    ``len(self) = (S - 1) // length`` batches of (B, T) = (batch_size, length):
    312 for the book's 1,000,000 characters in 32 streams of windows of 100, and
    9,999 for one stream (the book's stateful model, batch 1). The order is fixed:
    shuffling would break the streams. Batches are views of ``ids`` (no copy).
    """

    def __init__(self, ids, length, batch_size=32):
        self.ids = _ids_array(ids)
        self.length = validation.positive_int(length, "length")
        self.batch_size = validation.positive_int(batch_size, "batch_size")
        self.stream_length = len(self.ids) // self.batch_size
        if self.stream_length < self.length + 1:
            raise ValueError(
                f"{len(self.ids)} ids cut into {self.batch_size} streams give {self.stream_length} ids a "
                f"stream, fewer than one window of length + 1 = {self.length + 1}: use fewer streams "
                "(batch_size), a shorter length or more text")
        self.streams = self.ids[:self.batch_size * self.stream_length].reshape(self.batch_size, -1)  # (B, S)

    def __len__(self) -> int:
        return (self.stream_length - 1) // self.length

    def __iter__(self):
        T = self.length
        for k in range(len(self)):
            yield self.streams[:, k * T:(k + 1) * T], self.streams[:, k * T + 1:(k + 1) * T + 1]

    def __repr__(self):
        return (f"StatefulBatches({self.batch_size} streams of {self.stream_length} ids, windows of "
                f"{self.length}, {len(self)} batches)")


# --- what a language model's loss means ------------------------------------------------------------
def language_model_figures(loss_nats: float) -> dict:
    """A mean cross-entropy per character (natural log, "nats", what ``sparse_categorical_crossentropy``
    reports) in the three units language models are quoted in:

        nats = L,    bits per character = L / ln 2,    perplexity = exp(L)

    Perplexity is the number of equally likely characters the model is as unsure as: 1 for a
    model that is always right and sure, 39 for one that guesses uniformly among 39 characters.
    The book's stateful model: 1.4786 nats = 2.133 bits per character, perplexity 4.39.
    """
    return {"nats": float(loss_nats), "bits_per_char": float(loss_nats) / math.log(2),
            "perplexity": math.exp(loss_nats)}


# --- generation --------------------------------------------------------------------------------------
def stateful_copy(model, batch_size: int = 1):
    """The same Sequential model, with every recurrent layer made stateful for batches of ``batch_size``.

    The layers are rebuilt from their configs (``stateful=True``, ``batch_size``) and take
    ``model``'s weights: it computes what ``model`` does, but a batch carries its recurrent
    states to the next one, so text can be fed one character at a time (one step per call)
    without running the whole prefix again. ``reset_states()`` starts it afresh.
    """
    from tinyrnn.layers import RNN, deserialize, serialize  # above the layers: imported when used
    from tinyrnn.models import Sequential

    if type(model) is not Sequential:
        raise TypeError(f"stateful_copy takes a Sequential model (the character model), got "
                        f"{type(model).__name__}")
    layers = []
    for layer in model.layers:
        spec = serialize(layer)
        if isinstance(layer, RNN):
            spec["config"].update(stateful=True, batch_size=batch_size)
        layers.append(deserialize(spec))
    copy = Sequential(layers, name=f"{model.name}_stateful")
    if model.input_shape is None:
        raise ValueError("stateful_copy needs a built model: train it, or call model.build(input_shape)")
    copy.build((batch_size, *model.input_shape[1:]))
    copy.set_weights(model.get_weights())
    return copy


def sample_next(probabilities, temperature: float = 1.0, rng=None) -> int:
    """One id drawn from ``probabilities`` (C,) rescaled by the temperature T, as the book does:

        logits = log(p) / T,    p_T = softmax(logits) = p^(1/T) / sum_j p_j^(1/T)

    T = 1 samples the model's own distribution; T < 1 sharpens it (T -> 0: always the most
    likely id, argmax); T > 1 flattens it (T -> infinity: uniform over the ids the model
    gives any probability). Draws come from tinyrnn's generator unless ``rng`` is given.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (near 0: the most likely character), got {temperature!r}")
    p = numpy.asarray(probabilities, dtype=numpy.float64)
    with numpy.errstate(divide="ignore"):
        logits = numpy.log(p) / temperature                   # log 0 = -inf: never drawn
    logits -= logits.max()
    p_t = numpy.exp(logits)
    p_t /= p_t.sum()
    rng = rng if rng is not None else seeding.get_rng()
    return int(rng.choice(len(p_t), p=p_t))


def generate(model, prompt: str, length: int, temperature: float = 1.0, tokenizer=None,
             rng=None) -> str:
    """Extend ``prompt`` by ``length`` characters sampled one at a time from a character model.

    ``model`` maps ids (B, T) to next-character probabilities (B, T, C) (the book's
    Embedding -> GRU(return_sequences) -> Dense(softmax)), ``tokenizer`` the
    ``CharTokenizer`` its ids come from. A stateful copy of the model (``stateful_copy``,
    batch 1) reads the prompt once, then each sampled character is fed back as the next
    input, one time step per character: n characters cost n steps, not the n^2 of running
    the whole text again each time. Each character is drawn by ``sample_next`` at
    ``temperature`` (the book: 0.01 repeats itself, 1 samples the model, 2 and more is
    noise), from tinyrnn's generator (``tinyrnn.set_random_seed``) unless ``rng`` is given.
    Returns the prompt (lowercased by the tokenizer's standardize) and the new characters.
    """
    if tokenizer is None:
        raise ValueError("generate needs the tokenizer the model's ids come from: "
                         "generate(model, prompt, length, tokenizer=data.tokenizer)")
    length = int(length)
    if length < 0:
        raise ValueError(f"length must be >= 0 characters, got {length}")
    ids = tokenizer(prompt)
    if len(ids) == 0:
        raise ValueError("generate needs a prompt of at least one character to start from")
    stepper = stateful_copy(model, batch_size=1)
    stepper.reset_states()
    probabilities = stepper.predict(ids[None, :], batch_size=1)[0, -1]      # (C,) after the prompt
    new_ids = []
    for _ in range(length):
        new_ids.append(sample_next(probabilities, temperature, rng))
        probabilities = stepper.predict(numpy.array([[new_ids[-1]]]), batch_size=1)[0, -1]
    return tokenizer.decode(ids) + tokenizer.decode(numpy.array(new_ids, dtype=numpy.int64))
