"""Why gates exist: SimpleRNN, LSTM and GRU on a task that needs a long memory.

The task is the adding problem (``tinyrnn.data.adding_problem``): T steps of
random values, two of them marked, the first among the first tenth of the
steps and the second in the last half; the target is the sum of the two
marked values. The model is the same for every cell,

    Sequential([Cell(units, input_shape=[None, 2]), Dense(1)])

so the answer must travel from the first marker to h_T inside the recurrent
state, and the gradient that teaches the cell to keep it must travel back
just as far: through a product of about T Jacobians. A SimpleRNN multiplies
by ``diag(1 - h_t^2) U^T`` at every step and its gradient fades; an LSTM's cell
state carries ``dc_{t-1} = f_t * dc_t`` and a GRU's state ``dh_{t-1} += z_t * dh_t``,
paths the network can hold open by learning gates near 1.

``run_long_memory`` trains each cell at each T until the task is solved or
the epoch budget is spent, and then measures, on validation samples, the
gradient of the prediction with respect to every hidden state,
||dy_hat / dh_t|| (``RNN.hidden_grad_norms`` after a backward pass of ones):
how strongly the answer still depends on step t. Dividing by its value at
t = T gives the fraction of the gradient that reaches step t.

"Solved" means a validation MSE at most ``SOLVED_FRACTION`` (5%) of the
target's variance, i.e. of what answering the mean scores; remembering only
the second (recent) value scores 50%.
"""

from __future__ import annotations

import dataclasses
import time

import numpy

from tinyrnn import backend, data, seeding
from tinyrnn.layers import GRU, LSTM, Dense, SimpleRNN
from tinyrnn.models import Sequential
from tinyrnn.optimizers import Adam

CELLS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
"""The three recurrent layers compared, by name."""

SOLVED_FRACTION = 0.05
"""Solved: validation MSE <= SOLVED_FRACTION x the variance of the validation targets."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How big the experiment is: sequence lengths, units, data, and the training budget."""

    steps: tuple = (20, 50, 100)      # T, the sequence lengths tried
    units: int = 32                   # H, the same for every cell
    n_train: int = 2000
    n_valid: int = 500
    max_epochs: int = 40              # the budget; training stops early once solved
    batch_size: int = 32
    learning_rate: float = 0.01       # Adam, with clipnorm=1.0
    grad_samples: int = 100           # validation samples for the gradient measurement


FULL = Settings()
"""The chapter's run: about two minutes on 2 cores, most of it the SimpleRNN spending its budget."""

QUICK = Settings(steps=(8, 16), units=4, n_train=64, n_valid=32, max_epochs=2, grad_samples=8)
"""A smoke test of the code path (a second or two); its numbers mean nothing."""


def build_model(cell_name: str, units: int) -> Sequential:
    """``Cell(units)`` reading (B, T, 2) and ``Dense(1)`` on its last state h_T."""
    return Sequential([CELLS[cell_name](units, input_shape=[None, 2]), Dense(1)])


def output_grad_norms(model: Sequential, X) -> numpy.ndarray:
    """||dy_hat / dh_t|| for t = 1..T, over the samples of X (B, T, 2) and the units: (T,).

    One forward pass, then a backward pass of ones (B, 1) in place of a loss
    gradient, so the measure does not shrink as the error does; the first layer's
    ``hidden_grad_norms`` is read.
    """
    y_hat = model.forward(backend.asarray(X), training=True)
    model.backward(backend.xp.ones_like(y_hat))
    return model.layers[0].hidden_grad_norms


