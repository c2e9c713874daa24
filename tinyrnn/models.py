"""``Sequential``: a stack of layers with Keras's compile / fit / evaluate / predict.

Training one batch is the whole algorithm, spelled out in ``train_step``:
forward through every layer, the loss and its gradient, backward through every
layer in reverse (each accumulating into its ``grads``), one optimizer update.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading

import numpy

from tinyrnn import backend, losses, metrics, optimizers, seeding
from tinyrnn.layers import InputLayer, Layer


class History:
    """What ``fit`` returns: ``history`` maps Keras's key names (``loss``,
    ``val_loss``, ``<metric>``, ``val_<metric>``, ``grad_norm``) to one value per epoch."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class TrainingError(FloatingPointError):
    """Training produced a non-finite loss or gradient (the weights were kept)."""


class Sequential:
    """A linear stack of layers, used as in Keras.

    >>> model = Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    ...                     SimpleRNN(20), Dense(1)])
    >>> model.compile(loss="mse", optimizer="adam")
    >>> history = model.fit(X_train, y_train, epochs=20, validation_data=(X_valid, y_valid))
    """

    def __init__(self, layers=None, name="sequential"):
        self.name = name
        self.layers: list[Layer] = []
        self.input_shape = None
        self.loss = self.optimizer = None
        self.metrics: list = []
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # --- structure ------------------------------------------------------------
    def add(self, layer) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer) or (not self.layers and layer.input_shape is not None):
            if self.layers and isinstance(layer, InputLayer):
                raise ValueError("InputLayer must come first in a Sequential model")
            self.input_shape = layer.input_shape
        if not isinstance(layer, InputLayer):
            self.layers.append(layer)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape=None) -> None:
        """Build every layer, threading the output shape of each into the next."""
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError(
                "the model does not know its input shape yet: give the first layer input_shape=[...], "
                "start with InputLayer(input_shape=[...]), or call fit/predict on data first"
            )
        self.input_shape = (None, *shape[1:])
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def _output_shapes(self) -> list:
        shapes, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    # --- the algorithm, one batch -------------------------------------------------
    def forward(self, x, training: bool = False):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __call__(self, x, training: bool = False):
        if not self.built:
            self.build(tuple(x.shape))
        return self.forward(x, training=training)

    def train_step(self, x, y) -> tuple:
        """One update on a batch: returns (loss, y_pred, global gradient norm)."""
        self.zero_grads()
        y_pred = self.forward(x, training=True)
        loss = self.loss(y, y_pred)
        self.backward(self.loss.gradient(y, y_pred))
        grad_norm = self.global_grad_norm()
        if not (math.isfinite(float(loss)) and math.isfinite(grad_norm)):
            return float(loss), y_pred, grad_norm  # the caller stops; no update is applied
        with _interrupts_deferred():  # an update is applied to all variables or to none
            self.optimizer.apply_gradients(self.trainable_variables())
        return float(loss), y_pred, grad_norm

    def zero_grads(self) -> None:
        for layer in self.layers:
            layer.zero_grads()

    def trainable_variables(self) -> list:
        """[(key, param, grad)] for every trainable parameter, key = "layer/param"."""
        return [(f"{layer.name}/{k}", p, layer.grads[k])
                for layer in self.layers if layer.trainable for k, p in layer.params.items()]

    def global_grad_norm(self) -> float:
        """sqrt(sum of squares of every gradient entry), as a Python float."""
        total = sum((g * g).sum() for _, _, g in self.trainable_variables())
        return math.sqrt(float(total))

    # --- Keras API ----------------------------------------------------------------
    def compile(self, loss="mse", optimizer="adam", metrics=None) -> None:
        self.loss = losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list, e.g. metrics=['mae'], got {type(metrics).__name__}")
        self.metrics = [globals()["metrics"].get(m) for m in metrics or []]

    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1) -> History:
        """Train for ``epochs`` passes over (x, y); returns a ``History``.

        x (B, ...) and y (B, ...) are array-likes with the same number of rows;
        ``validation_data=(x_val, y_val)`` is evaluated after every epoch.
        A non-finite loss or gradient stops training with ``TrainingError`` and
        keeps the weights of the last finite step. Ctrl-C stops after the
        current batch's update, leaving ``model.history`` with the finished epochs.
        """
        self._require_compiled("fit")
        epochs, batch_size = _positive_int(epochs, "epochs"), _positive_int(batch_size, "batch_size")
        x, y = self._prepare(x, y)
        val = None if validation_data is None else self._prepare(*_pair(validation_data))
        self.history = history = History()
        n = x.shape[0]
        try:
            for epoch in range(epochs):
                order = seeding.get_rng().permutation(n) if shuffle else numpy.arange(n)
                logs = self._run_epoch(x, y, order, batch_size, epoch, epochs, verbose)
                if val is not None:
                    val_logs = self._evaluate_arrays(*val, batch_size)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                history.append(epoch, logs)
                if verbose:
                    print(_format_logs(f"Epoch {epoch + 1}/{epochs}", logs))
        except KeyboardInterrupt:
            print(f"\ntraining interrupted after {len(history.epoch)} complete epoch(s); "
                  "model.history holds them and the weights are those of the last update")
            raise
        return history

    def _run_epoch(self, x, y, order, batch_size, epoch, epochs, verbose) -> dict:
        totals = _Totals()
        batches = range(0, len(order), batch_size)
        bar = _progress(batches, f"Epoch {epoch + 1}/{epochs}", verbose)
        for batch, start in enumerate(bar):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            loss, y_pred, grad_norm = self.train_step(xb, yb)
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                raise TrainingError(
                    f"non-finite {'loss' if not math.isfinite(loss) else 'gradient'} at epoch {epoch + 1}, "
                    f"batch {batch + 1} (loss {loss}, gradient norm {grad_norm}); the weights of the last "
                    "finite step were kept. Try gradient clipping (e.g. Adam(clipnorm=1.0)) or a lower "
                    "learning rate."
                )
            totals.add(len(idx), {"loss": loss, **self._metric_values(yb, y_pred)})
            totals.add_unweighted("grad_norm", grad_norm)
            if verbose == 1:
                bar.set_postfix(totals.means(), refresh=False)
        return totals.means()

    def evaluate(self, x, y, batch_size=32, verbose=0):
        """Loss (and metrics) on (x, y): a float, or [loss, *metrics] when compiled with metrics."""
        self._require_compiled("evaluate")
        logs = self._evaluate_arrays(*self._prepare(x, y), _positive_int(batch_size, "batch_size"))
        if verbose:
            print(_format_logs("evaluate", logs))
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_arrays(self, x, y, batch_size) -> dict:
        totals = _Totals()
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            y_pred = self.forward(xb, training=False)
            totals.add(xb.shape[0], {"loss": float(self.loss(yb, y_pred)), **self._metric_values(yb, y_pred)})
        return totals.means()

    def predict(self, x, batch_size=32, training=False, verbose=0):
        """Outputs for x as a NumPy array. ``training=True`` keeps dropout on (MC Dropout)."""
        x = self._prepare(x)[0]
        batch_size = _positive_int(batch_size, "batch_size")
        outputs = [backend.to_numpy(self.forward(x[s:s + batch_size], training=training))
                   for s in range(0, x.shape[0], batch_size)]
        return numpy.concatenate(outputs, axis=0)

    def _metric_values(self, y, y_pred) -> dict:
        return {name: metrics.reduce(fn(y, y_pred)) for name, fn in self.metrics}

    def _prepare(self, x, y=None):
        """Inputs as backend float arrays; build the model on the first data it sees."""
        x = backend.asarray(_numeric(x, "x"))
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample (B >= 1), got shape {tuple(x.shape)}")
        if not self.built:
            self.build((None, *x.shape[1:]))
        if y is None:
            return (x,)
        y = backend.asarray(_numeric(y, "y"))
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"x and y must have the same number of samples (B): x has {x.shape[0]}, y has {y.shape[0]}"
            )
        return x, y

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"call model.compile(loss=..., optimizer=...) before model.{what}()")

    # --- weights and description ----------------------------------------------------
    def get_weights(self) -> list:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights() expected {expected} arrays for this model, got {len(weights)}")
        for layer in self.layers:
            k = len(layer.get_weights())
            layer.set_weights(weights[:k])
            weights = weights[k:]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Print layers, output shapes and parameter counts as Keras does."""
        if not self.built:
            self.build()
        line, rule = "_" * 65, "=" * 65
        rows = [f'Model: "{self.name}"', line, f"{' Layer (type)':<29}{'Output Shape':<26}Param #", rule]
        for i, (layer, shape) in enumerate(zip(self.layers, self._output_shapes())):
            label = f" {layer.name} ({type(layer).__name__})"
            rows.append(f"{label:<29}{_shape_str(shape):<26}{layer.count_params():,}")
            rows.append(rule if i == len(self.layers) - 1 else "")
        trainable = sum(int(numpy.prod(p.shape)) for _, p, _ in self.trainable_variables())
        total = self.count_params()
        rows += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", line]
        print_fn("\n".join(rows))


class _Totals:
    """Running means over batches: weighted by batch size, or plain."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, weight, values: dict):
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + weight * v
            self.counts[k] = self.counts.get(k, 0) + weight

    def add_unweighted(self, key, value):
        self.add(1, {key: value})

    def means(self) -> dict:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}


def _progress(batches, description, verbose):
    if verbose != 1:
        return batches
    from tqdm.auto import tqdm  # imported when a bar is shown

    return tqdm(batches, desc=description, unit="batch", leave=False)


def _format_logs(prefix, logs) -> str:
    return prefix + " - " + " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())


def _shape_str(shape) -> str:
    if isinstance(shape, list):
        return ", ".join(_shape_str(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _pair(validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (x_val, y_val)")
    return validation_data


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _numeric(a, what):
    """Check that ``a`` holds finite real floats; return it as an array."""
    arr = a if backend.is_array(a) else numpy.asarray(a)
    kind = arr.dtype.kind
    if kind not in "fiu" or kind == "b":
        raise TypeError(f"{what} must hold real floating-point numbers, got dtype {arr.dtype}")
    if kind in "iu":
        raise TypeError(f"{what} has integer dtype {arr.dtype}: convert it with {what}.astype('float32')")
    if not bool(backend.xp.isfinite(backend.xp.asarray(arr)).all()):
        raise ValueError(f"{what} contains NaN or Inf values: clean or impute them before training")
    return arr


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C until the block ends, so an optimizer update is never half applied."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt
