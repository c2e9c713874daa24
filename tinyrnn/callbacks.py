"""Callbacks: code that ``fit`` and ``evaluate`` call at fixed points of training, as in Keras 3.

``model.fit(x, y, callbacks=[...])`` calls, in this order (Keras's)::

    on_train_begin
    for every epoch:
        on_epoch_begin(epoch)
        for every batch:  on_train_batch_begin(batch), one update, on_train_batch_end(batch, logs)
        with validation data:  on_test_begin, on_test_batch_begin/end for each batch, on_test_end(logs)
        on_epoch_end(epoch, logs)          # logs: loss, metrics, grad_norm, val_loss, val_<metric>
    on_train_end(logs)

``evaluate(..., callbacks=[...])`` calls the ``on_test_*`` hooks alone. A batch's
``logs`` are the running means of the epoch so far (Keras's "aggregated metric
results up until this batch"); an epoch's are exactly what ``History`` records
and ``fit`` prints. The callbacks run in the order given, then ``History`` (so a
value a callback adds to the epoch's logs, such as ``learning_rate``, is recorded).

A callback stops training by setting ``self.model.stop_training = True``: the
epoch under way finishes (its batch loop stops after the current batch), and
``on_epoch_end`` and ``on_train_end`` still run.

``on_batch_begin`` / ``on_batch_end`` are Keras's older names: the default
``on_train_batch_begin`` / ``on_train_batch_end`` call them, so overriding either
spelling works.
"""

from __future__ import annotations

import math
import os
import re
import warnings

import numpy

__all__ = [
    "Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback", "LearningRateScheduler",
    "ModelCheckpoint", "ResetStatesCallback",
]


class Callback:
    """The base class: every hook does nothing; override the ones you need.

    Attributes
    ----------
    model : the model being trained (set by ``fit`` through ``set_model``).
    params : dict with ``verbose``, ``epochs`` and ``steps`` (batches per epoch,
        ``None`` when not known in advance), as Keras sets them.

    Examples
    --------
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, logs["loss"])
    >>> model.fit(x, y, epochs=3, callbacks=[PrintLoss()])
    """

    def __init__(self):
        self.params = {}
        self.model = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self.model = model

    # --- training -------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        """Called once before the first epoch."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch, with the last epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called before epoch ``epoch`` (counted from 0) trains its first batch."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after epoch ``epoch`` and its validation; ``logs`` holds its results (``val_`` keys too)."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before batch ``batch`` (counted from 0 in each epoch); calls ``on_batch_begin``."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after the update of batch ``batch``: running means so far; calls ``on_batch_end``."""
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        """Keras's older name for ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Keras's older name for ``on_train_batch_end``."""

    # --- evaluation (``evaluate``, and validation inside ``fit``) ----------------------------
    def on_test_begin(self, logs=None):
        """Called before evaluation (each validation pass of ``fit`` too)."""

    def on_test_end(self, logs=None):
        """Called after evaluation with its results (without the ``val_`` prefix)."""

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after each evaluation batch: running means so far."""


class CallbackList:
    """Calls each hook on every callback in turn (what ``fit`` and ``evaluate`` drive).

    A ``History`` is appended unless one is in the list already (``add_history``);
    the model's ``history`` is that object, as in Keras.
    """

    def __init__(self, callbacks=None, model=None, add_history=False, **params):
        self.callbacks = _as_list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be tinyrnn.callbacks.Callback instances, got "
                                f"{type(callback).__name__} {callback!r}")
        self.history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if model is not None:
            if self.history is not None:
                model.history = self.history
            for callback in self.callbacks:
                callback.set_model(model)
        for callback in self.callbacks:
            callback.set_params(dict(params))

    def _call(self, hook, *args) -> None:
        """``hook(*args)`` of every callback in turn; the last argument, the logs, is a dict ({} for none)."""
        *index, logs = args
        logs = {} if logs is None else logs
        for callback in self.callbacks:
            getattr(callback, hook)(*index, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)


def _as_list(callbacks) -> list:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        raise TypeError("callbacks must be a list, e.g. callbacks=[EarlyStopping()], got one Callback")
    return list(callbacks)


class History(Callback):
    """What ``fit`` returns: ``history`` maps Keras's key names (``loss``, ``val_loss``,
    ``<metric>``, ``val_<metric>``, ``grad_norm``) to one value per epoch, and ``epoch``
    lists the epochs recorded. ``fit`` adds one as its last callback."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []  # Keras keeps ``history`` and restarts ``epoch`` when a History is reused

    def on_epoch_end(self, epoch, logs=None):
        self.append(epoch, logs or {})
        if self.model is not None:
            self.model.history = self

    def append(self, epoch: int, logs: dict) -> None:
        """Record one epoch's logs (what ``on_epoch_end`` does)."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class LambdaCallback(Callback):
    """A callback from plain functions, as Keras's: ``on_epoch_end=lambda epoch, logs: ...``.

    Each given function replaces that hook (``on_epoch_begin``, ``on_epoch_end``,
    ``on_train_begin``, ``on_train_end``, ``on_train_batch_begin``,
    ``on_train_batch_end``; more hooks by keyword, e.g. ``on_test_end=...``).
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        self.__dict__.update(kwargs)
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin, "on_train_batch_end": on_train_batch_end}
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