def train_until_solved(cell_name: str, n_steps: int, settings: Settings = FULL, seed: int = 42,
                       log=print) -> dict:
    """Train one cell on the adding problem of length ``n_steps``; stop once solved.

    Returns a dict of plain numbers: ``val_mse`` (one per epoch), ``baseline``
    (the variance of the validation targets), ``relative`` (the last val_mse
    over the baseline), ``solved``, ``epochs``, ``seconds``, and ``grad_norms``
    (T,) = ``output_grad_norms`` on ``settings.grad_samples`` validation samples,
    with ``reach`` = grad_norms[0] / grad_norms[-1], the fraction reaching t = 1.
    """
    n = settings.n_train + settings.n_valid
    X, y = data.adding_problem(n, n_steps, seed=seed)
    (X_train, y_train), (X_valid, y_valid) = (X[:settings.n_train], y[:settings.n_train]), \
        (X[settings.n_train:], y[settings.n_train:])
    baseline = float(y_valid.var())
    seeding.set_random_seed(seed)
    model = build_model(cell_name, settings.units)
    model.compile(loss="mse", optimizer=Adam(learning_rate=settings.learning_rate, clipnorm=1.0))
    val_mse, start = [], time.perf_counter()
    for _ in range(settings.max_epochs):
        history = model.fit(X_train, y_train, epochs=1, batch_size=settings.batch_size,
                            validation_data=(X_valid, y_valid), verbose=0)
        val_mse.append(float(history.history["val_loss"][-1]))
        if val_mse[-1] <= SOLVED_FRACTION * baseline:
            break
    seconds = time.perf_counter() - start
    grad_norms = output_grad_norms(model, X_valid[:settings.grad_samples])
    result = {
        "val_mse": val_mse, "baseline": baseline, "relative": val_mse[-1] / baseline,
        "solved": val_mse[-1] <= SOLVED_FRACTION * baseline, "epochs": len(val_mse), "seconds": seconds,
        "grad_norms": [float(g) for g in grad_norms], "reach": float(grad_norms[0] / grad_norms[-1]),
    }
    log(f"  {cell_name}({settings.units}) T={n_steps}: val MSE {val_mse[-1]:.4f} = "
        f"{result['relative']:.1%} of the baseline {baseline:.3f} after {len(val_mse)} epoch(s), "
        f"{'solved' if result['solved'] else 'NOT solved'}; gradient reaching t=1: {result['reach']:.1e} "
        f"of t=T; {seconds:.1f} s")
    return result


def run_long_memory(settings: Settings = FULL, seed: int = 42, log=print) -> dict:
    """Every cell of ``CELLS`` at every T of ``settings.steps``: the experiment behind the figure.

    Returns ``{"settings": {...}, "solved_fraction": 0.05,
    "results": {cell: {T: train_until_solved(...)}}}``, JSON-ready (T as a str key).
    """
    log(f"  adding problem, {settings.n_train} train / {settings.n_valid} valid samples, "
        f"Adam({settings.learning_rate:g}, clipnorm=1), batch {settings.batch_size}, at most "
        f"{settings.max_epochs} epochs (stop once val MSE <= {SOLVED_FRACTION:.0%} of the baseline)")
    results = {name: {str(T): train_until_solved(name, T, settings, seed, log) for T in settings.steps}
               for name in CELLS}
    return {"settings": dataclasses.asdict(settings), "solved_fraction": SOLVED_FRACTION, "results": results}


def summary_table(experiment: dict) -> str:
    """The experiment as a Markdown table: one row per cell, one column per T."""
    steps = [str(T) for T in experiment["settings"]["steps"]]
    header = "| cell | " + " | ".join(f"T = {T}" for T in steps) + " |"
    lines = [header, "|" + "---|" * (len(steps) + 1)]
    for name, by_T in experiment["results"].items():
        cells = [f"{r['relative']:.1%} {'solved' if r['solved'] else 'not solved'} "
                 f"({r['epochs']} ep), reach {r['reach']:.0e}" for r in (by_T[T] for T in steps)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    """``python -m tinyrnn.long_memory [--quick] [--seed 42] [--out long_memory.png]``: run, print, plot."""
    import argparse

    from tinyrnn import plot
    from tinyrnn.backend import limit_blas_threads

    parser = argparse.ArgumentParser(prog="python -m tinyrnn.long_memory",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the few-second smoke test (its numbers mean nothing)")
    parser.add_argument("--seed", type=int, default=42, help="seed for the data and the weights (default 42)")
    parser.add_argument("--out", default="long_memory.png", help="where to save the figure")
    args = parser.parse_args(argv)
    limit_blas_threads(1)  # small matrices: one BLAS thread is fastest (as the chapter runs)
    start = time.perf_counter()
    experiment = run_long_memory(QUICK if args.quick else FULL, seed=args.seed)
    print(summary_table(experiment))
    print(f"total {time.perf_counter() - start:.1f} s; figure saved to {args.out}")
    plot.plot_long_memory(experiment).savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
