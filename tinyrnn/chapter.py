"""The course's chapter as data, and the runner behind ``python -m tinyrnn chapter``.

Every experiment of the course notes (the sequence-processing chapter of
Géron's *Hands-On Machine Learning*, 2nd edition) is one ``Experiment`` in
``EXPERIMENTS``: its name, the model as the course writes it (a builder
function below, in the course's own Keras code), the task it learns
(``tinyrnn.data.load_course_data``), its optimizer, the figure it is judged
by, and the two reference figures:

- ``course``: the figure printed in the book's companion notebook (TensorFlow 2);
- ``keras3``: the same model rebuilt in Keras 3.15 and trained on the
  project's 2-core machine, seed 42, 20 epochs, batch 32, with ``keras_fit_seconds``
  its wall time for the 20 epochs.

The figure is the validation MSE ("mse"), or for the sequence-to-sequence
models the MSE of the last time step only ("last_time_step_mse", the
forecast that matters). Reference figures are single runs and a figure
depends on the seed, so the acceptance rule is: **an experiment passes when
the median of its figure over five seeds (42 to 46) is at most**
``PASS_RATIO`` **(1.15) times the larger of the two references**
(``run_seeds``, ``python -m tinyrnn chapter --seeds 5``). A single-seed run
marks each figure "within" or "above" 1.15x, for information.

``run_chapter()`` trains the experiments (seed 42, 20 epochs, batch 32),
prints one table and writes ``report.md``, ``results.json`` and the figures
(PNG) to a folder. Each model is built right after ``set_random_seed(seed)``,
so an experiment gives the same figure alone (``--only``) as in the full run.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import sys
import time
from collections.abc import Callable

import numpy

from tinyrnn import activations, backend, data, long_memory, seeding
from tinyrnn.backend import blas_threads, limit_blas_threads  # noqa: F401  (tutorials import it from here)
from tinyrnn.forecast import iterative_forecast, mc_dropout, naive_forecast
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    Add,
    BatchNormalization,
    Conv1D,
    Dense,
    Flatten,
    Input,
    InputLayer,
    Layer,
    LNSimpleRNNCell,
    SimpleRNN,
    TimeDistributed,
)
from tinyrnn.models import Model, Sequential, TrainingError
from tinyrnn.optimizers import Adam

N_STEPS = 50
"""T, the number of input steps of every task."""

EPOCHS, BATCH_SIZE, SEED = 20, 32, 42
"""The course's (and the Keras 3 reference run's) training settings."""

QUICK_SERIES, QUICK_EPOCHS = 1000, 2
"""``--quick``: 1000 series (700 / 200 / 100) and 2 epochs, a smoke test of the whole chapter."""

PASS_RATIO = 1.15
"""An experiment passes when the median of its figure over ``ACCEPTANCE_SEEDS`` seeds
(``SEED`` onwards: 42 to 46) is <= PASS_RATIO x the larger reference figure."""

ACCEPTANCE_SEEDS = 5
"""How many seeds the acceptance rule takes the median over."""

KERAS_TOTAL_FIT_SECONDS = 636.0
"""Keras 3's total fit time for the 13 trained experiments without the deep WaveNet (994 s with it)."""


# --- the course's models, in its own code ------------------------------------------------------
def linear():
    return Sequential([Flatten(input_shape=[N_STEPS, 1]), Dense(1)])


def simple_rnn():
    return Sequential([SimpleRNN(1, input_shape=[None, 1])])


def deep_rnn():
    return Sequential([
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        SimpleRNN(20, return_sequences=True),
        SimpleRNN(1),
    ])


def deep_rnn_dense():
    return Sequential([
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        SimpleRNN(20),
        Dense(1),
    ])


def linear_10():
    return Sequential([Flatten(input_shape=[N_STEPS, 1]), Dense(10)])


def seq2vec():
    return Sequential([
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        SimpleRNN(20),
        Dense(10),
    ])


