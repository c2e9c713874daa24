"""``python -m tinyrnn bench``: time the course's models in tinyrnn and in PyTorch, side by side.

Each workload is one training epoch (Adam, mean squared error, float32) of one
model on one data set, built once in tinyrnn and, where PyTorch is installed,
once as the equivalent PyTorch model (same layer sizes, ``batch_first``,
``torch.optim.Adam``, ``MSELoss``). Both train on the same arrays, made once
with ``tinyrnn.data``. The character model ("char") is the exception: Nadam
(PyTorch: ``NAdam`` with Keras's defaults) and sparse categorical cross-entropy
(PyTorch: ``cross_entropy`` of the logits) on the tiny-Shakespeare ids of
``tinyrnn.text``, its batches in stream order, not shuffled.

How the clock is read:

1. warm up each side once on a few batches (first calls build buffers, caches);
2. time full epochs, alternating tinyrnn then PyTorch, ``--repeats`` times, so
   a neighbour's load on a shared machine hits both sides alike;
3. report the median of each side and ratio = tinyrnn / PyTorch (below 1:
   tinyrnn is faster).

PyTorch runs with ``--threads`` threads (default: every CPU). tinyrnn runs with
its defaults, as ``fit`` does when nothing is set: every core, used by the rule
of ``tinyrnn.set_threads`` (one BLAS thread for small operations, a large
recurrent layer's batch split over the cores). ``--tinyrnn-threads`` and
``--blas-threads`` ask for something else (``set_threads``, ``set_blas_threads``).

Both sides run the same loop: shuffle, then for every batch forward, loss,
backward, one Adam update, and the batch's loss read back as a Python float
(``fit`` reports the epoch's mean loss). On the CuPy backend the device is
synchronised before each reading of the clock, and PyTorch runs on CUDA.

=============  =================================================================  ==================
workload       model                                                              data
=============  =================================================================  ==================
W1             LSTM(20, return_sequences) x 2 + TimeDistributed(Dense(10))        7000 x 50 steps,
                                                                                  1 feature, B=32
W2-gru         the same with GRU (PyTorch: nn.GRU)                                as W1
W2-simplernn   the same with SimpleRNN (PyTorch: nn.RNN, tanh)                    as W1
W3             LSTM(256) x 2 + TimeDistributed(Dense(10))                         2048 x 100 steps,
                                                                                  32 features, B=64
W4             WaveNet: Conv1D(20, 2, causal, relu, dilation r) for r in          as W1
               (1, 2, 4, 8) x 2, then Conv1D(10, 1)
char           the book's character model: Embedding(39, 16), GRU(128, return_        312 x 100 chars,
               sequences), Dense(39, softmax); Nadam, sparse cross-entropy        32 streams, B=32
W1-gpu         W1's model, one training step on one batch (GPU only)              B=32
W5             LSTM(512) x 2 + TimeDistributed(Dense(10)), per training step      256 x 100 steps,
               (GPU only)                                                         64 features
=============  =================================================================  ==================

W1, W2 and W4 forecast the next 10 values at every step (targets (B, 50, 10));
W3 and W5 train on random normal data. "char" trains on the book's 1,000,000
training characters cut into 32 streams (``tinyrnn.text.StatefulBatches``):
312 batches of 32 windows of 100 characters, batch k + 1 continuing batch k.
GPU workloads run when the backend is CuPy (``--backend cupy`` or
``TINYRNN_BACKEND=cupy``) and report milliseconds per training step; elsewhere
they are skipped with a message.

``--memory`` measures instead the peak memory of one W3 training step (see
``peak_memory_w3``) next to the activations BPTT must keep.

Usage::

    python -m tinyrnn bench                       # every workload, median of 3
    python -m tinyrnn bench --workloads W1,W3 --repeats 5
    python -m tinyrnn bench --json > bench.json   # machine-readable
    python -m tinyrnn bench --memory              # W3's peak training memory
    python -m tinyrnn bench --against ../before --workloads W3   # against another checkout (tinyrnn.compare)
    python -m tinyrnn bench --ln-cell             # ln_rnn: built-in cell vs the cell written with ops
    python -m tinyrnn bench --tinyrnn-threads 1   # tinyrnn on one core instead of its defaults
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy

from tinyrnn import activations, backend, data, optimizers, seeding, text
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    Conv1D,
    Dense,
    Embedding,
    InputLayer,
    Layer,
    LayerNormalization,
    LNSimpleRNNCell,
    SimpleRNN,
    SimpleRNNCell,
    TimeDistributed,
)
from tinyrnn.models import Sequential

N_AHEAD = 10
"""Every model forecasts 10 values per time step: outputs (B, T, 10)."""

WARMUP_BATCHES = 3
"""Batches (or training steps) each side runs before the clock starts."""

TIMED_STEPS = {False: 20, True: 2}
"""Training steps per timing of a per-step (GPU) workload: {quick: steps}."""


# --- data: made once per run ---------------------------------------------------------
@functools.cache
def course_seq2seq(quick: bool = False) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The course's sequence-to-sequence data: X (N, 50, 1), Y (N, 50, 10).

    N = 7000 series (the course's training set; 64 with ``quick``), cut from
    60-step series: ``Y[:, t, k - 1] = series[:, t + k]``.
    """
    series = data.generate_time_series(64 if quick else 7000, 50 + N_AHEAD, seed=42)  # (N, 60, 1)
    return numpy.ascontiguousarray(series[:, :-N_AHEAD]), data.seq2seq_targets(series, N_AHEAD)


@functools.cache
def random_sequences(n_sequences: int, n_steps: int, n_features: int) -> tuple[numpy.ndarray, ...]:
    """Random normal float32 data: X (N, T, D), Y (N, T, 10)."""
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((n_sequences, n_steps, n_features), dtype=numpy.float32)
    Y = rng.standard_normal((n_sequences, n_steps, N_AHEAD), dtype=numpy.float32)
    return X, Y


def w1_data(quick: bool):
    return course_seq2seq(quick)


def w1_batch(quick: bool):
    """One batch of W1's data (B=32), for the per-step GPU workload."""
    X, Y = course_seq2seq(quick)
    return X[:32], Y[:32]


def w3_data(quick: bool):
    return random_sequences(64, 10, 32) if quick else random_sequences(2048, 100, 32)


def w5_batch(quick: bool):
    return random_sequences(256, 10 if quick else 100, 64)


CHAR_STREAMS, CHAR_LENGTH = 32, 100
"""The character workload: 32 streams, windows of 100 characters (312 batches an epoch)."""


@functools.cache
def char_data(quick: bool = False) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The book's training characters as stateful batches, stacked: X, Y int64 (N, 100).

    Rows [32 k, 32 k + 32) are batch k of ``text.StatefulBatches`` (32 streams), so
    taking the rows in order, 32 at a time, replays the streams; N = 312 x 32
    (``quick``: the first 20,000 characters, 6 batches).
    """
    ids = text.load_shakespeare().train
    batches = text.StatefulBatches(ids[:20_000] if quick else ids, CHAR_LENGTH, CHAR_STREAMS)
    xs, ys = zip(*batches)
    return numpy.concatenate(xs), numpy.concatenate(ys)


# --- tinyrnn models -------------------------------------------------------------------
def stacked_rnn(layer_class, units: int = 20, n_features: int = 1) -> Sequential:
    """Two recurrent layers returning sequences, then Dense(10) at every step.

    (B, T, D) -> (B, T, H) -> (B, T, H) -> (B, T, 10).
    """
    return Sequential([
        layer_class(units, return_sequences=True, input_shape=[None, n_features]),
        layer_class(units, return_sequences=True),
        TimeDistributed(Dense(N_AHEAD)),
    ])


def char_model(n_tokens: int = 39) -> Sequential:
    """The book's character model: (B, T) ids -> Embedding(39, 16) -> GRU(128, return_sequences)
    -> Dense(39, softmax): (B, T, 39) probabilities of the next character."""
    return Sequential([
        Embedding(n_tokens, 16, input_shape=[None]),
        GRU(128, return_sequences=True),
        Dense(n_tokens, activation="softmax"),
    ])


def wavenet() -> Sequential:
    """The course's WaveNet: causal dilated Conv1D(20, 2) with rates (1, 2, 4, 8) x 2, then Conv1D(10, 1).

    (B, T, 1) -> (B, T, 20) ... -> (B, T, 10); causal padding keeps T.
    """
    dilated = [Conv1D(20, 2, padding="causal", activation="relu", dilation_rate=rate)
               for rate in (1, 2, 4, 8) * 2]
    return Sequential([InputLayer(input_shape=[None, 1]), *dilated, Conv1D(N_AHEAD, 1)])


# --- the PyTorch twins (defined on first use: PyTorch is optional) --------------------
def import_torch():
    """The ``torch`` module, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


@functools.cache
def _torch_models():
    import torch

    class StackedRNN(torch.nn.Module):
        """Two ``batch_first`` recurrent layers, then Linear(10) at every step (as ``stacked_rnn``)."""

        def __init__(self, rnn_class, units, n_features):
            super().__init__()
            self.rnns = torch.nn.ModuleList([rnn_class(n_features, units, batch_first=True),
                                             rnn_class(units, units, batch_first=True)])
            self.head = torch.nn.Linear(units, N_AHEAD)

        def forward(self, x):                                  # (B, T, D)
            for rnn in self.rnns:
                x, _ = rnn(x)                                  # (B, T, H)
            return self.head(x)                                # (B, T, 10)

    class WaveNet(torch.nn.Module):
        """``wavenet`` in PyTorch: Conv1d is channels-first, causal padding is a left F.pad."""

        def __init__(self):
            super().__init__()
            self.rates = (1, 2, 4, 8) * 2
            self.convs = torch.nn.ModuleList([torch.nn.Conv1d(1 if i == 0 else 20, 20, 2, dilation=rate)
                                              for i, rate in enumerate(self.rates)])
            self.head = torch.nn.Conv1d(20, N_AHEAD, 1)

        def forward(self, x):                                  # (B, T, 1)
            x = x.transpose(1, 2)                              # (B, 1, T), channels first
            for conv, rate in zip(self.convs, self.rates):
                x = torch.relu(conv(torch.nn.functional.pad(x, (rate, 0))))  # (K - 1) r zeros on the left
            return self.head(x).transpose(1, 2)                # (B, T, 10)

    class CharModel(torch.nn.Module):
        """``char_model`` in PyTorch; it returns logits (``cross_entropy`` applies the softmax)."""

        def __init__(self, n_tokens=39):
            super().__init__()
            self.embed = torch.nn.Embedding(n_tokens, 16)
            self.gru = torch.nn.GRU(16, 128, batch_first=True)
            self.head = torch.nn.Linear(128, n_tokens)

        def forward(self, ids):                                # (B, T) int64
            h, _ = self.gru(self.embed(ids))                   # (B, T, 128)
            return self.head(h)                                # (B, T, 39) logits

    return StackedRNN, WaveNet, CharModel


def torch_stacked_rnn(rnn_name: str, units: int = 20, n_features: int = 1):
    """``stacked_rnn`` in PyTorch; ``rnn_name`` is "LSTM", "GRU" or "RNN" (tanh)."""
    import torch

    StackedRNN, *_ = _torch_models()
    return StackedRNN(getattr(torch.nn, rnn_name), units, n_features)


def torch_wavenet():
    _, WaveNet, _ = _torch_models()
    return WaveNet()


def torch_char_model():
    *_, CharModel = _torch_models()
    return CharModel()


