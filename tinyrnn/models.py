"""Models: ``Model`` (functional or subclassed) and ``Sequential``, with Keras's
compile / fit / evaluate / predict.

Training one batch is the whole algorithm, spelled out in ``train_step``:
forward through every layer, the loss and its gradient, backward through every
layer in reverse (each accumulating into its ``grads``), one optimizer update.
One training loop serves every model: ``Sequential`` is a chain whose forward
and backward call each layer's own in turn (nothing recorded, the fast path);
a functional ``Model(inputs, outputs)`` replays the graph of calls recorded
from ``tinyrnn.Input`` and a subclassed ``Model`` runs its ``call()``, both
recording the calls so that backward walks them (``tinyrnn.graph``).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import warnings

import numpy

from tinyrnn import backend, graph, losses, metrics, optimizers, validation
from tinyrnn.batches import RAN_OUT, ArrayBatches, EpochIterator, is_batch_source, unpack
from tinyrnn.callbacks import CallbackList, History
from tinyrnn.graph import Value
from tinyrnn.layers import InputLayer, Layer
from tinyrnn.layers.base import parameter_owners


class TrainingError(FloatingPointError):
    """Training produced a non-finite loss or gradient (the weights were kept)."""


class Model(Layer):
    """A model: layers composed into one function, trained with compile / fit.

    Functional, as in Keras::

        inputs = tinyrnn.Input(shape=[None, 1])
        z = Conv1D(20, 2, padding="causal")(inputs)
        outputs = Dense(1)(Add()([z, inputs]))
        model = tinyrnn.Model(inputs=inputs, outputs=outputs)

    Calling layers and operations on ``Input``s records a graph of calls; the
    model's forward pass replays it on the data (recording each call with its
    own cache) and backward walks the record in reverse (``tinyrnn.graph``).
    Several inputs and outputs are lists; a layer used twice shares its weights
    and gets the sum of both gradients.

    Subclassed: define ``__init__`` (assign layers as attributes) and
    ``call(inputs)``; it runs and trains the same way.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.loss = self.optimizer = None
        self.metrics: list = []
        self.history = None
        self.inputs = self.outputs = None
        self._nodes = self._layers = None
        self.output_mask = None    # the mask of the last forward's output (B, T), a list for several
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    # --- the functional graph ---------------------------------------------------------
    def _init_graph(self, inputs, outputs) -> None:
        if inputs is None or outputs is None:
            raise ValueError("Model(inputs=..., outputs=...) needs both, e.g. Model(inputs=[x], outputs=[y])")
        inputs, outputs = _unpack_singleton(inputs), _unpack_singleton(outputs)  # [x] is x, as in Keras
        self._input_structure, self._output_structure = inputs, outputs
        self.inputs, self.outputs = graph.flatten(inputs), graph.flatten(outputs)
        for v in self.inputs:
            if not (isinstance(v, Value) and v.symbolic and v.node is None):
                raise TypeError(f"{self.name}: Model inputs must be tinyrnn.Input(shape=...) values, "
                                f"got {v!r}")
        for v in self.outputs:
            if not (isinstance(v, Value) and v.symbolic):
                raise TypeError(f"{self.name}: Model outputs must be results of layers called on Inputs, "
                                f"got {type(v).__name__}")
        self._nodes = graph.topological_order(self.outputs)
        self._check_graph()
        self._layers = list({id(layer): layer for layer in (getattr(n.op, "layer", None) for n in self._nodes)
                             if layer is not None}.values())
        self.input_shape = [v.shape for v in self.inputs] if len(self.inputs) > 1 else self.inputs[0].shape
        self.built = True

    def _check_graph(self) -> None:
        known = {id(v) for v in self.inputs}
        for node in self._nodes:
            for a in node.inputs:
                if isinstance(a, Value) and a.node is None and id(a) not in known \
                        and not isinstance(a, graph.Variable):
                    raise ValueError(f"{self.name}: the outputs depend on an Input that is not in inputs= "
                                     f"({a!r}); list every Input the outputs are computed from")
        if not graph.depends_on(self.outputs, self.inputs):
            raise ValueError(f"{self.name}: every output must be computed from the model's inputs "
                             "(an output that depends on no Input cannot be trained from data)")

    def call(self, inputs, training=None, mask=None):
        """The functional model's forward pass: every recorded call, replayed on ``inputs``.

        ``outputs=[y]`` gives y itself, not a list of one (as Keras 3 does), so
        ``predict`` returns an array; several outputs give a list. ``mask`` (one per
        input, or one for one input), as Keras's: the inputs carry it into the graph,
        so a model used as a layer after ``Masking`` masks its own layers."""
        if self._nodes is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a subclassed Model defines call(inputs); or build a functional "
                "model with Model(inputs=..., outputs=...)"
            )
        if mask is not None:
            flat_inputs = graph.flatten(inputs)
            masks = list(mask) if isinstance(mask, (list, tuple)) else [mask]
            for value, m in zip(flat_inputs, masks):
                if m is not None:
                    value.mask = m
        values = {id(s): v for s, v in zip(self.inputs, graph.flatten(inputs))}

        def value_of(a):
            if not isinstance(a, Value) or isinstance(a, graph.Variable):
                return a
            return values[id(a)] if a.node is None else values[(id(a.node), a.index)]

        for node in self._nodes:
            args = [value_of(a) for a in node.inputs]
            op = node.op
            outs = op.replay(*args) if hasattr(op, "replay") else graph.apply(op, *args)
            for i, out in enumerate(outs if node.n_outputs > 1 else [outs]):
                values[(id(node), i)] = out
        outputs = graph.pack_like(self._output_structure, [value_of(v) for v in self.outputs])
        return _unpack_singleton(outputs)

    @property
    def layers(self) -> list:
        """The model's layers: the graph's (functional), or those assigned as attributes (subclassed)."""
        return list(self._sublayers) if self._layers is None else self._layers

    def sublayers(self) -> list:
        return self.layers

    def forward(self, x, training: bool = False, mask=None):
        """The recorded forward pass (``call`` on Values); ``output_mask`` keeps the masks the
        outputs carry (computed from this batch), which the loss and the metrics then use.
        ``mask``: the inputs' (a model used as a layer after a masked one), as Keras's."""
        y = super().forward(x, training=training, mask=mask)
        outputs = self._cache[1]                         # Layer.forward keeps (inputs, outputs)
        masks = graph.map_structure(lambda v: v.mask, outputs)
        self.output_mask = None if all(m is None for m in graph.flatten(masks)) else masks
        return y

    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs of the last forward pass (``output_mask``), so a model used as a
        layer passes on the mask its own layers made from the mask given to it, as Keras 3."""
        return self.output_mask

    def _build_for(self, x) -> None:
        """A subclassed model is built by its first forward pass (its layers build on their inputs)."""
        self.built = True

    # --- the algorithm, one batch -------------------------------------------------
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
        validation.check_samples(_first(x), "x")
        self._build_for(x)
        with backend.engine_blas():  # the engine's BLAS threads for the whole step, yours afterwards
            return self._train_step(x, y)

    def _train_step(self, x, y) -> tuple:
        self.zero_grads()
        state_before = self._copy_state()
        try:
            y_pred = self.forward(x, training=True)
            loss, dy = self._loss_and_gradient(y, y_pred)
            self.backward(dy)
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

    def _loss_and_gradient(self, y, y_pred) -> tuple:
        """The loss (a float) and dL/dy_pred: one loss per output, summed over the outputs.

        An output that carries a mask (``output_mask``, from the last forward) has its
        masked time steps left out of its loss and their gradient zero, as in Keras."""
        if not isinstance(y_pred, (list, tuple)):
            return _loss_value_and_gradient(self.loss, y, y_pred, self.output_mask)
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        if len(ys) != len(y_pred):
            raise ValueError(f"{self.name}: the model has {len(y_pred)} outputs but {len(ys)} target "
                             "array(s) were given: pass one target per output, as a list")
        fns = self.loss if isinstance(self.loss, list) else [self.loss] * len(y_pred)
        masks = self.output_mask if isinstance(self.output_mask, (list, tuple)) else [None] * len(y_pred)
        pairs = [_loss_value_and_gradient(fn, t, p, m) for fn, t, p, m in zip(fns, ys, y_pred, masks)]
        return sum(value for value, _ in pairs), [grad for _, grad in pairs]

    def _copy_state(self) -> list:
        return [(owner.state, {k: v.copy() for k, v in owner.state.items()})
                for owner in parameter_owners(self.layers) if getattr(owner, "state", None)]

    @staticmethod
    def _restore_state(copies) -> None:
        for state, saved in copies:
            for k, v in saved.items():
                state[k][...] = v

    def zero_grads(self) -> None:
        """Set every layer's gradients to zero (``backward`` adds to them)."""
        for owner in parameter_owners(self.layers):
            for g in owner.grads.values():
                g[...] = 0

    def reset_states(self) -> None:
        """Zero the carried states of every stateful layer (Keras's ``model.reset_states()``)."""
        def reset(layers):
            for layer in layers:
                if hasattr(layer, "reset_states"):
                    layer.reset_states()
                elif hasattr(layer, "sublayers"):        # a layer holding recurrent layers
                    reset(layer.sublayers())
        reset(self.layers)

    reset_state = reset_states                           # Keras 3's spelling

    def trainable_variables(self) -> list:
        """[(key, param, grad)] for every trainable parameter, key = "layer/param"."""
        return [(f"{owner.name}/{k}", p, owner.grads[k]) for owner in parameter_owners(self.layers)
                if getattr(owner, "trainable", True) for k, p in owner.params.items()]

    def global_grad_norm(self) -> float:
        """sqrt(sum of squares of every gradient entry), as a Python float.

        An array whose float32 sum of squares overflows (entries above ~1e19) is
        scaled by its largest entry first, so a finite gradient is never reported
        as non-finite (and no float64 copy of the gradients is made).
        """
        return math.hypot(*[_norm(g) for _, _, g in self.trainable_variables()])

    # --- Keras API ----------------------------------------------------------------
    def compile(self, loss="mse", optimizer="adam", metrics=None) -> None:
        """Choose the loss, the optimizer and the metrics ``fit`` and ``evaluate`` report.

        Names are case-insensitive, as in Keras.

        Parameters
        ----------
        loss : str or Loss or function, or a list of them (one per output)
            ``"mse"`` or ``"mean_squared_error"`` (``MeanSquaredError``),
            ``"mae"`` or ``"mean_absolute_error"`` (``MeanAbsoluteError``),
            ``"huber"`` or ``"huber_loss"`` (``Huber``, delta 1),
            ``"sparse_categorical_crossentropy"`` (integer class ids),
            ``"categorical_crossentropy"`` (one-hot targets) and
            ``"binary_crossentropy"`` (on probabilities; for logits pass e.g.
            ``SparseCategoricalCrossentropy(from_logits=True)``), Keras's
            functions ``losses.mean_squared_error`` / ``mean_absolute_error``, or
            a ``Loss`` instance such as ``Huber(delta=2.0)``. A model with several
            outputs takes one loss for all of them or a list; their sum is trained.
        optimizer : str or Optimizer or dict
            ``"adam"`` (``Adam()``: learning rate 0.001), ``"sgd"`` (``SGD()``:
            learning rate 0.01, no momentum), ``"adamw"``, ``"nadam"``, ``"rmsprop"``
            or ``"adagrad"`` (Keras's defaults), an ``Optimizer`` instance such as
            ``SGD(learning_rate=0.005, momentum=0.9, clipnorm=1.0)``, or a saved
            ``{"class_name": ..., "config": {...}}``.
        metrics : list, optional
            Each entry ``"mse"`` or ``"mean_squared_error"`` (reported as
            ``mse``), ``"mae"`` or ``"mean_absolute_error"`` (reported as
            ``mae``), ``"last_time_step_mse"`` (the course's MSE of the last
            time step only), ``"accuracy"`` or ``"acc"`` (Keras's accuracy, chosen
            from the target's shape: see ``metrics.accuracy``),
            ``"sparse_categorical_accuracy"``, ``"categorical_accuracy"``,
            ``"binary_accuracy"`` (threshold 0.5), or a function ``fn(y_true, y_pred)`` returning one
            value per sample (reported under its ``__name__``).

        Raises
        ------
        ValueError
            For a name not in these lists (the message lists the accepted ones).
        TypeError
            For ``metrics`` that is not a list, or an entry of the wrong kind.

        Examples
        --------
        >>> model.compile(loss="mse", optimizer="adam", metrics=["mae"])
        >>> model.compile(loss=Huber(delta=2.0), optimizer=SGD(learning_rate=0.005, momentum=0.9))
        """
        self.loss = [losses.get(fn) for fn in loss] if isinstance(loss, (list, tuple)) else losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list, e.g. metrics=['mae'], got {type(metrics).__name__}")
        self.metrics = [globals()["metrics"].get(m) for m in metrics or []]

    def fit(self, x, y=None, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1,
            callbacks=None, steps_per_epoch=None, validation_steps=None, initial_epoch=0) -> History:
        """Train for ``epochs`` passes over the data; returns a ``History``.

        Bad data is refused with a clear error: arrays before training starts, a
        batch when it arrives. A generator that runs out before ``epochs`` stops
        training with Keras's warning. A non-finite loss or gradient stops training
        with ``TrainingError`` and keeps the weights of the last finite step. Ctrl-C
        stops at once: an update already begun is finished, a step not yet updating
        is undone (``train_step``), and ``model.history`` holds the finished epochs.

        Parameters
        ----------
        x, y : arrays (B, ...), float array-likes with the same number of rows, y
            shaped like the model's output (a list with one per input / output of a
            functional model), cut into batches of ``batch_size`` rows, shuffled each
            epoch when ``shuffle``. Or, with ``y=None``, ``x`` is an iterable of
            ``(x_batch, y_batch)`` tuples: a generator (one pass), a list of batches
            or any object with ``__iter__`` (a new pass each epoch); each batch is
            checked and converted as arrays are, when it arrives (``tinyrnn.batches``).
        epochs : int, train until epoch ``epochs`` (from ``initial_epoch``).
        validation_data : ``(x_val, y_val)`` arrays or an iterable of batches,
            evaluated after every epoch (``val_`` keys in the logs).
        callbacks : list of ``tinyrnn.callbacks.Callback``, called as Keras does
            (``tinyrnn.callbacks``); a ``History`` is added last.
        steps_per_epoch : int, batches per epoch (a generator continues where the
            last epoch stopped); None: one pass over the data.
        validation_steps : int, batches per validation (None: one pass).
        initial_epoch : int, the epoch to start from (to resume a run; logs and
            callbacks count epochs from it).
        verbose : 0 silent, 1 progress bar and one line per epoch, 2 the line only.
        """
        self._require_compiled("fit")
        epochs = validation.positive_int(epochs, "epochs")
        initial_epoch = _count(initial_epoch, "initial_epoch")
        train = self._epoch_iterator(x, y, batch_size, steps_per_epoch, shuffle, "x", ("x", "y"),
                                     "steps_per_epoch")
        val = None
        if validation_data is not None:
            val_x, val_y = _validation_pair(validation_data)
            val = self._epoch_iterator(val_x, val_y, batch_size, validation_steps, False, "validation_data",
                                       ("x_val", "y_val"), "validation_steps")
        callbacks = CallbackList(callbacks, model=self, add_history=True, verbose=verbose, epochs=epochs,
                                 steps=train.num_batches)
        history = callbacks.history
        self.stop_training = False
        callbacks.on_train_begin()
        logs = None
        try:
            for epoch in range(initial_epoch, epochs):
                batches = train.epoch()
                if batches is None:  # a generator ran out: Keras warns and stops
                    warnings.warn(RAN_OUT, stacklevel=2)
                    break
                callbacks.on_epoch_begin(epoch)
                logs = self._run_epoch(batches, train, epoch, epochs, verbose, callbacks)
                if val is not None:
                    val_logs = self._evaluate_batches(val, callbacks, "validation_data")
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                callbacks.on_epoch_end(epoch, logs)
                if verbose:
                    print(_format_logs(f"Epoch {epoch + 1}/{epochs}", logs))
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            print(f"\ntraining interrupted after {len(history.epoch)} complete epoch(s); "
                  "model.history holds them and the weights are those of the last update")
            raise
        callbacks.on_train_end(logs)
        return history

    def _epoch_iterator(self, x, y, batch_size, steps, shuffle, what, names, steps_name="steps"):
        """``x``/``y`` as an ``EpochIterator`` of converted batches: arrays are checked and converted
        once here; an iterable's batches are checked and converted one by one as they arrive."""
        batch_size = validation.positive_int(batch_size, "batch_size")
        steps = None if steps is None else validation.positive_int(steps, steps_name)
        if is_batch_source(x, y, targets=names[1] is not None):
            if y is not None:
                raise ValueError(f"{what} is an iterable of batches, which holds the targets too: "
                                 "give y=None (each batch is an (x, y) tuple)")
            return EpochIterator(x, steps, what, prepare=self._batch_preparer(what, names))
        if y is None and names[1] is not None:
            raise ValueError(f"{self.name}: targets are missing: give both arrays (x, y), or make x an "
                             "iterable (a generator) of (x_batch, y_batch) tuples")
        arrays = self._prepare(x, y, names=names) if names[1] is not None else self._prepare(x, names=names)
        self._check_stateful_batches(_first(arrays[0]).shape[0], batch_size, what)
        source = ArrayBatches(arrays[0], arrays[1] if len(arrays) > 1 else None, batch_size,
                                             shuffle)
        return EpochIterator(source, steps, what)

    def _check_stateful_batches(self, n, batch_size, what) -> None:
        """A stateful layer takes batches of one size (row b continues row b): refuse arrays that
        would end in a shorter batch, or a batch_size other than the layer's, before any step runs."""
        first = min(batch_size, n)                       # the size of the first batch
        for layer in _walk_layers(self.layers):
            if not getattr(layer, "stateful", False):
                continue
            size = layer.batch_size or first
            if first != size or n % size:
                raise ValueError(
                    f"{layer.name} is stateful with batches of {size} sequences (row b of a batch continues "
                    f"row b of the one before), but {what} has {n} sequences in batches of {batch_size}: "
                    f"give batch_size={size} and a number of sequences divisible by {size} (cut the data "
                    "into that many contiguous streams, e.g. tinyrnn.text.StatefulBatches)")

    def _batch_preparer(self, what, names):
        """A function (batch, step) -> converted batch: ``_prepare`` with the batch named in errors.
        The shape checks (which run the model on one sample) are repeated only when the batch's
        shapes differ from the last batch's; conversion and value checks run on every batch."""
        targets = names[1] is not None
        last_checked = [None]

        def prepare(batch, step):
            data = unpack(batch, step, what, targets)
            batch_names = tuple(None if n is None else f"{n} of batch {step}" for n in names)
            x, y = data if targets else (data, None)
            key = (_shapes(x), _shapes(y))
            same = key == last_checked[0] and None not in key
            prepared = self._convert(x, y, batch_names) if same else self._prepare(x, y, names=batch_names)
            last_checked[0] = key
            return prepared if targets else prepared[0]

        return prepare

    def _run_epoch(self, batches, train, epoch, epochs, verbose, callbacks) -> dict:
        """Train on one epoch's batches; returns its logs (running means over the epoch)."""
        totals = _Totals()
        bar = _progress(batches, f"Epoch {epoch + 1}/{epochs}", verbose, train.num_batches)
        for step, batch in bar:
            callbacks.on_train_batch_begin(step)
            xb, yb = train.prepare(batch, step)
            loss, y_pred, grad_norm = self.train_step(xb, yb)
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                raise TrainingError(
                    f"non-finite {'loss' if not math.isfinite(loss) else 'gradient'} at epoch {epoch + 1}, "
                    f"batch {step + 1} (loss {loss}, gradient norm {grad_norm}); the weights of the last "
                    "finite step were kept. Try gradient clipping (e.g. Adam(clipnorm=1.0)) or a lower "
                    "learning rate."
                )
            totals.add(_first(xb).shape[0], {"loss": loss, **self._metric_values(yb, y_pred)})
            totals.add_unweighted("grad_norm", grad_norm)
            del y_pred  # nothing of a batch outlives its step
            logs = totals.means()
            if verbose == 1:
                bar.set_postfix(logs, refresh=False)
            callbacks.on_train_batch_end(step, logs)
            if self.stop_training:
                break
        if verbose == 1:
            bar.close()
        return totals.means()

    def evaluate(self, x, y=None, batch_size=32, verbose=0, steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) on the data: a float, or [loss, *metrics] when compiled with metrics
        (a dict of them with ``return_dict=True``).

        ``x, y`` arrays, or ``x`` an iterable of ``(x, y)`` batches (``y=None``), as ``fit``
        takes; ``steps`` evaluates that many batches (None: one pass). ``callbacks``
        get ``on_test_begin``, ``on_test_batch_begin/end`` and ``on_test_end``.
        """
        self._require_compiled("evaluate")
        data = self._epoch_iterator(x, y, batch_size, steps, False, "x", ("x", "y"))
        callbacks = CallbackList(callbacks, model=self, verbose=verbose, epochs=1, steps=data.num_batches)
        logs = self._evaluate_batches(data, callbacks, "x")
        if verbose:
            print(_format_logs("evaluate", logs))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_batches(self, data, callbacks, what) -> dict:
        """Loss and metrics over one epoch of ``data`` (an ``EpochIterator``), weighted by batch size."""
        batches = data.epoch()
        if batches is None:
            raise ValueError(f"{what} ran out of batches after {data.epochs_given} pass(es): a generator "
                             "is used up by one pass; give a re-iterable (a list of batches, or an object "
                             "whose __iter__ starts a new pass), or an endless generator with "
                             "validation_steps / steps")
        callbacks.on_test_begin()
        totals = _Totals()
        for step, batch in batches:
            callbacks.on_test_batch_begin(step)
            xb, yb = data.prepare(batch, step)
            with backend.engine_blas():
                y_pred = self.forward(xb, training=False)
            loss, _ = self._loss_and_gradient(yb, y_pred)
            totals.add(_first(xb).shape[0], {"loss": loss, **self._metric_values(yb, y_pred)})
            del y_pred
            callbacks.on_test_batch_end(step, totals.means())
        logs = totals.means()
        callbacks.on_test_end(logs)
        return logs

    def predict(self, x, batch_size=32, training=False, verbose=0, steps=None):
        """Outputs for x as a NumPy array (a list of them for several outputs).

        ``x`` an array, or an iterable of batches (each an array, ``(x,)`` or ``(x, y)``:
        the targets are ignored); ``steps`` predicts that many batches (None: one pass).
        ``training=True`` keeps dropout on (MC Dropout)."""
        data = self._epoch_iterator(x, None, batch_size, steps, False, "x", ("x", None))
        outputs = []
        with backend.engine_blas():  # small products on one BLAS thread (backend.set_threads)
            for step, batch in data.epoch():
                y_pred = self.forward(data.prepare(batch, step), training=training)
                outputs.append([backend.to_numpy(a) for a in y_pred]
                               if isinstance(y_pred, (list, tuple)) else backend.to_numpy(y_pred))
        if isinstance(outputs[0], list):
            return [numpy.concatenate([b[k] for b in outputs]) for k in range(len(outputs[0]))]
        return numpy.concatenate(outputs, axis=0)

    def _metric_values(self, y, y_pred) -> dict:
        """Each metric's mean on this batch; where the output carries a mask, (mean over the
        steps that count, their number), so the epoch's mean weighs steps, not rows (Keras's)."""
        if isinstance(y_pred, (list, tuple)):
            masks = self.output_mask if isinstance(self.output_mask, (list, tuple)) else [None] * len(y_pred)
            return {f"output_{k}_{name}": _metric_value(fn, t, p, m)
                    for k, (t, p, m) in enumerate(zip(y, y_pred, masks)) for name, fn in self.metrics}
        return {name: _metric_value(fn, y, y_pred, self.output_mask) for name, fn in self.metrics}

    def _prepare(self, x, y=None, names=("x", "y")):
        """Inputs (and targets) as backend float arrays with the same number of rows:
        one array, or a list with one per input (output) of a functional model."""
        prepared = self._convert(x, y, names)
        if self.inputs is not None:
            self._check_inputs(prepared[0], names[0])
        return prepared

    def _convert(self, x, y=None, names=("x", "y")):
        """``_prepare``'s conversions and value checks without its shape checks against the model:
        ``(x,)`` or ``(x, y)``. A batch shaped like the last one checked needs only these."""
        x_name, y_name = names
        several = self.inputs is not None and len(self.inputs) > 1
        if self.inputs is not None and not several:
            x = _unpack_array_list(x)   # [x] for a model of one Input, as Keras accepts it
        x = _arrays(x, x_name, several, self._integer_inputs())
        for a in graph.flatten(x):
            validation.check_samples(a, x_name)
        if y is None:
            return (x,)
        several = self.outputs is not None and len(self.outputs) > 1
        if self.outputs is not None and not several:
            y = _unpack_array_list(y)
        y = _arrays(_class_ids_as_floats(y, self.loss), y_name, several)
        for a in graph.flatten(y):
            validation.same_samples(_first(x), a, x_name, y_name)
        return x, y

    @property
    def accepts_integer_inputs(self) -> bool:
        """Whether integer data may be passed (every input feeds token-id layers only)."""
        return all(self._integer_inputs())

    def _integer_inputs(self) -> list:
        """Per input, whether integer data may enter: only where every layer it feeds takes token ids
        (``accepts_integer_inputs``, an Embedding); every other input is checked as floats."""
        if self.inputs is None:
            return [False]
        consumers = {id(v): [] for v in self.inputs}
        for node in self._nodes:
            for v in node.inputs:
                if id(v) in consumers:
                    consumers[id(v)].append(getattr(getattr(node.op, "layer", None), "accepts_integer_inputs",
                                                    False))
        return [bool(c) and all(c) for c in (consumers[id(v)] for v in self.inputs)]

    def _check_inputs(self, x, what) -> None:
        """Each input array has the rank and the known sizes of its ``Input``."""
        arrays = graph.flatten(x)
        if len(arrays) != len(self.inputs):
            raise ValueError(f"{self.name}: the model has {len(self.inputs)} inputs but {what} holds "
                             f"{len(arrays)} array(s): pass a list with one array per Input")
        for a, symbol in zip(arrays, self.inputs):
            expected = symbol.shape
            mismatch = any(e is not None and e != n for e, n in zip(expected, a.shape))
            if len(a.shape) != len(expected) or mismatch:
                raise ValueError(f"{what} has shape {validation.shape_str(a.shape)}, but the model's Input "
                                 f"expects {_shape_str(expected)} (None: any size)")

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"call model.compile(loss=..., optimizer=...) before model.{what}()")

    # --- weights and description ----------------------------------------------------
    def save(self, path) -> None:
        """Save a Sequential or functional model (architecture, weights, compile config, optimizer
        state) to one ``.npz``, atomically (``tinyrnn.saving``); ``tinyrnn.load_model(path)`` reads it."""
        from tinyrnn.saving import save_model  # saving imports this module

        save_model(self, path)

    def summary(self, print_fn=print) -> None:
        """Print layers, output shapes and parameter counts as Keras does."""
        _print_summary(self, [(layer, self._output_shape_of(layer)) for layer in self.layers], print_fn)

    def _output_shape_of(self, layer) -> str:
        shapes = [_shape_str(n.op.output_shapes) for n in self._nodes or []
                  if getattr(n.op, "layer", None) is layer]
        return ", ".join(shapes) if shapes else "?"


class Sequential(Model):
    """A linear stack of layers, used as in Keras.

    Examples
    --------
    >>> model = Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    ...                     SimpleRNN(20), Dense(1)])
    >>> model.compile(loss="mse", optimizer="adam")
    >>> history = model.fit(X_train, y_train, epochs=20, validation_data=(X_valid, y_valid))
    """

    def __init__(self, layers=None, name="sequential"):
        super().__init__(name=name)
        self._layers: list[Layer] = []
        for layer in layers or []:
            self.add(layer)

    # --- structure ------------------------------------------------------------
    def add(self, layer) -> None:
        """Append a layer to the stack, as Keras's ``model.add``.

        Parameters
        ----------
        layer : Layer
            Any tinyrnn layer. The first layer's ``input_shape`` (or a leading
            ``InputLayer``) becomes the model's input shape; an ``InputLayer``
            anywhere else is refused.

        Raises
        ------
        TypeError
            If ``layer`` is not a ``Layer`` (a class instead of an instance, say).
        ValueError
            If an ``InputLayer`` comes after other layers.

        Examples
        --------
        >>> model = Sequential()
        >>> model.add(SimpleRNN(20, input_shape=[None, 1]))
        >>> model.add(Dense(1))
        """
        if isinstance(layer, Value) and layer.node is None:   # Keras: Sequential([Input(...), ...])
            layer = InputLayer(batch_shape=layer.shape, name=layer.name)
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer) or (not self.layers and layer.input_shape is not None):
            if self.layers and isinstance(layer, InputLayer):
                raise ValueError("InputLayer must come first in a Sequential model")
            self.input_shape = (layer.batch_size, *layer.input_shape[1:])   # a declared batch size B stays
        if not isinstance(layer, InputLayer):
            if not self.layers and layer.input_shape is None and self.input_shape is not None:
                layer.input_shape = (None, *self.input_shape[1:])   # the InputLayer's shape is the first
            self._layers.append(layer)                              # layer's, as if given to it (its checks)

    @property
    def built(self) -> bool:
        """Whether every layer has its weights (``build``, or a first ``fit``/``predict``, makes them)."""
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @built.setter
    def built(self, value) -> None:
        """Derived from the layers: setting it changes nothing."""

    def build(self, input_shape=None) -> None:
        """Build every layer, threading the output shape of each into the next."""
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError(
                "the model does not know its input shape yet: give the first layer input_shape=[...], "
                "start with InputLayer(input_shape=[...]), or call fit/predict on data first"
            )
        self.input_shape = tuple(shape)          # (B, ...): a fixed B reaches the stateful layers' build
        if input_shape is not None and self.layers and self.layers[0].input_shape is None:
            self.layers[0].input_shape = (None, *shape[1:])   # declared here: its checks name input_shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
                layer.built = True   # as Keras: a custom build() need not call super().build()
            shape = layer.compute_output_shape(shape)

    def _output_shapes(self) -> list:
        shapes, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    # --- the algorithm, one batch: a chain, nothing recorded -------------------------
    def forward(self, x, training: bool = False, mask=None):
        """Run every layer in order on one batch, keeping what ``backward`` needs.

        Parameters
        ----------
        x : array, shape (B, ...)
            A backend float array (``predict`` and ``fit`` convert and check
            their data first); the model must be built.
        training : bool
            ``True`` turns dropout on and makes BatchNormalization use (and
            update) the batch statistics, as during ``fit``.
        mask : bool array (B, T) or None
            The input's mask (a model used as a layer after a masked one), as Keras's.

        Returns
        -------
        array, shape (B, ...)
            The last layer's output, ``y_pred``.
        """
        # a layer's output mask flows to the next (Layer.forward_with_mask)
        with backend.engine_blas():  # small products on one BLAS thread (backend.set_threads)
            for layer in self.layers:
                if mask is None and not layer._makes_masks:   # no mask, none made here: the plain call
                    x = layer.forward(x, training=training)
                else:
                    x, mask = layer.forward_with_mask(x, mask, training)
        if mask is not None or self.output_mask is not None:   # no write when unchanged (the
            self.output_mask = mask                              # unmasked path stays as it was)
        return x

    def backward(self, dy):
        """Backpropagate ``dy`` through the layers in reverse order.

        Each layer *adds* its parameter gradients to ``layer.grads`` (call
        ``zero_grads`` first for one batch's gradient) and consumes the cache of
        its last ``forward``: one ``backward`` per ``forward``.

        Parameters
        ----------
        dy : array, shape like the output of ``forward``
            dL/dy_pred, for example ``model.loss.gradient(y, y_pred)``.

        Returns
        -------
        array, shape (B, ...) like the input
            dL/dx, the gradient with respect to the model's input.
        """
        with backend.engine_blas():
            for layer in reversed(self.layers):
                dy = layer.backward(dy)
        return dy

    def _build_for(self, x) -> None:
        """Build on the declared input shape, else on x's (once; later calls do nothing)."""
        if not self.built:
            if self.input_shape is None:
                self.input_shape = (None, *x.shape[1:])      # the data's shape, not a declaration
            self.build()

    def _prepare(self, x, y=None, names=("x", "y")):
        """Inputs (and targets) as backend float arrays, checked against the model.

        Builds the model (on its declared input shape, or the first data it sees);
        x must have the rank and feature size D the model was built for, and y the shape of the
        model's output for x (a (B,) target for a (B, 1) output is accepted, as in Keras).
        """
        x_name, y_name = names
        x = _input_array(x, x_name, self._integer_inputs()[0])
        validation.check_samples(x, x_name)
        self._build_for(x)
        self._check_input_shape(x.shape, x_name)
        if y is None:
            return (x,)
        y = _input_array(_class_ids_as_floats(y, self.loss), y_name)
        validation.same_samples(x, y, x_name, y_name)
        self._check_target_shape(x, y.shape, y_name)
        return x, y

    def _integer_inputs(self) -> list:
        """Integer data may enter when the first layer takes token ids (an Embedding)."""
        return [bool(self.layers) and self.layers[0].accepts_integer_inputs]

    def _check_input_shape(self, shape, what) -> None:
        """x has the rank and feature size D the model was built for (time steps T may vary;
        token ids have no feature axis, so for them only the rank counts)."""
        expected = self.input_shape if self.input_shape is not None else self.layers[0].input_shape
        if self._integer_inputs()[0]:
            expected = (*expected[:-1], None)
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
        with _stateful_kept(self.layers) as rows:        # a probe: stateful layers keep their states
            y_pred = self.forward(x[:rows], training=False)
        if isinstance(y_pred, (list, tuple)):  # the last layer returns states too: the loss sees a list
            return
        out = (x.shape[0], *y_pred.shape[1:])
        ids = getattr(self.loss, "class_ids", False)          # one class id per output row
        squeezed = (out[-1] == 1 or ids) and tuple(y_shape) == tuple(out[:-1])
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

    def get_weights(self) -> list:
        """Every layer's weights, in order, as Keras's ``model.get_weights()``.

        Returns
        -------
        list of numpy.ndarray
            Copies (on the host, whatever the backend), layer after layer, each
            layer's in Keras's order and shapes (for example ``kernel``,
            ``recurrent_kernel``, ``bias`` for a recurrent layer), including
            non-trainable weights (BatchNormalization's moving statistics).
            ``set_weights`` takes the same list back.
        """
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

    def summary(self, print_fn=print) -> None:
        """Print layers, output shapes and parameter counts as Keras does."""
        if not self.built:
            self.build()
        shapes = [_shape_str(shape) for shape in self._output_shapes()]
        _print_summary(self, list(zip(self.layers, shapes)), print_fn)


def _print_summary(model, rows_in, print_fn) -> None:
    """Keras's summary table: one row per (layer, output shape), then the parameter counts."""
    labels = [f" {layer.name} ({type(layer).__name__})" for layer, _ in rows_in]
    shapes = [shape for _, shape in rows_in]
    w1 = max(29, *(len(s) + 2 for s in labels))   # Keras's widths, widened for long names
    w2 = max(26, *(len(s) + 2 for s in shapes))
    line, rule = "_" * (w1 + w2 + 10), "=" * (w1 + w2 + 10)
    rows = [f'Model: "{model.name}"', line, f"{' Layer (type)':<{w1}}{'Output Shape':<{w2}}Param #", rule]
    for i, ((layer, shape), label) in enumerate(zip(rows_in, labels)):
        rows.append(f"{label:<{w1}}{shape:<{w2}}{layer.count_params():,}")
        rows.append(rule if i == len(rows_in) - 1 else "")
    trainable = sum(int(numpy.prod(p.shape)) for _, p, _ in model.trainable_variables())
    total = model.count_params()
    rows += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
             f"Non-trainable params: {total - trainable:,}", line]
    print_fn("\n".join(rows))