# --- watching a quantity: EarlyStopping and ModelCheckpoint -----------------------------------------
MAXIMIZED = {"accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy"}
"""Built-in metrics that improve upwards (``mode="auto"`` maximizes them)."""

MINIMIZED = {"loss", "mse", "mae", "last_time_step_mse"}
"""Built-in quantities that improve downwards (``mode="auto"`` minimizes them)."""


class MonitorCallback(Callback):
    """What EarlyStopping and ModelCheckpoint share (Keras's ``MonitorCallback``): a value
    ``monitor`` read from the epoch's logs, and what counts as an improvement on ``best``.

    ``mode="min"`` or ``"max"``; ``"auto"`` decides from the name (without ``val_``):
    ``loss`` and the error metrics are minimized, the accuracies maximized, and any other
    name is an error asking for the mode. An improvement on ``best`` is
    ``current - min_delta < best`` (min) or ``current + min_delta > best`` (max).
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode {mode!r} is unknown, fallback to auto mode.",
                          stacklevel=3)
            mode = "auto"
        self.monitor, self.mode = monitor, mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.maximize = None  # decided at the first epoch's end, when the model's metrics are known

    def _set_direction(self) -> None:
        if self.mode != "auto":
            self.maximize = self.mode == "max"
            return
        name = re.sub(r"^output_\d+_", "", self.monitor.removeprefix("val_"))
        if name in MAXIMIZED or name in MINIMIZED:
            self.maximize = name in MAXIMIZED
            return
        raise ValueError(
            f"{type(self).__name__} callback received monitor={self.monitor}, but tinyrnn can't tell "
            "whether that quantity should be maximized or minimized. Pass mode='max' to monitor the highest "
            "value, or mode='min' to monitor the lowest."
        )

    def _is_improvement(self, current, reference) -> bool:
        if reference is None:
            return True
        if self.maximize:
            return current - self.min_delta > reference
        return current + self.min_delta < reference


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving (Keras 3's rules, exactly).

    At each epoch's end (from epoch ``start_from_epoch`` on, and only when
    ``monitor`` is in the logs): ``wait`` grows by one; an improvement on the best
    value so far (``min_delta`` as in ``MonitorCallback``; the first value always
    improves) makes it the best and, if it also improves on ``baseline`` (or there
    is none), sets ``wait`` back to 0. Otherwise, once ``wait >= patience`` (and
    past the first epoch), training stops after this epoch. So with ``patience=p``
    training stops p epochs after the best one (at the first epoch without
    improvement for p = 0).

    ``restore_best_weights=True``: at the end of training the weights of the best
    epoch are put back (those of the first monitored epoch when none improved on
    it, whatever the baseline), whether training stopped early or ran all epochs.

    Parameters
    ----------
    monitor : str, the key of the epoch's logs to watch (``"val_loss"``, ``"loss"``,
        ``"val_accuracy"``, ...).
    min_delta : float, the smallest change that counts as an improvement.
    patience : int, epochs without improvement before stopping.
    verbose : 0 or 1 (1: print when it stops and restores).
    mode : ``"auto"``, ``"min"`` or ``"max"``.
    baseline : float or None, a value the monitored quantity must beat for ``wait``
        to restart.
    restore_best_weights : bool.
    start_from_epoch : int, epochs of warm-up that are not monitored.

    Attributes
    ----------
    stopped_epoch : the epoch (from 0) after which training stopped, 0 if it did not.
    best, best_epoch, wait : the best value, its epoch, epochs since it.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)  # Keras: the baseline is not the first best
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = self.stopped_epoch = self.best_epoch = 0  # one instance can serve several fits
        self.best = self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        if self.maximize is None:
            self._set_direction()
        current = _monitored(self, logs, "Early stopping conditioned on")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch  # the first is the best yet
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(MonitorCallback):
    """Save the model at each epoch's end with ``model.save`` (atomic: a crash mid-save
    leaves the previous file whole), or only when ``monitor`` improved. A saved file
    loads with ``tinyrnn.load_model(path)``.

    Parameters
    ----------
    filepath : str or path ending in ``.npz`` (``.weights.npz`` with
        ``save_weights_only``); it may hold Keras's fields, filled from the epoch's
        logs: ``"ckpt-{epoch:02d}-{val_loss:.4f}.npz"`` (``epoch`` counted from 1).
    monitor : str, the key of the logs compared when ``save_best_only``.
    verbose : 0 or 1 (1: print each decision).
    save_best_only : bool, save only when ``monitor`` improved on the best saved value
        (the first epoch always saves; a missing ``monitor`` warns and saves).
    save_weights_only : bool, write ``model.get_weights()`` only (atomically, arrays
        ``weights/0``, ``weights/1``, ... in order; load them back with
        ``model.set_weights([f[k] for k in f.files])`` after ``f = numpy.load(path)``).
    mode : ``"auto"``, ``"min"`` or ``"max"`` (as ``EarlyStopping``).
    initial_value_threshold : float or None, a first ``best`` to beat.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose, self.save_best_only, self.save_weights_only = verbose, save_best_only, save_weights_only
        ending = ".weights.npz" if save_weights_only else ".npz"
        if not self.filepath.endswith(ending):
            what = "weights (save_weights_only=True)" if save_weights_only else "a model"
            raise ValueError(f"ModelCheckpoint saves {what} to a file ending in {ending!r}, "
                             f"got filepath={self.filepath!r}")

    def on_epoch_end(self, epoch, logs=None):
        if self.maximize is None and self.save_best_only:
            self._set_direction()
        logs = logs or {}
        path = self._file_path(epoch, logs)
        if self._should_save(epoch, logs, path):
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            if self.save_weights_only:
                _save_weights(self.model, path)
            else:
                self.model.save(path)

    def _file_path(self, epoch, logs) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e} is '
                           f"not in the epoch's logs (they hold {', '.join(logs)})") from None

    def _should_save(self, epoch, logs, path) -> bool:
        if not self.save_best_only:
            self._say(f"\nEpoch {epoch + 1}: saving model to {path}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            self._say(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
            return True
        self._say(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _say(self, text) -> None:
        if self.verbose > 0:
            print(text)


def _save_weights(model, path) -> None:
    from tinyrnn.saving import _write_atomically  # saving imports the models, which import this module

    _write_atomically(path, {f"weights/{i}": w for i, w in enumerate(model.get_weights())})


def _monitored(callback, logs, what):
    """``logs[monitor]``, or None with Keras's warning naming the keys there are."""
    logs = logs or {}
    value = logs.get(callback.monitor)
    if value is None:
        warnings.warn(f"{what} metric `{callback.monitor}` which is not available. Available metrics are: "
                      f"{','.join(logs)}", stacklevel=3)
    return value


# --- the learning rate, the states ------------------------------------------------------------------
class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at each epoch's start: ``lr = schedule(epoch, lr)``.

    ``schedule`` takes the epoch (from 0) and the current learning rate (a float)
    and returns the new one (a float); a ``schedule(epoch)`` of one argument works
    too (Keras's older form). The rate in force is added to each epoch's logs as
    ``learning_rate`` (so ``History`` records it).

    Examples
    --------
    >>> def schedule(epoch, lr):
    ...     return lr if epoch < 10 else lr * math.exp(-0.1)
    >>> model.fit(x, y, epochs=20, callbacks=[LearningRateScheduler(schedule)])
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # Keras's older API: schedule(epoch)
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, numpy.floating)) or not math.isfinite(learning_rate):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {learning_rate!r}")
        optimizer.learning_rate = float(learning_rate)  # the optimizer checks it is positive
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ResetStatesCallback(Callback):
    """Reset the states of a stateful model at each epoch's start: ``model.reset_states()``.

    A stateful recurrent layer carries its final states into the next batch; at an
    epoch's start the text begins again, so the carried states must not. (Keras
    has no such callback built in: the book writes this one.)
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()