# --- workloads as data -------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """One model on one data set, in tinyrnn and in PyTorch.

    ``make_data(quick)`` returns float32 (X, Y); ``quick`` gives tiny sizes (for
    tests). A ``per_step`` workload times training steps on one batch (X, Y)
    and runs only on a GPU; the others time epochs over (X, Y).
    """

    name: str
    model: str
    build_tinyrnn: Callable[[], Sequential]
    build_torch: Callable
    make_data: Callable[[bool], tuple]
    batch_size: int
    per_step: bool = False
    loss: str = "mse"              # or "sparse_categorical_crossentropy"
    optimizer: str = "adam"        # or "nadam" (Keras's defaults on both sides)
    shuffle: bool = True           # False: batches in order (the character model's streams)


def recurrent_workload(name, layer_class, units, n_features, make_data, batch_size, per_step=False):
    """A ``stacked_rnn`` workload; its PyTorch twin uses the torch.nn class of the same cell."""
    torch_name = {LSTM: "LSTM", GRU: "GRU", SimpleRNN: "RNN"}[layer_class]
    model = f"{layer_class.__name__}({units}) x 2 + TimeDistributed(Dense({N_AHEAD}))"
    return Workload(name, model + (", one training step" if per_step else ""),
                    functools.partial(stacked_rnn, layer_class, units, n_features),
                    functools.partial(torch_stacked_rnn, torch_name, units, n_features),
                    make_data, batch_size, per_step)


WORKLOADS = [
    recurrent_workload("W1", LSTM, 20, 1, w1_data, 32),
    recurrent_workload("W2-gru", GRU, 20, 1, w1_data, 32),
    recurrent_workload("W2-simplernn", SimpleRNN, 20, 1, w1_data, 32),
    recurrent_workload("W3", LSTM, 256, 32, w3_data, 64),
    Workload("W4", "WaveNet: Conv1D(20, 2) rates (1, 2, 4, 8) x 2 + Conv1D(10, 1)",
             wavenet, torch_wavenet, w1_data, 32),
    Workload("char", "Embedding(39, 16), GRU(128, rs), Dense(39, softmax); Nadam",
             char_model, torch_char_model, char_data, CHAR_STREAMS,
             loss="sparse_categorical_crossentropy", optimizer="nadam", shuffle=False),
    recurrent_workload("W1-gpu", LSTM, 20, 1, w1_batch, 32, per_step=True),
    recurrent_workload("W5", LSTM, 512, 64, w5_batch, 256, per_step=True),
]
"""Every workload, in the order they run and print."""


# --- the two trainers ----------------------------------------------------------------------
class TinyrnnTrainer:
    """A workload's tinyrnn model, compiled with its loss and optimizer (Adam and MSE for
    most), and its data on the backend."""

    def __init__(self, workload: Workload, X, Y):
        seeding.set_random_seed(0)
        self.model = workload.build_tinyrnn()
        self.model.compile(loss=workload.loss, optimizer=optimizers.get(workload.optimizer))
        self.X, self.Y = backend.asarray(X), backend.asarray(Y)
        self.model.build(self.X.shape)
        self.batch_size, self.shuffle = workload.batch_size, workload.shuffle

    def epoch(self, n_samples: int | None = None) -> None:
        """One epoch of ``fit`` over the first ``n_samples`` samples (all by default)."""
        X, Y = self.X[:n_samples], self.Y[:n_samples]
        self.model.fit(X, Y, epochs=1, batch_size=self.batch_size, shuffle=self.shuffle, verbose=0)

    def step(self) -> None:
        """One training step on the whole of X (one batch)."""
        self.model.train_step(self.X, self.Y)

    def synchronize(self) -> None:
        if backend.get_backend() == "cupy":
            backend.xp.cuda.Device().synchronize()


class TorchTrainer:
    """The PyTorch twin: the same loop as ``Sequential.fit`` (shuffle, step, read the loss back)."""

    def __init__(self, workload: Workload, X, Y, device: str):
        torch = import_torch()
        torch.manual_seed(0)
        self.torch, self.device = torch, device
        self.model = workload.build_torch().to(device).train()
        parameters = self.model.parameters()
        if workload.optimizer == "nadam":   # Keras's Nadam: lr 1e-3, betas (0.9, 0.999), eps 1e-7, and
            # its momentum schedule 0.96**t, which is torch's 0.96**(t * momentum_decay) with momentum_decay 1
            self.optimizer = torch.optim.NAdam(parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-7,
                                               momentum_decay=1.0)
        else:
            self.optimizer = torch.optim.Adam(parameters)
        if workload.loss == "sparse_categorical_crossentropy":   # logits (B, T, C), ids (B, T)
            self.loss = lambda logits, ids: torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), ids.reshape(-1))
        else:
            self.loss = torch.nn.MSELoss()
        self.X, self.Y = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)
        self.batch_size, self.shuffle = workload.batch_size, workload.shuffle

    def train_on_batch(self, xb, yb) -> float:
        self.optimizer.zero_grad()
        loss = self.loss(self.model(xb), yb)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def epoch(self, n_samples: int | None = None) -> None:
        X, Y = self.X[:n_samples], self.Y[:n_samples]
        order = (self.torch.randperm(len(X), device=self.device) if self.shuffle
                 else self.torch.arange(len(X), device=self.device))
        total = 0.0
        for start in range(0, len(X), self.batch_size):
            idx = order[start:start + self.batch_size]
            total += self.train_on_batch(X[idx], Y[idx]) * len(idx)

    def step(self) -> None:
        self.train_on_batch(self.X, self.Y)

    def synchronize(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def warm_up(trainer, workload: Workload) -> None:
    """A few batches (or steps) before the clock starts."""
    if workload.per_step:
        for _ in range(WARMUP_BATCHES):
            trainer.step()
    else:
        trainer.epoch(WARMUP_BATCHES * workload.batch_size)
    trainer.synchronize()


def time_once(trainer, workload: Workload, quick: bool) -> float:
    """Seconds for one epoch, or per training step for a per-step workload."""
    steps = TIMED_STEPS[quick]
    trainer.synchronize()
    start = time.perf_counter()
    if workload.per_step:
        for _ in range(steps):
            trainer.step()
    else:
        trainer.epoch()
    trainer.synchronize()
    elapsed = time.perf_counter() - start
    return elapsed / steps if workload.per_step else elapsed


# --- running workloads ------------------------------------------------------------------------
@dataclass
class Result:
    """One workload's timings (seconds per epoch, or per step when ``unit == "step"``)."""

    workload: str
    model: str
    data: str
    unit: str
    tinyrnn_s: float | None = None
    torch_s: float | None = None
    ratio: float | None = None
    tinyrnn_threads: int = 1         # backend.threads() under tinyrnn ("threads" is PyTorch's)
    blas_threads: int | str = "rule"  # set_blas_threads under tinyrnn; "rule": the engine's (set_threads)
    tinyrnn_times: list = field(default_factory=list)
    torch_times: list = field(default_factory=list)
    note: str | None = None      # why the torch side or the whole workload did not run
    skipped: bool = False