@contextlib.contextmanager
def _stateful_kept(layers):
    """Around a probe forward pass: stateful layers keep their states and batch size. Yields the
    rows the probe may use: 1, or the fixed batch size of a stateful layer."""
    stateful = [layer for layer in parameter_owners(layers) if getattr(layer, "stateful", False)]
    saved = [(layer.states, layer.batch_size) for layer in stateful]
    try:
        yield next((layer.batch_size for layer in stateful if layer.batch_size), 1)
    finally:
        for layer, (states, batch_size) in zip(stateful, saved):
            layer.states, layer.batch_size = states, batch_size


def _walk_layers(layers):
    """Every layer, and the layers inside wrappers and nested models, depth first."""
    for layer in layers:
        yield layer
        if hasattr(layer, "sublayers"):
            yield from _walk_layers(layer.sublayers())


def _unpack_singleton(x):
    """x[0] for a list or tuple of one, else x (Keras's ``unpack_singleton``)."""
    return x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x


def _unpack_array_list(x):
    """The array of a list of one array (not a nested list of numbers), else x."""
    return x[0] if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape") else x


def _class_ids_as_floats(y, loss):
    """Integer targets as floats for a loss of class ids (``sparse_categorical_crossentropy``,
    which checks they are whole numbers in range); for other losses integer targets stay refused."""
    if not any(getattr(fn, "class_ids", False) for fn in (loss if isinstance(loss, list) else [loss])):
        return y

    def as_floats(a):
        a = a if backend.is_array(a) else numpy.asarray(a)
        return a.astype(backend.floatx()) if a.dtype.kind in "iu" else a

    several = isinstance(y, (list, tuple)) and len(y) > 0 and backend.is_array(y[0])
    return [as_floats(a) for a in y] if several else as_floats(y)


