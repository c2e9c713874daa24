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

from tinyrnn import backend, losses, metrics, optimizers, seeding, validation
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
        with backend.engine_blas():  # small products on one BLAS thread (backend.set_threads)
            for layer in self.layers:
                x = layer.forward(x, training=training)
        return x

    def backward(self, dy):
        with backend.engine_blas():
            for layer in reversed(self.layers):
                dy = layer.backward(dy)
        return dy

    def __call__(self, x, training: bool = False):
        self._build_for(x)
        return self.forward(x, training=training)

    def _build_for(self, x) -> None:
        """Build on the declared input shape, else on x's (once; later calls do nothing)."""
        if not self.built:
            self.build(None if self.input_shape is not None else (None, *x.shape[1:]))

    def train_step(self, x, y) -> tuple:
        """One update on a batch: returns (loss, y_pred, global gradient norm).

        All or nothing: when the loss or the gradient is not finite, or the step
        is interrupted before its update, the layers' non-trainable state
        (BatchNormalization's moving statistics, updated by the forward pass) is
        put back and no update is applied; an update itself is never half applied.

        x and y are backend float arrays (``fit`` converts and checks its data
        once, then calls this for every batch); an unbuilt model is built here,
        and an empty batch is refused.
        """
        validation.check_samples(x, "x")
        self._build_for(x)
        with backend.engine_blas():  # the engine's BLAS threads for the whole step, yours afterwards
            return self._train_step(x, y)

    def _train_step(self, x, y) -> tuple:
        self.zero_grads()
        state_before = self._copy_state()
        try:
            y_pred = self.forward(x, training=True)
            loss = float(self.loss(y, y_pred))
            self.backward(self.loss.gradient(y, y_pred))
            grad_norm = self.global_grad_norm()
        except BaseException:  # Ctrl-C or an error mid-step: the step never happened
            self._restore_state(state_before)
            raise
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self._restore_state(state_before)
            return loss, y_pred, grad_norm  # the caller stops; no update is applied
        with _interrupts_deferred():  # an update is applied to all variables or to none
            self.optimizer.apply_gradients(self.trainable_variables())
        return loss, y_pred, grad_norm

    def _copy_state(self) -> list:
        return [(layer.state, {k: v.copy() for k, v in layer.state.items()}) for layer in self.layers]

    @staticmethod
    def _restore_state(copies) -> None:
        for state, saved in copies:
            for k, v in saved.items():
                state[k][...] = v

    def zero_grads(self) -> None:
        for layer in self.layers:
            layer.zero_grads()

    def trainable_variables(self) -> list:
        """[(key, param, grad)] for every trainable parameter, key = "layer/param"."""
        return [(f"{layer.name}/{k}", p, layer.grads[k])
                for layer in self.layers if layer.trainable for k, p in layer.params.items()]

    def global_grad_norm(self) -> float:
        """sqrt(sum of squares of every gradient entry), as a Python float.

        An array whose float32 sum of squares overflows (entries above ~1e19) is
        scaled by its largest entry first, so a finite gradient is never reported
        as non-finite (and no float64 copy of the gradients is made).
        """
        return math.hypot(*(_norm(g) for _, _, g in self.trainable_variables()))

    # --- Keras API ----------------------------------------------------------------
    def compile(self, loss="mse", optimizer="adam", metrics=None) -> None:
        self.loss = losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list, e.g. metrics=['mae'], got {type(metrics).__name__}")
        self.metrics = [globals()["metrics"].get(m) for m in metrics or []]

    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1) -> History:
        """Train for ``epochs`` passes over (x, y); returns a ``History``.

        x (B, ...) and y (B, ...) are float array-likes with the same number of
        rows, y shaped like the model's output; ``validation_data=(x_val, y_val)``
        is evaluated after every epoch. Bad data is refused before training starts.
        A non-finite loss or gradient stops training with ``TrainingError`` and
        keeps the weights of the last finite step. Ctrl-C stops at once: an update
        already begun is finished, a step not yet updating is undone (``train_step``),
        and ``model.history`` holds the finished epochs.
        """
        self._require_compiled("fit")
        epochs = validation.positive_int(epochs, "epochs")
        batch_size = validation.positive_int(batch_size, "batch_size")
        x, y = self._prepare(x, y)
        val = None
        if validation_data is not None:
            val = self._prepare(*_pair(validation_data), names=("x_val", "y_val"))
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
        batch_size = validation.positive_int(batch_size, "batch_size")
        logs = self._evaluate_arrays(*self._prepare(x, y), batch_size)
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
        batch_size = validation.positive_int(batch_size, "batch_size")
        x = self._prepare(x)[0]
        outputs = [backend.to_numpy(self.forward(x[s:s + batch_size], training=training))
                   for s in range(0, x.shape[0], batch_size)]
        return numpy.concatenate(outputs, axis=0)

    def _metric_values(self, y, y_pred) -> dict:
        return {name: metrics.reduce(fn(y, y_pred)) for name, fn in self.metrics}

    def _prepare(self, x, y=None, names=("x", "y")):
        """Inputs (and targets) as backend float arrays, checked against the model.

        Builds the model (on its declared input shape, or the first data it sees);
        x must have the rank and feature size D the model was built for, and y the shape of the
        model's output for x (a (B,) target for a (B, 1) output is accepted, as in Keras).
        """
        x_name, y_name = names
        x = backend.asarray(validation.float_array(x, x_name))
        validation.check_samples(x, x_name)
        self._build_for(x)
        self._check_input_shape(x.shape, x_name)
        if y is None:
            return (x,)
        y = backend.asarray(validation.float_array(y, y_name))
        validation.same_samples(x, y, x_name, y_name)
        self._check_target_shape(x, y.shape, y_name)
        return x, y

    def _check_input_shape(self, shape, what) -> None:
        """x has the rank and feature size D the model was built for (time steps T may vary)."""
        expected = self.input_shape if self.input_shape is not None else self.layers[0].input_shape
        letters = validation.axis_letters(len(expected))
        if len(shape) != len(expected):
            hint = (" Add the feature axis with x[..., None]."
                    if len(shape) + 1 == len(expected) and expected[-1] in (1, None) else "")
            raise ValueError(
                f"{what} has shape {validation.shape_str(shape)}, but the model was built for inputs "
                f"{letters} = {_shape_str(expected)}.{hint}"
            )
        if expected[-1] is not None and shape[-1] != expected[-1]:
            raise ValueError(
                f"{what} has D={shape[-1]} features (shape {validation.shape_str(shape)}), but the model was "
                f"built for D={expected[-1]}: inputs {letters} = {_shape_str(expected)}"
            )

    def _check_target_shape(self, x, y_shape, what) -> None:
        """y matches the model's output for x (Keras's (B,) target for a (B, 1) output allowed).

        The output shape comes from a forward pass of the first sample in inference
        mode (no dropout, no random draws), so any layer's real output is what counts.
        """
        y_pred = self.forward(x[:1], training=False)
        if isinstance(y_pred, (list, tuple)):  # the last layer returns states too: the loss sees a list
            return
        out = (x.shape[0], *y_pred.shape[1:])
        squeezed = out[-1] == 1 and tuple(y_shape) == tuple(out[:-1])
        if tuple(y_shape) == tuple(out) or squeezed:
            return
        if len(y_shape) > len(out):
            hint = ("the model returns one output per sequence: for a target at every time step use "
                    "return_sequences=True in the last recurrent layer")
        elif len(y_shape) < len(out):
            hint = ("the model returns a sequence: for one target per sequence, drop return_sequences=True "
                    "in the last recurrent layer")
        elif y_shape[-1] != out[-1]:
            hint = f"the last layer has {out[-1]} units but each target has {y_shape[-1]} values"
        else:
            hint = "check the targets' time axis"
        raise ValueError(
            f"targets {what} have shape {validation.shape_str(y_shape)} but the model's output for these "
            f"inputs has shape {validation.shape_str(out)}: {hint}"
        )

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"call model.compile(loss=..., optimizer=...) before model.{what}()")

    # --- weights and description ----------------------------------------------------
    def get_weights(self) -> list:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Load every layer's weights, given in ``get_weights()`` order (Keras's)."""
        if not self.built:
            self.build()  # an unknown input shape is a clear error here
        weights = list(weights)
        counts = [len(layer.get_weights()) for layer in self.layers]
        if len(weights) != sum(counts):
            per_layer = ", ".join(f"{layer.name}: {n}" for layer, n in zip(self.layers, counts))
            raise ValueError(f"set_weights() expected {sum(counts)} arrays for this model "
                             f"({per_layer}), got {len(weights)}")
        for layer in self.layers:
            k = len(layer.get_weights())
            layer.set_weights(weights[:k])
            weights = weights[k:]

    def save(self, path) -> None:
        """Save architecture, weights, compile config and optimizer state to one ``.npz``
        (atomically; see ``tinyrnn.saving``). Read it back with ``tinyrnn.load_model(path)``."""
        from tinyrnn.saving import save_model  # saving imports this module

        save_model(self, path)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Print layers, output shapes and parameter counts as Keras does."""
        if not self.built:
            self.build()
        labels = [f" {layer.name} ({type(layer).__name__})" for layer in self.layers]
        shapes = [_shape_str(shape) for shape in self._output_shapes()]
        w1 = max(29, *(len(s) + 2 for s in labels))   # Keras's widths, widened for long names
        w2 = max(26, *(len(s) + 2 for s in shapes))
        line, rule = "_" * (w1 + w2 + 10), "=" * (w1 + w2 + 10)
        rows = [f'Model: "{self.name}"', line, f"{' Layer (type)':<{w1}}{'Output Shape':<{w2}}Param #", rule]
        for i, (layer, label, shape) in enumerate(zip(self.layers, labels, shapes)):
            rows.append(f"{label:<{w1}}{shape:<{w2}}{layer.count_params():,}")
            rows.append(rule if i == len(self.layers) - 1 else "")
        trainable = sum(int(numpy.prod(p.shape)) for _, p, _ in self.trainable_variables())
        total = self.count_params()
        rows += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", line]
        print_fn("\n".join(rows))


def _norm(g) -> float:
    """||g||_2: sqrt(g . g), or s * ||g / s||_2 with s = max |g_i| where g . g overflows."""
    squares = float(backend.xp.vdot(g, g)) if g.size else 0.0
    if math.isfinite(squares):
        return math.sqrt(squares)
    scale = float(backend.xp.abs(g).max())
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    scaled = g / scale
    return scale * math.sqrt(float((scaled * scaled).sum()))


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