def torch_device() -> str | None:
    """Where PyTorch runs: on the same kind of device as tinyrnn, or None (no torch, or no CUDA)."""
    torch = import_torch()
    if torch is None:
        return None
    if backend.get_backend() == "cupy":
        return "cuda" if torch.cuda.is_available() else None
    return "cpu"


def torch_missing_note() -> str:
    return "torch not installed" if import_torch() is None else "torch has no CUDA: tinyrnn timed alone"


def describe_data(workload: Workload, X) -> str:
    if X.ndim == 2:                                    # token ids (N, T)
        N, T = X.shape
        return f"{N // workload.batch_size} x {T} chars, B={workload.batch_size}"
    N, T, D = X.shape
    what = f"{T} steps, {D} feature{'s' if D > 1 else ''}, B={workload.batch_size}"
    return what if workload.per_step else f"{N} x {what}"


def run_workload(workload: Workload, repeats: int, quick: bool) -> Result:
    """Warm up both sides, then time them alternating ``repeats`` times; medians and ratio.

    tinyrnn runs with its current settings: its defaults unless ``set_threads`` or
    ``set_blas_threads`` were called (``--tinyrnn-threads``, ``--blas-threads``)."""
    X, Y = workload.make_data(quick)
    unit = "step" if workload.per_step else "epoch"
    result = Result(workload.name, workload.model, describe_data(workload, X), unit)
    if workload.per_step and backend.get_backend() != "cupy":
        result.skipped, result.note = True, "GPU workload: needs the cupy backend (--backend cupy)"
        return result
    result.tinyrnn_threads = backend.threads()
    result.blas_threads = backend.blas_threads_override() or "rule"
    tiny = TinyrnnTrainer(workload, X, Y)
    device = torch_device()
    twin = TorchTrainer(workload, X, Y, device) if device else None
    for trainer in (tiny, twin):
        if trainer is not None:
            warm_up(trainer, workload)
    for _ in range(repeats):
        result.tinyrnn_times.append(time_once(tiny, workload, quick))
        if twin is not None:
            result.torch_times.append(time_once(twin, workload, quick))
    result.tinyrnn_s = statistics.median(result.tinyrnn_times)
    if twin is None:
        result.note = torch_missing_note()
    else:
        result.torch_s = statistics.median(result.torch_times)
        result.ratio = result.tinyrnn_s / result.torch_s
    return result


# --- peak memory ------------------------------------------------------------------------------
def lstm_activation_bytes(n_layers: int, n_steps: int, batch_size: int, units: int, itemsize: int = 4) -> int:
    """Bytes of the activations BPTT must keep for a stack of LSTM layers.

    Per layer, per time step and per sequence, backward reads from the forward pass

        i, f, g, o   4H   the gates (sigmoid / tanh outputs; their derivatives come from them)
        c_t          H    the cell state (c_{t-1} of the next step: the same array)
        tanh(c_t)    H
        h_t          H    the output, input of the next layer and of the recurrent product

    so A = L x T x B x 7H x itemsize bytes. For W3 (L=2, T=100, B=64, H=256,
    float32): 2 x 100 x 64 x 1792 x 4 = 91,750,400 bytes (87.5 MiB). The input
    batch (T B D) and the head's output (T B 10) add about 1% and are left out.
    """
    return n_layers * n_steps * batch_size * 7 * units * itemsize


def traced_peak(run: Callable[[], object]) -> int:
    """Bytes ``run()`` held at most beyond what was allocated before it (``tracemalloc``)."""
    was_tracing = tracemalloc.is_tracing()  # leave a caller's tracing running
    if not was_tracing:
        tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak - before


def peak_memory_w3(batch_size: int = 64, n_steps: int = 100, units: int = 256, n_features: int = 32) -> dict:
    """Peak memory of one W3 training step in tinyrnn, next to ``lstm_activation_bytes``.

    Builds W3's model, runs one step (so the weights, gradients and Adam's
    slots exist), then traces one more step with ``tracemalloc`` (NumPy reports
    its array allocations to it). The peak is the most memory the step held at
    once beyond what existed before it: activations, caches and temporaries.

    Returns {"peak_bytes", "activation_bytes", "peak_over_activations"} plus the sizes.
    Host memory only: on the CuPy backend the arrays live on the GPU and are not traced.
    """
    X, Y = random_sequences(batch_size, n_steps, n_features)
    seeding.set_random_seed(0)
    model = stacked_rnn(LSTM, units, n_features)
    model.compile(loss="mse", optimizer=optimizers.Adam())
    X, Y = backend.asarray(X), backend.asarray(Y)
    model.build(X.shape)
    model.train_step(X, Y)
    peak = traced_peak(lambda: model.train_step(X, Y))
    activations = lstm_activation_bytes(2, n_steps, batch_size, units, X.dtype.itemsize)
    return {"workload": "W3-memory", "batch_size": batch_size, "n_steps": n_steps, "units": units,
            "peak_bytes": peak, "activation_bytes": activations, "peak_over_activations": peak / activations}