def _loss_value_and_gradient(loss, y, y_pred, mask):
    """(float loss, dL/dy_pred) of one output; with its mask when it carries one."""
    if mask is None:
        return float(loss(y, y_pred)), loss.gradient(y, y_pred)
    return float(loss(y, y_pred, mask=mask)), loss.gradient(y, y_pred, mask=mask)


def _metric_value(fn, y, y_pred, mask):
    """A metric's batch mean, or with a mask (mean over the steps that count, their number)."""
    if mask is None:
        return metrics.reduce(fn(y, y_pred))
    return metrics.reduce(fn(y, y_pred), mask=mask), int(mask.sum())


def _first(x):
    """The first array of x (an array, or a list of them for several inputs)."""
    return graph.flatten(x)[0]


def _arrays(x, what, several, integer_ok=None):
    """x as a backend float array, or a list of them when the model has several inputs (outputs);
    ``integer_ok[k]``: input k feeds token-id layers only, so integer arrays pass unchanged."""
    integer_ok = list(integer_ok or [])
    if several:
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"{what}: the model has several of these; pass a list with one array for each")
        integer_ok += [False] * (len(x) - len(integer_ok))
        return [_input_array(a, f"{what}[{k}]", ok) for k, (a, ok) in enumerate(zip(x, integer_ok))]
    return _input_array(x, what, bool(integer_ok) and integer_ok[0])


