"""Where ``fit``, ``evaluate`` and ``predict`` get their batches from, epoch after epoch.

Two kinds of data, one loop (Keras's ``EpochIterator`` and data adapters):

- arrays ``(x, y)``: ``ArrayBatches`` cuts them into batches of ``batch_size``
  rows, in a new random order each pass when shuffled; the arrays were checked
  once, as a whole, before training;
- an iterable of ``(x, y)`` batches that the user gives: a generator (or any
  iterator: one pass only), or a re-iterable (a list of batches, or an object
  whose ``__iter__`` starts a new pass each time, such as a data pipeline).
  Each batch is checked and converted by the model as it arrives, so only the
  batch being trained on is held in memory: data larger than memory trains.

``EpochIterator`` hands out one epoch at a time:

- without ``steps`` an epoch is one pass: a re-iterable is iterated again each
  epoch; a one-shot iterator has nothing left after its first pass, so the next
  epoch finds no batch and training stops (with Keras's warning);
- with ``steps`` an epoch is the next ``steps`` batches of one running iterator,
  kept across epochs (an endless generator, as in Keras); a re-iterable that
  ends starts a new pass, a one-shot iterator that ends cuts the epoch short and
  training stops after it (Keras's warning again).

Nothing is kept per batch: memory does not grow with the number of batches.

Where Keras differs: Keras peeks at a Python generator's first two batches to
learn its shapes and yields them again each later epoch; here a generator's
batches are used once, in order.
"""

from __future__ import annotations

import collections.abc

from tinyrnn import backend, graph, seeding

RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
           "generate at least `steps_per_epoch * epochs` batches. You may need to use the `.repeat()` "
           "function when building your dataset.")
"""Keras's warning when a generator is exhausted before ``epochs`` are trained."""


class ArrayBatches:
    """Arrays cut into batches of ``batch_size`` rows (the last one may be shorter).

    ``x`` (B, ...) an array or a list of arrays (several inputs), ``y`` the same
    or None (``predict``); with ``shuffle`` each pass draws a new order from
    tinyrnn's generator (``seeding``), else the rows come in order. A
    re-iterable with a length, as any pipeline may be.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = False):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rows = graph.flatten(x)[0].shape[0]

    def __len__(self) -> int:
        return -(-self.rows // self.batch_size)

    def __iter__(self):
        order = seeding.get_rng().permutation(self.rows) if self.shuffle else None
        for start in range(0, self.rows, self.batch_size):
            end = start + self.batch_size
            index = slice(start, end) if order is None else order[start:end]
            xb = graph.map_structure(lambda a, i=index: a[i], self.x)
            yield xb if self.y is None else (xb, graph.map_structure(lambda a, i=index: a[i], self.y))


def is_batch_source(x, y=None, targets=True) -> bool:
    """Whether ``x`` is an iterable of batches rather than array data.

    An iterator (a generator) or an object with ``__iter__`` that is not an
    array is one; a list or tuple is one when ``y`` is not given and the data
    has targets (``fit``/``evaluate``: ``[(x0, y0), (x1, y1), ...]``), or when
    its first item is a tuple (``predict``: ``[(x0,), (x1,)]``); otherwise a
    list is array data (nested numbers, or one array per input).
    """
    if backend.is_array(x) or isinstance(x, (str, bytes, dict)) or hasattr(x, "__array__"):
        return False  # array data: NumPy or CuPy arrays, and anything NumPy converts (a DataFrame)
    if isinstance(x, (list, tuple)):
        return (targets and y is None) or (len(x) > 0 and isinstance(x[0], tuple))
    return isinstance(x, collections.abc.Iterator) or hasattr(x, "__iter__")


def unpack(batch, index: int, what: str, targets: bool = True):
    """``(x, y)`` of one batch (``targets``), or ``x`` alone (``predict``: an array, ``(x,)`` or ``(x, y)``),
    with an error naming the batch and what it held when the batch is not such a tuple."""
    if not isinstance(batch, tuple):
        if not targets:
            return batch
        raise TypeError(
            f"{what} must yield (x, y) tuples, but batch {index} is a {type(batch).__name__}"
            f"{_shape_note(batch)}: yield x_batch, y_batch (a tuple), e.g. `yield x[i:i + 32], y[i:i + 32]`"
        )
    if len(batch) == 2:
        return batch if targets else batch[0]
    if len(batch) == 1 and not targets:
        return batch[0]
    expected = "(x, y)" if targets else "x, (x,) or (x, y)"
    extra = " (sample weights are not supported)" if len(batch) == 3 else ""
    raise ValueError(f"{what} must yield {expected} batches, but batch {index} is a tuple of {len(batch)} "
                     f"item(s){extra}")


def _shape_note(batch) -> str:
    shape = getattr(batch, "shape", None)
    return f" of shape {tuple(shape)}" if shape is not None else ""


class EpochIterator:
    """The batches of one epoch after another, from arrays or the user's iterable (see the module).

    Parameters
    ----------
    source : ``ArrayBatches`` or the user's iterable of batches.
    steps : int or None, batches per epoch (``steps_per_epoch``); None: one pass.
    what : the argument's name for messages (``"x"``, ``"validation_data"``).
    prepare : function (batch, step) -> the batch checked and converted for the model
        (the user's batches); None: batches are ready (arrays checked as a whole).
    """

    def __init__(self, source, steps=None, what="x", prepare=None):
        self.source, self.steps, self.what = source, steps, what
        self.prepare = prepare or (lambda batch, step: batch)
        self.one_shot = isinstance(source, collections.abc.Iterator)
        self.iterator = None          # the pass under way
        self.epochs_given = 0
        self.exhausted = False        # a one-shot source ran out
        self.pass_length = len(source) if hasattr(source, "__len__") else None

    @property
    def num_batches(self):
        """Batches per epoch when known (``steps``, the source's length, or the length of its
        last full pass); None for a generator of unknown length (the progress bar counts up)."""
        return self.steps or self.pass_length

    def epoch(self):
        """The next epoch's batches as an iterator of ``(step, batch)``, or None when the
        source has none left (its first batch is fetched now, so an epoch never starts empty).

        Raises ValueError when the very first epoch finds no batch at all."""
        if self.steps is None and not self.one_shot:
            self.iterator = None      # one pass per epoch: a re-iterable starts again
        first = self._next()
        if first is None:
            if self.epochs_given == 0:
                raise ValueError(f"{self.what} yielded no batch: an iterable of batches given to a model "
                                 "must yield at least one (x, y) batch")
            return None
        self.epochs_given += 1
        return self._batches(first)

    def _batches(self, first):
        yield 0, first
        step = 1
        while self.steps is None or step < self.steps:
            batch = self._next(continue_pass=self.steps is not None)
            if batch is None:
                break
            yield step, batch
            step += 1
        if self.steps is None:
            self.pass_length = step

    def _next(self, continue_pass=True):
        """The next batch, or None when the source has ended (a re-iterable with ``steps`` starts
        a new pass instead, as a repeated dataset)."""
        if self.iterator is None:
            self.iterator = self.source if self.one_shot else iter(self.source)
        try:
            return next(self.iterator)
        except StopIteration:
            self.iterator = None
            if self.one_shot:
                self.exhausted = True
                return None
            if self.steps is None or not continue_pass:
                return None
        self.iterator = iter(self.source)
        return next(self.iterator, None)