# --- the machine -----------------------------------------------------------------------------
def blas_name() -> str:
    """NumPy's BLAS, from ``numpy.show_config`` (NumPy >= 2), or "unknown"."""
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy prints its config instead of returning it
        return "unknown"


def device_name() -> str:
    if backend.get_backend() != "cupy":
        return "cpu"
    props = backend.xp.cuda.runtime.getDeviceProperties(backend.xp.cuda.Device().id)
    name = props["name"]
    return f"cuda ({name.decode() if isinstance(name, bytes) else name})"


def machine_info(threads: int) -> dict:
    torch = import_torch()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python_version": platform.python_version(),
        "numpy_version": numpy.__version__,
        "blas": blas_name(),
        "backend": backend.get_backend(),
        "device": device_name(),
        "threads": threads,
        "torch_version": None if torch is None else torch.__version__,
        "torch_device": torch_device(),
    }


def limit_torch_threads(threads: int) -> None:
    torch = import_torch()
    if torch is not None:
        torch.set_num_threads(threads)


def set_tinyrnn_threads(threads: int | None, blas_threads: int | None) -> None:
    """Ask tinyrnn for other threads than its defaults (None: leave the default).

    ``threads``: ``backend.set_threads`` (0: every core, the default); ``blas_threads``:
    ``backend.set_blas_threads`` for every product inside the engine (0: every core)."""
    if threads is not None:
        backend.set_threads(threads or None)
    if blas_threads is not None:
        backend.set_blas_threads(blas_threads or os.cpu_count())


# --- output ------------------------------------------------------------------------------------
COLUMNS = "{:<14}{:<64}{:<36}{:>8}{:>6}{:>10}{:>10}{:>8}"


def format_time(seconds: float | None, unit: str) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f} ms" if unit == "step" else f"{seconds:.3f} s"


def format_row(result: Result) -> str:
    if result.skipped:
        return f"{result.workload:<14}skipped: {result.note}"
    ratio = "-" if result.ratio is None else f"{result.ratio:.2f}x"
    row = COLUMNS.format(result.workload, result.model, result.data, result.tinyrnn_threads,
                         result.blas_threads, format_time(result.tinyrnn_s, result.unit),
                         format_time(result.torch_s, result.unit), ratio)
    return row + (f"   ({result.note})" if result.note else "")


def print_header(info: dict, repeats: int) -> None:
    torch = ("torch not installed" if info["torch_version"] is None
             else f"torch {info['torch_version']} on {info['torch_device'] or 'no CUDA device'}")
    print(f"tinyrnn bench: one training epoch (Adam, MSE, float32; char: Nadam, sparse cross-entropy) per "
          f"workload; median of {repeats}, tinyrnn and torch alternating")
    print(f"machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs, "
          f"Python {info['python_version']}")
    print(f"numpy {info['numpy_version']} (BLAS: {info['blas']}); tinyrnn backend {info['backend']} on "
          f"{info['device']}; {torch}; {info['threads']} threads")
    print("threads, blas = tinyrnn's cores (backend.threads()) and NumPy's BLAS threads inside the engine; "
          "'rule': tinyrnn's\ndefaults, as fit runs (one BLAS thread for small operations, a large recurrent "
          "layer's batch split over the cores)")
    print()
    print(COLUMNS.format("workload", "model", "data", "threads", "blas", "tinyrnn", "torch", "ratio"))


def print_memory(memory: dict) -> None:
    mib = 2.0**20
    print(f"W3 peak memory of one training step (tracemalloc, backend {backend.get_backend()}): "
          f"{memory['peak_bytes'] / mib:.1f} MiB")
    print(f"activations BPTT must keep, 2 layers x T x B x 7H x 4 bytes "
          f"(T={memory['n_steps']}, B={memory['batch_size']}, H={memory['units']}): "
          f"{memory['activation_bytes'] / mib:.1f} MiB")
    print(f"peak / activations: {memory['peak_over_activations']:.2f}x")