def seq2seq():
    return Sequential([
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        SimpleRNN(20, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])


def batchnorm():
    return Sequential([
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        BatchNormalization(),
        SimpleRNN(20, return_sequences=True),
        BatchNormalization(),
        TimeDistributed(Dense(10)),
    ])


def ln_rnn():
    return Sequential([
        RNN(LNSimpleRNNCell(20), return_sequences=True, input_shape=[None, 1]),
        RNN(LNSimpleRNNCell(20), return_sequences=True),
        TimeDistributed(Dense(10)),
    ])


def lstm():
    return Sequential([
        LSTM(20, return_sequences=True, input_shape=[None, 1]),
        LSTM(20, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])


def gru():
    return Sequential([
        GRU(20, return_sequences=True, input_shape=[None, 1]),
        GRU(20, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])


def conv_gru():
    return Sequential([
        Conv1D(filters=20, kernel_size=4, strides=2, padding="valid", input_shape=[None, 1]),
        GRU(20, return_sequences=True),
        GRU(20, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])


def wavenet(rates=(1, 2, 4, 8) * 2):
    model = Sequential([InputLayer(input_shape=[None, 1])])
    for rate in rates:
        model.add(Conv1D(filters=20, kernel_size=2, padding="causal", activation="relu", dilation_rate=rate))
    model.add(Conv1D(filters=10, kernel_size=1))
    return model


def deep_wavenet():
    return wavenet(rates=tuple(2**i for i in range(10)) * 3)  # (1, 2, ..., 512) x 3


class GatedActivationUnit(Layer):
    """WaveNet's gated activation unit, the course's custom layer: ``call()`` only (recorded backward).

    With ``n = F // 2`` for an input of F = 2n channels (B, T, 2n) -> (B, T, n):

        y = tanh(z[..., :n]) * sigmoid(z[..., n:])

    The book's notebook applies the activation a second time, ``tanh(tanh(z[..., :n]))``;
    this is the paper's unit (van den Oord et al., 2016, eq. 2), as is the Keras fixture's.
    """

    def __init__(self, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        n_filters = inputs.shape[-1] // 2
        linear_output = self.activation(inputs[..., :n_filters])
        gate = activations.sigmoid(inputs[..., n_filters:])
        return linear_output * gate


def wavenet_residual_block(inputs, n_filters, dilation_rate):
    """Causal dilated Conv1D (2n filters), gated unit, 1x1 Conv1D; returns (residual sum, skip)."""
    z = Conv1D(2 * n_filters, kernel_size=2, padding="causal", dilation_rate=dilation_rate)(inputs)
    z = GatedActivationUnit()(z)
    z = Conv1D(n_filters, kernel_size=1)(z)
    return Add()([z, inputs]), z


def original_wavenet(n_layers_per_block=3, n_blocks=1, n_filters=32, n_outputs=10):
    """The original WaveNet as the book's notebook builds it with the functional API (the paper uses
    10 layers per block, 3 blocks, 128 filters, 256 outputs): residual blocks of dilation 1, 2, 4, ...,
    their skip outputs summed, relu, two 1x1 convolutions, a softmax over the 10 outputs."""
    inputs = Input(shape=[None, 1])
    z = Conv1D(n_filters, kernel_size=2, padding="causal")(inputs)
    skip_to_last = []
    for dilation_rate in [2**i for i in range(n_layers_per_block)] * n_blocks:
        z, skip = wavenet_residual_block(z, n_filters, dilation_rate)
        skip_to_last.append(skip)
    z = activations.relu(Add()(skip_to_last))
    z = Conv1D(n_filters, kernel_size=1, activation="relu")(z)
    Y_proba = Conv1D(n_outputs, kernel_size=1, activation="softmax")(z)
    return Model(inputs=[inputs], outputs=[Y_proba])


MC_DROPOUT_MODEL = "GRU(20, rs, dropout=0.2, recurrent_dropout=0.2) x 2, TimeDistributed(Dense(10))"


def mc_dropout_gru():
    """The model behind the report's MC-dropout figure: the course's GRU with dropout."""
    return Sequential([
        GRU(20, return_sequences=True, dropout=0.2, recurrent_dropout=0.2, input_shape=[None, 1]),
        GRU(20, return_sequences=True, dropout=0.2, recurrent_dropout=0.2),
        TimeDistributed(Dense(10)),
    ])


def crop_for_conv_gru(Y):
    """Conv1D(kernel 4, stride 2, valid) maps 50 steps to 24 that end at inputs 3, 5, ..., 49:
    the targets are ``Y[:, 3::2]`` (B, 24, 10)."""
    return Y[:, 3::2]


# --- forecasts without training of their own ----------------------------------------------------
def naive_one_step(X, model=None):
    return naive_forecast(X, 1)


def naive_ten_steps(X, model=None):
    return naive_forecast(X, 10)


def iterative_ten_steps(X, model):
    return iterative_forecast(model, X, 10, batch_size=BATCH_SIZE)


# --- the registry -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Experiment:
    """One row of the chapter.

    Trained experiments have ``build``; forecasts have ``forecast(X, model) -> Y_pred``
    and, if they need a trained model, ``uses`` names the experiment that trains it.
    """

    name: str
    architecture: str
    task: str                                  # "one_step", "ten_steps" or "seq2seq"
    figure: str                                # "mse" or "last_time_step_mse"
    course: float | None
    keras3: float | None
    keras_fit_seconds: float | None = None
    build: Callable[[], Sequential] | None = None
    learning_rate: float = 0.001               # Adam's; 0.001 is Keras's "adam"
    forecast: Callable | None = None
    uses: str | None = None
    crop_targets: Callable | None = None
    keras3_val_loss: float | None = None        # seq-to-seq models: Keras 3's MSE over all steps

    @property
    def reference(self) -> float | None:
        """The larger of the two reference figures: the one to compare with."""
        figures = [f for f in (self.course, self.keras3) if f is not None]
        return max(figures) if figures else None

    @property
    def optimizer(self) -> str:
        if self.build is None:
            return "-"
        return "adam" if self.learning_rate == 0.001 else f"Adam({self.learning_rate:g})"

    def make_optimizer(self) -> Adam:
        return Adam(learning_rate=self.learning_rate)

    @property
    def history_key(self) -> str:
        """The key of ``History.history`` that holds the figure."""
        return "val_loss" if self.figure == "mse" else "val_last_time_step_mse"


RS = "rs"  # return_sequences=True, as the reference table abbreviates it
EXPERIMENTS = [
    Experiment("naive", "last value", "one_step", "mse", 0.020211, 0.020211, forecast=naive_one_step),
    Experiment("linear", "Flatten, Dense(1)", "one_step", "mse", 0.004168, 0.003783, 5.7, linear),
    Experiment("simple_rnn", "SimpleRNN(1)", "one_step", "mse", 0.010882, 0.010925, 19.4, simple_rnn,
               learning_rate=0.005),
    Experiment("deep_rnn", f"SimpleRNN(20, {RS}), SimpleRNN(20, {RS}), SimpleRNN(1)", "one_step", "mse",
               0.002911, 0.002981, 53.7, deep_rnn),
    Experiment("deep_rnn_dense", f"SimpleRNN(20, {RS}), SimpleRNN(20), Dense(1)", "one_step", "mse",
               0.002624, 0.002670, 40.9, deep_rnn_dense),
    Experiment("iterative_10", "deep_rnn_dense fed its own forecasts 10 times", "ten_steps", "mse",
               0.027511, None, forecast=iterative_ten_steps, uses="deep_rnn_dense"),
    Experiment("naive_10", "last value repeated 10 times", "ten_steps", "mse", 0.256974, None,
               forecast=naive_ten_steps),
    Experiment("linear_10", "Flatten, Dense(10)", "ten_steps", "mse", 0.0187, 0.018823, 5.8, linear_10),
    Experiment("seq2vec", f"SimpleRNN(20, {RS}), SimpleRNN(20), Dense(10)", "ten_steps", "mse",
               0.0085, 0.009247, 41.0, seq2vec),
    Experiment("seq2seq", f"SimpleRNN(20, {RS}) x 2, TimeDistributed(Dense(10))", "seq2seq",
               "last_time_step_mse", 0.0096, 0.005874, 46.8, seq2seq, learning_rate=0.01,
               keras3_val_loss=0.0176),
    Experiment("batchnorm", "as seq2seq with BatchNormalization after each RNN", "seq2seq",
               "last_time_step_mse", 0.0164, 0.014873, 59.1, batchnorm, keras3_val_loss=0.0289),
    Experiment("ln_rnn", f"RNN(LNSimpleRNNCell(20), {RS}) x 2, TimeDistributed(Dense(10))", "seq2seq",
               "last_time_step_mse", 0.0121, 0.021225, 83.4, ln_rnn, keras3_val_loss=0.0335),
    Experiment("lstm", f"LSTM(20, {RS}) x 2, TimeDistributed(Dense(10))", "seq2seq", "last_time_step_mse",
               0.008561, 0.009501, 77.6, lstm, keras3_val_loss=0.0239),
    Experiment("gru", f"GRU(20, {RS}) x 2, TimeDistributed(Dense(10))", "seq2seq", "last_time_step_mse",
               0.010263, 0.008515, 98.0, gru, keras3_val_loss=0.0228),
    Experiment("conv_gru", f"Conv1D(20, 4, strides=2, valid), GRU(20, {RS}) x 2, "
               "TimeDistributed(Dense(10)); targets Y[:, 3::2]", "seq2seq", "last_time_step_mse",
               0.0080, 0.006396, 65.5, conv_gru, crop_targets=crop_for_conv_gru, keras3_val_loss=0.0168),
    Experiment("wavenet", "Conv1D(20, 2, causal, relu, dilation r) for r in (1, 2, 4, 8) x 2, Conv1D(10, 1)",
               "seq2seq", "last_time_step_mse", 0.0072, 0.008790, 39.2, wavenet, keras3_val_loss=0.0198),
    Experiment("deep_wavenet", "as wavenet with rates (1, 2, ..., 512) x 3", "seq2seq",
               "last_time_step_mse", None, 0.145948, 357.8, deep_wavenet),
]
"""The chapter, in the course's order."""

NAMES = [e.name for e in EXPERIMENTS]
_BY_NAME = {e.name: e for e in EXPERIMENTS}

TEXT = "text"
"""The text chapter's name for ``--only`` (``tinyrnn.text_chapter``: the character model on Shakespeare)."""


def split_text(names=None) -> tuple[list[str] | None, bool]:
    """(the series experiments' names, whether the text chapter runs): None runs everything;
    ``["text"]`` only the text chapter (no series experiment: ``[]``); "text" may sit in a comma list."""
    if names is None:
        return None, True
    wanted = [n.strip() for item in ([names] if isinstance(names, str) else names)
              for n in str(item).split(",") if n.strip()]
    series = [n for n in wanted if n not in (TEXT, TRANSLATION)]
    return series, TEXT in wanted


TRANSLATION = "translation"
"""``--only translation``: the date-translation experiments (``tinyrnn.translation_chapter``: a plain
encoder-decoder against one with attention); they run with the text chapter in a full run."""


def wants_translation(names=None) -> bool:
    """Whether the date-translation experiments run: in a full run (None), or when named."""
    if names is None:
        return True
    return TRANSLATION in [n.strip() for item in ([names] if isinstance(names, str) else names)
                           for n in str(item).split(",")]


def get_experiment(name: str) -> Experiment:
    return select_experiments([name])[0]


def select_experiments(names=None) -> list[Experiment]:
    """The experiments called ``names`` (in the course's order), or all of them for None.

    ``names`` is a list of names, each of which may be a comma-separated list.
    An unknown name is a ValueError that lists the known ones.
    """
    if names is None:
        return list(EXPERIMENTS)
    if isinstance(names, str):
        names = [names]
    wanted = [n.strip() for item in names for n in str(item).split(",") if n.strip()]
    unknown = [n for n in wanted if n not in _BY_NAME]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(map(repr, unknown))}; "
                         f"the chapter's experiments are: {', '.join(NAMES)}")
    if not wanted:
        raise ValueError(f"no experiment named; choose from: {', '.join(NAMES)}")
    return [e for e in EXPERIMENTS if e.name in wanted]


# --- results ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    """What one experiment gave. ``model``, ``history`` and ``predictions`` stay
    in memory for plots and tutorials; ``to_dict`` gives the JSON numbers."""

    name: str
    architecture: str
    task: str
    figure: str
    ours: float
    course: float | None
    keras3: float | None
    reference: float | None
    ratio: float | None
    verdict: str                        # "within" / "above" 1.15x, "-" (not comparable: --quick) or ERROR
    seconds: float                      # fit time (training experiments) or forecast time
    keras_fit_seconds: float | None
    epochs: int | None
    val_loss: float | None = None       # seq-to-seq models: the MSE over all time steps
    keras3_val_loss: float | None = None
    error: str | None = None
    seed: int | None = None
    history: dict | None = dataclasses.field(default=None, repr=False)
    model: Sequential | None = dataclasses.field(default=None, repr=False)
    predictions: numpy.ndarray | None = dataclasses.field(default=None, repr=False)

    def to_dict(self) -> dict:
        skip = ("model", "predictions")
        return {f.name: _json_number(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in skip}


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: [float(v) for v in vs] for k, vs in value.items()}
    return value


def verdict(ratio, comparable=True) -> str:
    """The acceptance verdict of a median ratio over seeds: PASS, FAIL, or "-" when not comparable."""
    if ratio is None or not comparable:
        return "-"
    return "PASS" if ratio <= PASS_RATIO else "FAIL"


def mark(ratio, comparable=True) -> str:
    """One seed's figure against the bound: "within" or "above" 1.15x (information, not acceptance)."""
    if ratio is None or not comparable:
        return "-"
    return "within" if ratio <= PASS_RATIO else "above"


# --- the runner -------------------------------------------------------------------------------
class ChapterRun:
    """Trains and evaluates experiments on one data recipe, keeping data and trained models.

    ``n_series`` series per task (10000: the course's 7000 / 2000 / 1000 split),
    ``epochs`` epochs of batch ``BATCH_SIZE``, seed ``seed`` for data and weights.
    """

    def __init__(self, epochs=EPOCHS, n_series=10000, seed=SEED, verbose=True, comparable=True):
        self.epochs, self.n_series, self.seed = epochs, n_series, seed
        self.verbose, self.comparable = verbose, comparable
        self.fit_verbose = (1 if sys.stdout.isatty() else 2) if verbose else 0
        self._data: dict = {}
        self.trained: dict[str, Result] = {}

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    def data(self, task: str) -> dict:
        """``load_course_data(task)``, generated once per run."""
        if task not in self._data:
            self._data[task] = data.load_course_data(task, seed=self.seed, n_series=self.n_series)
        return self._data[task]

    def splits(self, experiment: Experiment):
        """(X_train, Y_train), (X_valid, Y_valid) with the experiment's targets."""
        d = self.data(experiment.task)
        crop = experiment.crop_targets or (lambda Y: Y)
        return [(X, crop(Y)) for X, Y in (d["train"], d["valid"])]

    def run(self, experiment: Experiment) -> Result:
        """Train (or forecast) one experiment; an error becomes an ERROR row, not a crash."""
        try:
            if experiment.build is not None:
                return self.train(experiment)
            return self.evaluate_forecast(experiment)
        except (TrainingError, ValueError, RuntimeError, MemoryError) as err:
            self.log(f"  !! {experiment.name} failed: {type(err).__name__}: {err}")
            return self._result(experiment, math.nan, 0.0, error=f"{type(err).__name__}: {err}")

    def train(self, experiment: Experiment) -> Result:
        """Build the model after seeding, compile as the course does, fit, read the figure."""
        if experiment.name in self.trained:
            return self.trained[experiment.name]
        (X_train, Y_train), (X_valid, Y_valid) = self.splits(experiment)
        self.log(f"  {experiment.name}: {experiment.architecture}; {experiment.optimizer}; "
                 f"{len(X_train)} train / {len(X_valid)} valid series, {self.epochs} epochs")
        seeding.set_random_seed(self.seed)
        model = experiment.build()
        metrics = [] if experiment.figure == "mse" else ["last_time_step_mse"]
        model.compile(loss="mse", optimizer=experiment.make_optimizer(), metrics=metrics)
        start = time.perf_counter()
        history = model.fit(X_train, Y_train, epochs=self.epochs, batch_size=BATCH_SIZE,
                            validation_data=(X_valid, Y_valid), verbose=self.fit_verbose)
        seconds = time.perf_counter() - start
        logs = history.history
        val_loss = logs["val_loss"][-1] if experiment.figure != "mse" else None
        result = self._result(experiment, logs[experiment.history_key][-1], seconds,
                              val_loss=val_loss, history=logs, model=model)
        self.trained[experiment.name] = result
        return result

    def evaluate_forecast(self, experiment: Experiment) -> Result:
        """A forecast of the validation set, scored by its MSE over all forecast steps."""
        model = None
        if experiment.uses is not None:
            if experiment.uses not in self.trained:
                self.log(f"  {experiment.name} needs the trained {experiment.uses} model: training it")
            model = self.train(get_experiment(experiment.uses)).model
        X_valid, Y_valid = self.data(experiment.task)["valid"]
        start = time.perf_counter()
        Y_pred = experiment.forecast(X_valid, model)
        seconds = time.perf_counter() - start
        mse = float(numpy.mean((Y_pred - Y_valid.reshape(Y_pred.shape)) ** 2))
        return self._result(experiment, mse, seconds, model=model, predictions=Y_pred)

    def _result(self, experiment, ours, seconds, error=None, **extra) -> Result:
        reference = experiment.reference
        ratio = ours / reference if reference and math.isfinite(ours) else None
        return Result(
            name=experiment.name, architecture=experiment.architecture, task=experiment.task,
            figure=experiment.figure, ours=float(ours), course=experiment.course,
            keras3=experiment.keras3, reference=reference, ratio=ratio,
            verdict="ERROR" if error else mark(ratio, self.comparable), seconds=seconds,
            keras_fit_seconds=experiment.keras_fit_seconds,
            epochs=self.epochs if experiment.build is not None else None,
            keras3_val_loss=experiment.keras3_val_loss, error=error, seed=self.seed, **extra)

    # --- the report's extra figures --------------------------------------------------------------
    def mc_dropout_forecast(self, epochs: int, n_series: int, n_samples: int = 100) -> dict:
        """Train ``mc_dropout_gru`` and forecast ``n_series`` validation series with MC Dropout.

        Returns the numbers (last-step MSE of the MC mean and of one deterministic
        pass, the mean std) and, for the plot, the inputs, targets, mean and std
        of the last time step's 10-value forecast.
        """
        d = self.data("seq2seq")
        (X_train, Y_train), (X_valid, Y_valid) = d["train"], d["valid"]
        self.log(f"  MC dropout: {MC_DROPOUT_MODEL}; adam; {epochs} epochs")
        seeding.set_random_seed(self.seed)
        model = mc_dropout_gru()
        model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
        start = time.perf_counter()
        model.fit(X_train, Y_train, epochs=epochs, batch_size=BATCH_SIZE,
                  validation_data=(X_valid, Y_valid), verbose=self.fit_verbose)
        X, Y = X_valid[:n_series], Y_valid[:n_series, -1]               # (n, 50, 1), (n, 10)
        mean, std = mc_dropout(model, X, n_samples=n_samples, batch_size=n_series)
        mean, std = mean[:, -1], std[:, -1]                              # the last step's forecast
        deterministic = model.predict(X, batch_size=n_series)[:, -1]
        return {
            "model": MC_DROPOUT_MODEL,
            "epochs": epochs, "n_series": n_series, "n_samples": n_samples,
            "seconds": time.perf_counter() - start,
            "mc_mean_last_step_mse": float(numpy.mean((mean - Y) ** 2)),
            "deterministic_last_step_mse": float(numpy.mean((deterministic - Y) ** 2)),
            "mean_std": float(std.mean()),
            "plot": {"X": X[0], "Y": Y[0], "mean": mean[0], "std": std[0]},
        }


def run_chapter(names=None, epochs=None, quick=False, out="chapter_out", seed=SEED, verbose=True,
                extras=None, command=None) -> list[Result]:
    """Run the chapter's experiments, print the table, write the report; return the results.

    Parameters
    ----------
    names : experiment names (see ``NAMES``), or None for all of them.
    epochs : training epochs; None means 20 (the course's), or 2 with ``quick``.
    quick : 1000 series instead of 10000 (a smoke test; figures are not comparable).
    out : folder for report.md, results.json and the PNG figures; None writes nothing.
    seed : seeds the data and, before each model is built, tinyrnn's generator.
    verbose : print progress (one line per experiment and fit's per-epoch lines).
    extras : also make the MC-dropout and long-memory (why gates exist) figures; None means
        only when every experiment runs (``names`` is None).
    command : the command line to record in the report.
    """
    series, with_text = split_text(names)
    with_translation = wants_translation(names)
    only_chapters = series == [] and (with_text or with_translation)     # --only text / translation
    experiments = [] if only_chapters else select_experiments(series)
    epochs = epochs if epochs is not None else (QUICK_EPOCHS if quick else EPOCHS)
    extras = (names is None) if extras is None else extras
    run = ChapterRun(epochs=epochs, n_series=QUICK_SERIES if quick else 10000, seed=seed,
                     verbose=verbose, comparable=not quick)
    start = time.perf_counter()
    results = []
    for i, experiment in enumerate(experiments, 1):
        run.log(f"[{i}/{len(experiments)}] {experiment.name}")
        result = run.run(experiment)
        run.log(f"  -> {_summary(result)}")
        results.append(result)
    extra = make_extras(run, quick) if extras else {}
    if with_text:
        from tinyrnn import text_chapter

        run.log("[text] the book's character model on tiny Shakespeare, stateful")
        extra["text"] = text_chapter.run_text(quick=quick, seed=seed, log=run.log)
        run.log(f"  -> {text_chapter.summary(extra['text'])}")
        from tinyrnn import padding_experiment

        run.log("[text] masking: variable-length sequences, with and without the mask")
        extra["padding"] = padding_experiment.run(quick=quick, seed=seed, log=run.log)
    if with_translation:
        from tinyrnn import translation_chapter

        run.log("[translation] dates to ISO: a plain encoder-decoder against one with attention")
        extra["translation"] = translation_chapter.run(quick=quick, seed=seed, out=out)
        run.log(f"  -> {translation_chapter.summary(extra['translation'])}")
    total = time.perf_counter() - start
    info = run_info(results, run, quick, total, command or _call_repr(names, epochs, quick, out, seed))
    table = results_table(results, quick=quick)
    if verbose and results:
        print("\n" + table + "\n" + timing_line(info))
        if "text" in extra:
            from tinyrnn import text_chapter

            text_result = extra["text"]
            print(f"\n{text_chapter.results_table(text_result)}\n{text_chapter.verdict_line(text_result)}")
    if out is not None:
        write_report(pathlib.Path(out), results, run, extra, info, table)
        run.log(f"report written to {pathlib.Path(out) / 'report.md'}")
    return results


def make_extras(run: ChapterRun, quick: bool) -> dict:
    """The MC-dropout forecast (a few epochs) and the long-memory experiment (about two minutes;
    ``long_memory.QUICK``, a second or two, with ``quick``)."""
    run.log("[extra] MC dropout forecast band")
    mc = run.mc_dropout_forecast(epochs=2 if quick else 5, n_series=50 if quick else 200)
    run.log(f"  -> last-step MSE of the MC mean {mc['mc_mean_last_step_mse']:.4g} over {mc['n_series']} "
            f"series (one deterministic pass {mc['deterministic_last_step_mse']:.4g}), "
            f"mean std {mc['mean_std']:.3g}")
    run.log("[extra] why gates exist: the adding problem, SimpleRNN vs LSTM vs GRU")
    memory = long_memory.run_long_memory(long_memory.QUICK if quick else long_memory.FULL, seed=run.seed,
                                         log=run.log)
    return {"mc_dropout": mc, "long_memory": memory}


def _summary(result: Result) -> str:
    if result.error:
        return f"ERROR {result.error}"
    refs = ", ".join(f"{k} {v:.6g}" for k, v in (("course", result.course), ("Keras 3", result.keras3))
                     if v is not None)
    ratio = f"ratio {result.ratio:.2f} " if result.ratio is not None else ""
    return (f"{_figure_label(result.figure)} {result.ours:.6f} ({refs}) {ratio}{result.verdict}, "
            f"{result.seconds:.1f} s")


def _figure_label(figure: str) -> str:
    return "val MSE" if figure == "mse" else "val last-step MSE"


def _call_repr(names, epochs, quick, out, seed) -> str:
    return f"run_chapter(names={names!r}, epochs={epochs}, quick={quick}, out={out!r}, seed={seed})"


# --- several seeds: the acceptance check -------------------------------------------------------
@dataclasses.dataclass
class SeedSummary:
    """One experiment over several seeds: its figure at each seed, their median,
    smallest and largest, and the acceptance verdict of the median."""

    name: str
    figure: str
    seeds: list[int]
    figures: list[float]                # one per seed (NaN where a seed failed)
    seconds: list[float]                # fit (or forecast) time per seed
    course: float | None
    keras3: float | None
    reference: float | None
    median: float
    smallest: float
    largest: float
    ratio: float | None                 # median / reference
    verdict: str                        # PASS, FAIL, "-" (not comparable: --quick) or ERROR
    errors: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _json_value(value):
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def summarize_seeds(experiment: Experiment, results: list[Result], comparable: bool = True) -> SeedSummary:
    """The median, smallest and largest figure of ``results`` (one per seed, in seed order)."""
    figures = [r.ours for r in results]
    errors = [f"seed {r.seed}: {r.error}" for r in results if r.error]
    finite = [f for f in figures if math.isfinite(f)]
    median = float(numpy.median(finite)) if finite and not errors else math.nan
    reference = experiment.reference
    ratio = median / reference if reference and math.isfinite(median) else None
    return SeedSummary(
        name=experiment.name, figure=experiment.figure, seeds=[r.seed for r in results], figures=figures,
        seconds=[r.seconds for r in results], course=experiment.course, keras3=experiment.keras3,
        reference=reference, median=median, smallest=min(finite, default=math.nan),
        largest=max(finite, default=math.nan), ratio=ratio,
        verdict="ERROR" if errors else verdict(ratio, comparable), errors=errors)


def seed_jobs(experiments: list[Experiment], seeds: list[int]) -> list[tuple[int, list[str]]]:
    """The work of a several-seed run as (seed, experiment names) jobs, longest first.

    A forecast that uses a trained model (``iterative_10``) joins the job that trains
    it, so the model is trained once per seed. The cost of a job is Keras 3's fit time
    of its experiments, a fair guide to ours: longest first keeps the workers busy to the end.
    """
    chosen = {e.name for e in experiments}
    groups: dict[str, list[Experiment]] = {}
    for e in experiments:
        owner = e.uses if e.uses in chosen else e.name
        groups.setdefault(owner, []).append(e)
    jobs = [(sum(e.keras_fit_seconds or 1.0 for e in group), seed, [e.name for e in group])
            for group in groups.values() for seed in seeds]
    jobs.sort(key=lambda job: -job[0])  # stable: seeds in order within equal costs
    return [(seed, names) for _, seed, names in jobs]


def _seed_worker_setup(backend_name: str, threads: int) -> None:
    """Each worker process: the parent's backend, and ``threads`` BLAS threads (1: one per process)."""
    backend.set_backend(backend_name)
    if threads > 0:
        limit_blas_threads(threads)


def run_seed_job(seed: int, names: list[str], epochs: int, n_series: int, comparable: bool) -> list[Result]:
    """Train (or forecast) ``names`` at ``seed`` in this process; results without models, for pickling.

    Each model is built right after ``set_random_seed(seed)`` and the data come from
    ``seed``, so a figure depends on its seed only, not on the process or the job order.
    """
    run = ChapterRun(epochs=epochs, n_series=n_series, seed=seed, verbose=False, comparable=comparable)
    return [dataclasses.replace(run.run(get_experiment(name)), model=None, predictions=None)
            for name in names]


def run_seeds(names=None, seeds=ACCEPTANCE_SEEDS, epochs=None, quick=False, out="chapter_out",
              first_seed=SEED, workers=None, threads=1, verbose=True, command=None) -> list[SeedSummary]:
    """The acceptance check: every experiment at seeds ``first_seed``, ..., ``first_seed + seeds - 1``.

    Prints and returns, per experiment, the median, smallest and largest figure over
    the seeds and the verdict of median / the larger reference (PASS when <= 1.15);
    writes report.md and results.json (every seed's figure) to ``out`` (None: nothing).

    The (seed, experiment) jobs run in ``workers`` processes (default: one per usable
    CPU, at most one per job), each with ``threads`` BLAS threads; a figure is the same
    in any process, so the run is deterministic per seed. ``workers=1`` runs in this
    process, with its BLAS threads as they are (a different thread count may change the
    last digits of a figure: it changes the order of BLAS's sums).
    """
    experiments = select_experiments(names)
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    seed_values = list(range(first_seed, first_seed + seeds))
    epochs = epochs if epochs is not None else (QUICK_EPOCHS if quick else EPOCHS)
    n_series = QUICK_SERIES if quick else 10000
    jobs = seed_jobs(experiments, seed_values)
    workers = max(1, min(len(jobs), workers or _usable_cpus() or 1))
    log = print if verbose else (lambda *args, **kwargs: None)
    log(f"{len(experiments)} experiments x seeds {seed_values[0]}..{seed_values[-1]}: {len(jobs)} jobs "
        f"in {workers} process{'es' if workers > 1 else ''}, {epochs} epochs, {n_series} series", flush=True)
    start = time.perf_counter()
    by_key: dict[tuple[str, int], Result] = {}

    def record(k, seed, results):
        for r in results:
            by_key[(r.name, seed)] = r
        done = "; ".join(f"{r.name} {('ERROR ' + r.error) if r.error else format(r.ours, '.6f')} "
                         f"({r.seconds:.1f} s)" for r in results)
        log(f"[{k}/{len(jobs)}] seed {seed}: {done}  [{time.perf_counter() - start:.0f} s]", flush=True)

    args = (epochs, n_series, not quick)
    if workers == 1:
        for k, (seed, job_names) in enumerate(jobs, 1):
            record(k, seed, run_seed_job(seed, job_names, *args))
    else:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited BLAS pool
        setup = (backend.get_backend(), threads)
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                    initializer=_seed_worker_setup, initargs=setup) as pool:
            futures = {pool.submit(run_seed_job, seed, job_names, *args): seed for seed, job_names in jobs}
            for k, future in enumerate(concurrent.futures.as_completed(futures), 1):
                record(k, futures[future], future.result())
    total = time.perf_counter() - start
    summaries = [summarize_seeds(e, [by_key[(e.name, s)] for s in seed_values], comparable=not quick)
                 for e in experiments]
    info = {**_run_context(command or f"run_seeds(names={names!r}, seeds={seeds}, epochs={epochs}, "
                                      f"quick={quick}, out={out!r}, first_seed={first_seed})"),
            "quick": quick, "epochs": epochs, "n_series": n_series, "seeds": seed_values,
            "batch_size": BATCH_SIZE, "workers": workers, "threads_per_worker": threads,
            "total_seconds": total,
            "our_fit_seconds": sum(sum(s.seconds) for s in summaries)}
    table = seeds_table(summaries, quick=quick)
    log("\n" + table + "\n\n" + seeds_figures_table(summaries) + "\n\n" + seeds_timing_line(info))
    if out is not None:
        write_seeds_report(pathlib.Path(out), summaries, info, table)
        log(f"report written to {pathlib.Path(out) / 'report.md'}")
    return summaries


def seeds_table(summaries: list[SeedSummary], quick: bool = False) -> str:
    """The acceptance table: per experiment, the median, smallest and largest figure and the verdict."""
    header = ["experiment", "figure", "seeds", "median", "smallest", "largest", "reference",
              "median / reference", "verdict"]
    rows = [[s.name, _figure_label(s.figure), f"{s.seeds[0]}-{s.seeds[-1]}" if len(s.seeds) > 1
             else str(s.seeds[0]), _fmt(s.median), _fmt(s.smallest), _fmt(s.largest), _fmt(s.reference),
             _fmt(s.ratio, ".2f"), s.verdict] for s in summaries]
    note = (f"reference = the larger of the course's and Keras 3's figure. The rule: an experiment passes "
            f"when the median of its figure over seeds {_seed_span(ACCEPTANCE_SEEDS)} is within "
            f"{PASS_RATIO}x of the reference.")
    seeds = summaries[0].seeds if summaries else []
    if seeds != list(range(SEED, SEED + ACCEPTANCE_SEEDS)):
        note += f" This run used seeds {seeds[0]} to {seeds[-1]}, not the rule's." if seeds else ""
    if quick:
        note += " QUICK MODE: small data and few epochs, so the figures are not comparable (verdict '-')."
    return markdown_table(header, rows) + "\n\n" + note


def seeds_figures_table(summaries: list[SeedSummary]) -> str:
    """Every seed's figure, one column per seed."""
    if not summaries:
        return ""
    header = ["experiment"] + [f"seed {s}" for s in summaries[0].seeds]
    return markdown_table(header, [[s.name] + [_fmt(f) for f in s.figures] for s in summaries])


def seeds_timing_line(info: dict) -> str:
    return (f"total wall time {info['total_seconds']:.1f} s in {info['workers']} process"
            f"{'es' if info['workers'] > 1 else ''} ({info['threads_per_worker']} BLAS thread each); "
            f"fit time summed over experiments and seeds {info['our_fit_seconds']:.1f} s")


def write_seeds_report(out: pathlib.Path, summaries: list[SeedSummary], info: dict, table: str) -> None:
    """report.md (the acceptance table and every seed's figure) and results.json."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# The chapter's acceptance check, over seeds", "",
        f"- command: `{info['command']}`",
        f"- backend: {info['backend']} ({info['device']})",
        f"- machine: {_machine_line(info)}",
        f"- date: {info['date']}",
        f"- data: {info['n_series']} series per task, seeds {info['seeds'][0]} to {info['seeds'][-1]} "
        f"(each seed makes its data and its weights); {info['epochs']} epochs, batch {info['batch_size']}"
        + (" (quick mode)" if info["quick"] else ""),
        f"- time: {seeds_timing_line(info)}", "",
        "## Acceptance (validation set)", "", table, "",
        "## Every seed's figure", "", seeds_figures_table(summaries), "",
    ]
    errors = [e for s in summaries for e in (f"{s.name}, {m}" for m in s.errors)]
    if errors:
        lines += ["## Errors", ""] + [f"- {e}" for e in errors] + [""]
    (out / "report.md").write_text("\n".join(lines))
    payload = {**info, "rule": {"seeds": list(range(SEED, SEED + ACCEPTANCE_SEEDS)), "ratio": PASS_RATIO},
               "summaries": [s.to_dict() for s in summaries]}
    (out / "results.json").write_text(json.dumps(payload, indent=2))


# --- BLAS threads ------------------------------------------------------------------------------
# --- table and report ---------------------------------------------------------------------------
def _fmt(value, spec=".6f", missing="-") -> str:
    return missing if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else format(value, spec)


def results_table(results: list[Result], quick: bool = False) -> str:
    """The chapter's table in Markdown (readable as plain text too)."""
    header = ["experiment", "figure", "ours", "course", "Keras 3", "ratio", f"vs {PASS_RATIO}x",
              "all steps: ours (Keras 3)", "our s"] + ([] if quick else ["Keras s"])
    rows = []
    for r in results:
        all_steps = "" if r.val_loss is None else f"{r.val_loss:.4f} ({_fmt(r.keras3_val_loss, '.4f')})"
        rows.append([r.name, _figure_label(r.figure), _fmt(r.ours), _fmt(r.course), _fmt(r.keras3),
                     _fmt(r.ratio, ".2f"), r.verdict, all_steps, f"{r.seconds:.1f}"]
                    + ([] if quick else [_fmt(r.keras_fit_seconds, ".1f")]))
    note = (f"ratio = ours / the larger reference, shown for information: one seed's figure varies with the "
            f"seed, and the acceptance rule is the median over seeds {_seed_span(ACCEPTANCE_SEEDS)} within "
            f"{PASS_RATIO}x (python -m tinyrnn chapter --seeds {ACCEPTANCE_SEEDS}). "
            "'all steps' is the validation MSE over every time step of a seq-to-seq model.")
    if quick:
        note += (" QUICK MODE: small data and few epochs, so the figures are not comparable (marked '-'); "
                 "Keras 3's fit times (full data, 20 epochs) are left out.")
    return markdown_table(header, rows) + "\n\n" + note


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table with padded columns (readable as plain text too)."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"
             for row in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _seed_span(n: int, first: int = SEED) -> str:
    return f"{first} to {first + n - 1}" if n > 1 else str(first)


def run_info(results, run: ChapterRun, quick, total_seconds, command) -> dict:
    """Command, backend, machine, date and the time comparison with Keras 3."""
    timed = [r for r in results if r.keras_fit_seconds is not None and r.epochs is not None and not r.error]
    return {
        **_run_context(command),
        "quick": quick, "epochs": run.epochs, "n_series": run.n_series, "seed": run.seed,
        "batch_size": BATCH_SIZE,
        "total_seconds": total_seconds,
        "our_fit_seconds": sum(r.seconds for r in timed),
        "keras_fit_seconds": sum(r.keras_fit_seconds for r in timed),
        "timed_experiments": [r.name for r in timed],
    }


def _run_context(command) -> dict:
    """Command, date, backend, device and machine of a run."""
    return {
        "command": command,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "backend": backend.get_backend(),
        "device": _device_name(),
        "machine": {"platform": platform.platform(), "processor": _cpu_name(), "cpu_count": os.cpu_count(),
                    "usable_cpus": _usable_cpus(), "python": platform.python_version(),
                    "numpy": numpy.__version__, "blas_threads": blas_threads()},
    }


def _usable_cpus() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _machine_line(info: dict) -> str:
    machine = info["machine"]
    return (f"{machine['platform']}, {machine['processor']}, {machine['cpu_count']} CPUs "
            f"({machine['usable_cpus']} usable); Python {machine['python']}, NumPy {machine['numpy']} "
            f"(BLAS threads: {machine['blas_threads'] or 'unknown'})")


def timing_line(info: dict) -> str:
    ours, keras = info["our_fit_seconds"], info["keras_fit_seconds"]
    line = f"total wall time {info['total_seconds']:.1f} s"
    n = len(info["timed_experiments"])
    if keras and info["quick"]:
        line += f"; fit time of the {n} trained experiments {ours:.1f} s (quick mode: not comparable)"
    elif keras:
        line += (f"; fit time of the {n} trained experiments {ours:.1f} s vs Keras 3's {keras:.1f} s "
                 f"for {EPOCHS} epochs ({ours / keras:.2f}x)")
    return line


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _device_name() -> str:
    if backend.get_backend() != "cupy":
        return "CPU"
    try:
        props = backend.xp.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # the name is decoration only
        return "GPU"


def _padding_lines(out: pathlib.Path, experiment: dict) -> list[str]:
    """The masking experiment's section (``tinyrnn.padding_experiment``): its table and figure."""
    from tinyrnn import padding_experiment

    padding_experiment.plot(experiment, out / "padding_experiment.png")
    settings = experiment["settings"]
    return ["## Masking: variable-length sequences", "",
            f"Sequences of {settings['min_length']} to {settings['max_length']} steps, right-padded with "
            f"zeros (or left-padded), target the sum of the last {settings['last']} values; the same GRU "
            f"({settings['units']} units) with a Masking layer and without one. Without the mask the GRU "
            "reads the padding as data; with it, padding changes nothing, however long.", "",
            padding_experiment.summary_table(experiment), "",
            "![masked vs unmasked training](padding_experiment.png)", ""]


def write_report(out: pathlib.Path, results, run: ChapterRun, extra: dict, info: dict, table: str) -> None:
    """report.md, results.json and the PNG figures the report shows."""
    out.mkdir(parents=True, exist_ok=True)
    figures = make_figures(out, results, run, extra)
    lines = [
        "# The chapter, reproduced by tinyrnn", "",
        f"- command: `{info['command']}`",
        f"- backend: {info['backend']} ({info['device']})",
        f"- machine: {_machine_line(info)}",
        f"- date: {info['date']}",
        (f"- data: {info['n_series']} series per task, seed {info['seed']}; {info['epochs']} epochs, "
         f"batch {info['batch_size']}" if results else f"- data: the text chapter only, seed {info['seed']}")
        + (" (quick mode)" if info["quick"] else ""),
        f"- time: {timing_line(info)}", "",
    ]
    if results:
        lines += [
            "## Results (validation set)", "", table, "",
            "References: *course* is the book's companion notebook (TensorFlow 2); *Keras 3* is the same "
            "model in Keras 3.15 on the project's 2-core machine, seed 42, 20 epochs, batch 32 "
            "(*Keras s* is its fit time).", "",
        ]
    if "text" in extra:
        from tinyrnn import text_chapter

        text_chapter.plot_curves(extra["text"]).savefig(out / "text_learning_curves.png", dpi=100)
        lines += text_chapter.report_lines(extra["text"], "text_learning_curves.png")
    if "padding" in extra:
        lines += _padding_lines(out, extra["padding"])
    if "translation" in extra:
        from tinyrnn import translation_chapter

        lines += translation_chapter.report_section(extra["translation"]).splitlines() + [""]
    errors = [r for r in results if r.error]
    if errors:
        lines += ["## Errors", ""] + [f"- {r.name}: {r.error}" for r in errors] + [""]
    if "mc_dropout" in extra:
        mc = extra["mc_dropout"]
        lines += ["## MC dropout", "",
                  f"{mc['model']}, trained {mc['epochs']} epochs; {mc['n_samples']} stochastic passes over "
                  f"{mc['n_series']} validation series. Last-step MSE of the MC mean "
                  f"{mc['mc_mean_last_step_mse']:.4g} (one deterministic pass: "
                  f"{mc['deterministic_last_step_mse']:.4g}); mean standard deviation "
                  f"{mc['mean_std']:.3g}.", ""]
    if "long_memory" in extra:
        lines += ["## Why gates exist: the adding problem", "", LONG_MEMORY_NOTE, "",
                  long_memory.summary_table(extra["long_memory"]), "",
                  "Each entry: validation MSE as % of answering the mean, solved or not, epochs trained, "
                  "and the gradient reaching t = 1 as a fraction of the gradient at t = T.", ""]
    lines += ["## Figures", ""] if figures else []
    for filename, caption, note in figures:
        lines += [f"### {caption}", "", f"![{caption}]({filename})", ""] + ([note, ""] if note else [])
    (out / "report.md").write_text("\n".join(lines))
    payload = {**info, "results": [r.to_dict() for r in results],
               "extras": _extras_json(extra), "figures": [f for f, *_ in figures]}
    (out / "results.json").write_text(json.dumps(payload, indent=2))


def _extras_json(extra: dict) -> dict:
    payload = {}
    if "mc_dropout" in extra:
        payload["mc_dropout"] = {k: v for k, v in extra["mc_dropout"].items() if k != "plot"}
    if "long_memory" in extra:
        payload["long_memory"] = extra["long_memory"]
    if "text" in extra:
        payload["text"] = extra["text"].to_dict()
    if "padding" in extra:
        payload["padding"] = extra["padding"]
    if "translation" in extra:
        payload["translation"] = extra["translation"]
    return payload


LONG_MEMORY_NOTE = (
    "The adding problem (tinyrnn.data.adding_problem): T steps of random values in [0, 1), two of them "
    "marked, the first among the first T/10 steps and the second in the last half; the target is their "
    "sum. Each cell, SimpleRNN, LSTM and GRU with the same number of units, reads the sequence and Dense(1) "
    "answers from h_T, so the first value must be kept in the state for at least T/2 steps and the "
    "gradient that teaches the cell to keep it must travel back as far. Solved: validation MSE at most 5% "
    "of answering the mean (remembering only the recent value scores 50%); training stops once solved or "
    "after the epoch budget. Left: the error after training against T; middle: the error per epoch at "
    "the longest T; right: after that training, the gradient of the answer with respect to each hidden "
    "state, as a fraction of its value at t = T. The SimpleRNN's passes through tanh' U^T at every step "
    "and fades by many orders of magnitude (it can reach exactly 0 in float32); the LSTM's cell state "
    "(dc_{t-1} = f_t dc_t) and the GRU's carry (dh_{t-1} += z_t dh_t) keep it alive where the learnt "
    "gates stay near 1."
)


def make_figures(out: pathlib.Path, results, run: ChapterRun, extra: dict) -> list[tuple[str, str, str]]:
    """Save the report's PNGs; returns [(file name, caption, note)]."""
    from tinyrnn import plot  # matplotlib is imported only when figures are made

    by_name = {r.name: r for r in results if not r.error}
    figures = []

    def save(fig, filename, caption, note=""):
        fig.savefig(out / filename, dpi=100)
        figures.append((filename, caption, note))

    one_step = next((by_name[n] for n in ("deep_rnn_dense", "deep_rnn", "simple_rnn", "linear")
                     if n in by_name), None)
    if one_step is not None:
        X_valid, y_valid = run.data("one_step")["valid"]
        y_pred = one_step.model.predict(X_valid[:1])
        save(plot.plot_series(X_valid[0], y_valid[0], y_pred[0],
                              title=f"{one_step.name}: one step ahead (validation series 0)"),
             "series_forecast.png", f"A validation series, its next value and the {one_step.name} forecast")
    histories = {r.name: r.history for r in results if r.history and r.name in by_name}
    if histories:
        save(plot.plot_learning_curves_grid(histories, loss_name="MSE"), "learning_curves.png",
             "Learning curves (training and validation, log scale)")
    if "iterative_10" in by_name:
        X_valid, Y_valid = run.data("ten_steps")["valid"]
        save(plot.plot_multiple_forecasts(X_valid, Y_valid, by_name["iterative_10"].predictions,
                                          title="iterative_10: deep_rnn_dense fed its own forecasts"),
             "iterative_10.png", "Ten steps ahead, one step at a time (iterative_10)")
    for name in ("seq2seq", "lstm"):
        if name in by_name:
            X_valid, Y_valid = run.data("seq2seq")["valid"]
            Y_pred = by_name[name].model.predict(X_valid[:1])[:, -1]          # the last step's 10 values
            save(plot.plot_multiple_forecasts(X_valid[:1], Y_valid[:1, -1], Y_pred,
                                              title=f"{name}: ten steps at once (last time step)"),
                 f"{name}_forecast.png", f"Ten steps ahead at once ({name}, the last time step's output)")
    if "mc_dropout" in extra:
        p = extra["mc_dropout"]["plot"]
        save(plot.plot_mc_dropout(p["X"], p["mean"], p["std"], p["Y"],
                                  title="MC dropout: mean of 100 passes, band $\\pm$2 std"),
             "mc_dropout.png", "MC-dropout forecast band (GRU with dropout, validation series 0)")
    if "long_memory" in extra:
        save(plot.plot_long_memory(extra["long_memory"]), "long_memory.png",
             "Why gates exist: the adding problem at T = 20, 50, 100, SimpleRNN vs LSTM vs GRU",
             LONG_MEMORY_NOTE)
    return figures