def _input_array(a, what, integer_ok=False):
    """``a`` as a backend float array (finite), or, where ``integer_ok``, an integer array kept as is
    (token ids: the Embedding checks their range)."""
    if integer_ok:
        arr = a if backend.is_array(a) else numpy.asarray(a)
        if arr.dtype.kind in "iu":
            return backend.xp.asarray(arr)
    return backend.asarray(validation.float_array(a, what))


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
    """Running means over batches: weighted by batch size, or plain; a value given as
    (value, weight) has its own weight (a masked metric: its number of steps that count)."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, weight, values: dict):
        for k, v in values.items():
            v, w = v if isinstance(v, tuple) else (v, weight)
            self.sums[k] = self.sums.get(k, 0.0) + w * v
            self.counts[k] = self.counts.get(k, 0) + w

    def add_unweighted(self, key, value):
        self.add(1, {key: value})

    def means(self) -> dict:
        return {k: self.sums[k] / self.counts[k] if self.counts[k] else 0.0 for k in self.sums}


def _progress(batches, description, verbose, total=None):
    """A tqdm bar over the batches (verbose 1), counting to ``total`` when known."""
    if verbose != 1:
        return batches
    from tqdm.auto import tqdm  # imported when a bar is shown

    return tqdm(batches, desc=description, unit="batch", leave=False, total=total)


def _format_logs(prefix, logs) -> str:
    return prefix + " - " + " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())


def _shape_str(shape) -> str:
    if isinstance(shape, list):
        return ", ".join(_shape_str(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _validation_pair(validation_data):
    """``(x_val, y_val)`` for validation arrays, ``(batches, None)`` for an iterable of batches."""
    if isinstance(validation_data, (tuple, list)):
        if validation_data and all(isinstance(b, tuple) for b in validation_data):
            return validation_data, None  # a list of (x, y) batches
        if len(validation_data) == 2:
            return validation_data
    elif is_batch_source(validation_data):
        return validation_data, None
    raise ValueError("validation_data must be a pair (x_val, y_val) of arrays or an iterable (a generator, a "
                     f"list) of (x, y) batches, got {type(validation_data).__name__}")


def _shapes(a):
    """Shapes and dtypes of an array or a list of arrays (None where a part has no shape: nested lists)."""
    if a is None:
        return ()
    if isinstance(a, (list, tuple)):
        parts = tuple(_shapes(p) for p in a)
        return None if None in parts else parts
    shape = getattr(a, "shape", None)
    return None if shape is None else (shape, a.dtype)


def _count(value, what) -> int:
    """``value`` as an int after checking it is a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)



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


def load_model(path, custom_objects=None, restore_random_state=True):
    """Keras's spelling ``keras.models.load_model``: ``tinyrnn.load_model`` (``tinyrnn.saving``)."""
    from tinyrnn.saving import load_model as load  # saving imports this module

    return load(path, custom_objects=custom_objects, restore_random_state=restore_random_state)