# --- a cell written with operations vs the hand-derived one (--ln-cell) ---------------------------
class KerasLNCell(Layer):
    """The course's layer-normalised cell written the Keras way (cell protocol, recorded backward):

        z_t = SimpleRNNCell(units, activation=None)(x_t, h_{t-1})
        h_t = tanh(LayerNormalization()(z_t))

    Its weights are ``LNSimpleRNNCell``'s in the same order (kernel, recurrent_kernel, bias,
    gamma, beta); each step is three recorded calls whose backward passes are the pieces' own."""

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.state_size = units
        self.output_size = units
        self.simple_rnn_cell = SimpleRNNCell(units, activation=None)
        self.layer_norm = LayerNormalization()
        self.activation = activations.get(activation)

    def call(self, inputs, states):
        outputs, new_states = self.simple_rnn_cell(inputs, states)
        norm_outputs = self.activation(self.layer_norm(outputs))
        return norm_outputs, [norm_outputs]


def ln_rnn_model(cell_class) -> Sequential:
    """The chapter's ``ln_rnn`` experiment with the given cell class:
    RNN(cell(20), return_sequences) x 2, TimeDistributed(Dense(10))."""
    return Sequential([
        RNN(cell_class(20), return_sequences=True, input_shape=[None, 1]),
        RNN(cell_class(20), return_sequences=True),
        TimeDistributed(Dense(10)),
    ])


def compare_ln_cells(epochs: int = 20, n_series: int = 10000, seed: int = 42, verbose: int = 0) -> dict:
    """Train the chapter's ``ln_rnn`` experiment twice in this process, with the built-in
    ``LNSimpleRNNCell`` (hand-derived backward) and with ``KerasLNCell`` (recorded backward),
    from the same initial weights on the same data and shuffles (seed ``seed``; Adam, batch 32,
    validation each epoch, one BLAS thread as the chapter runs).

    Returns both fit times and figures (the validation MSE of the last time step) and
    ``time_ratio`` = recorded / built-in, ``figure_ratio`` = recorded / built-in."""
    from tinyrnn import chapter

    experiment = chapter.get_experiment("ln_rnn")
    course = data.load_course_data("seq2seq", seed=seed, n_series=n_series)
    (X_train, Y_train), (X_valid, Y_valid) = course["train"], course["valid"]
    seeding.set_random_seed(seed)
    models = {"builtin": ln_rnn_model(LNSimpleRNNCell), "recorded": ln_rnn_model(KerasLNCell)}
    for model in models.values():
        model.predict(X_train[:1])                 # builds every weight (a cell's on its first step)
    models["recorded"].set_weights(models["builtin"].get_weights())
    out = {"epochs": epochs, "n_train": len(X_train), "n_valid": len(X_valid), "seed": seed}
    backend.limit_blas_threads(1)
    for name, model in models.items():
        model.compile(loss="mse", optimizer=experiment.make_optimizer(), metrics=["last_time_step_mse"])
        seeding.set_random_seed(seed)                          # the same shuffles for both
        start = time.perf_counter()
        history = model.fit(X_train, Y_train, epochs=epochs, batch_size=chapter.BATCH_SIZE,
                            validation_data=(X_valid, Y_valid), verbose=verbose)
        out[f"{name}_s"] = time.perf_counter() - start
        out[f"{name}_figure"] = float(history.history[experiment.history_key][-1])
    out["time_ratio"] = out["recorded_s"] / out["builtin_s"]
    out["figure_ratio"] = out["recorded_figure"] / out["builtin_figure"]
    out["reference"] = experiment.reference
    return out


def print_ln_cells(result: dict) -> None:
    print(f"ln_rnn experiment, {result['epochs']} epochs, {result['n_train']} train / {result['n_valid']} "
          f"valid series, seed {result['seed']}, the same initial weights and shuffles")
    print(f"{'cell':<44} {'fit time':>10} {'last-step val MSE':>18}")
    print(f"{'LNSimpleRNNCell (hand-derived backward)':<44} {result['builtin_s']:>9.1f}s "
          f"{result['builtin_figure']:>18.6f}")
    print(f"{'KerasLNCell (operations, recorded backward)':<44} {result['recorded_s']:>9.1f}s "
          f"{result['recorded_figure']:>18.6f}")
    print(f"ratio recorded / built-in: time {result['time_ratio']:.2f}x (target <= 3x), "
          f"figure {result['figure_ratio']:.3f}x (target <= 1.15x)")


# --- command line --------------------------------------------------------------------------------
def parse_args(argv) -> argparse.Namespace:
    names = [w.name for w in WORKLOADS]
    parser = argparse.ArgumentParser(
        prog="python -m tinyrnn bench",
        description="Time one training epoch of the course's models in tinyrnn and PyTorch, side by side.",
    )
    parser.add_argument("--workloads", default=",".join(names),
                        help=f"comma-separated, from {', '.join(names)} (default: all; GPU ones need cupy)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed epochs per side, median reported (default 3; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for PyTorch; default: all CPUs")
    parser.add_argument("--tinyrnn-threads", type=int, default=None,
                        help="cores for tinyrnn (tinyrnn.set_threads), 0 for every core (default: tinyrnn's "
                             "defaults, what fit gets: every core)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="threads for NumPy's BLAS inside tinyrnn (tinyrnn.set_blas_threads), 0 for "
                             "every core (default: tinyrnn's rule: one for small operations, the cores "
                             "shared with the batch split of a large recurrent layer)")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default=None,
                        help="tinyrnn's backend (default: the current one, TINYRNN_BACKEND or numpy)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results instead of a table")
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 repeat: checks that it runs")
    parser.add_argument("--memory", action="store_true",
                        help="measure the peak memory of one W3 training step instead of timing")
    parser.add_argument("--against", metavar="CHECKOUT", default=None,
                        help="instead: time this engine against the one in another checkout of tinyrnn, "
                             "alternating epochs in two processes (tinyrnn.compare); no PyTorch")
    parser.add_argument("--batches", type=int, default=4, help="--against: batches an epoch (default 4)")
    parser.add_argument("--rounds", type=int, default=10, help="--against: epochs a side (default 10)")
    parser.add_argument("--ln-cell", action="store_true",
                        help="instead: the chapter's ln_rnn experiment with the built-in LNSimpleRNNCell and "
                             "with the same cell written with operations (recorded backward), fit time and "
                             "figure of each")
    parser.add_argument("--epochs", type=int, default=20, help="--ln-cell: epochs (default 20)")
    parser.add_argument("--series", type=int, default=10000,
                        help="--ln-cell: series, split 70/20/10 as the course (default 10000)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.workloads.split(",") if name.strip()]
    by_lower = {name.lower(): name for name in names}
    unknown = [name for name in chosen if name.lower() not in by_lower]
    if unknown or not chosen:
        given = ", ".join(unknown) or "(none given)"
        parser.error(f"unknown workload(s) {given}; choose from {', '.join(names)}")
    args.workloads = [by_lower[name.lower()] for name in chosen]
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--repeats and --threads must be positive integers")
    for flag in ("blas_threads", "tinyrnn_threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            parser.error(f"--{flag.replace('_', '-')} must be 0 (every core) or a positive integer")
    return args


def main(argv=None) -> int:
    """Run the benchmark; ``argv`` excludes the program and the "bench" word. Returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.backend:
        backend.set_backend(args.backend)
    if args.against:
        return report_comparisons(args)
    if args.ln_cell:
        result = compare_ln_cells(epochs=args.epochs, n_series=args.series)
        print(json.dumps(result, indent=2)) if args.json else print_ln_cells(result)
        return 0
    threads = args.threads or os.cpu_count()
    limit_torch_threads(threads)
    set_tinyrnn_threads(args.tinyrnn_threads, args.blas_threads)
    if args.memory:
        return report_memory(args, threads)
    return report_timings(args, threads)


def report_comparisons(args) -> int:
    """``--against``: each chosen workload in this engine and in the other checkout's."""
    from tinyrnn import compare

    per_step = {w.name for w in WORKLOADS if w.per_step}
    results = [compare.compare(args.against, name, args.batches, args.rounds, args.quick)
               for name in args.workloads if name not in per_step]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(compare.format_comparison(result), flush=True)
    return 0


def report_memory(args, threads: int) -> int:
    memory = peak_memory_w3(n_steps=10, units=32) if args.quick else peak_memory_w3()
    if args.json:
        print(json.dumps([{**memory, **machine_info(threads)}], indent=2))
    else:
        print_memory(memory)
    return 0


def report_timings(args, threads: int) -> int:
    info = machine_info(threads)
    if not args.json:
        print_header(info, args.repeats)
    records, failed = [], False
    for workload in WORKLOADS:
        if workload.name not in args.workloads:
            continue
        try:
            result = run_workload(workload, args.repeats, args.quick)
        except Exception as err:  # report it and go on with the other workloads
            failed = True
            result = Result(workload.name, workload.model, "", "", skipped=True,
                            note=f"failed: {type(err).__name__}: {err}")
        records.append({**asdict(result), **info})
        if not args.json:
            print(format_row(result), flush=True)
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print("\nratio = tinyrnn / torch: below 1.00x tinyrnn is faster. Times are per epoch "
              "(GPU workloads: per training step).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
