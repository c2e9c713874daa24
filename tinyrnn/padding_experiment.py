"""What masking buys: one GRU trained on right-padded sequences with and without a mask.

The task. Each sequence has a random length between 5 and 50 steps of values
drawn uniformly from (-1, 1); the target is the sum of its last 5 values.
Sequences of different lengths share a batch by padding: zeros after the
data ("post", right padding, what ``Masking`` and ``Embedding(mask_zero=True)``
are for) or before it ("pre", left padding, the default of Keras's
``pad_sequences``). The model reads the whole padded sequence and answers from
its last state,

    Sequential([Masking(0.0), GRU(16), Dense(1)])        masked, right-padded
    Sequential([GRU(16), Dense(1)])                      unmasked, right- or left-padded

With the mask, the GRU skips the padded steps: its state is carried through
them unchanged, so the last state is the state after the last real value,
exactly as if the sequence had never been padded. Without it, the GRU reads
the zeros as data: after a right-padded sequence it must carry the sum through
up to 45 steps of zeros that it cannot tell from small real values, and the
answer it gives for a sequence depends on how much padding follows it, that
is, on which other sequences share its batch. Left padding puts the zeros
first, where they do little harm: the classic workaround when a layer cannot
mask.

``run`` trains the three variants on the same sequences (same seed, same
initial weights) and measures the validation MSE per epoch, the MSE by amount
of padding, and the MSE when the same validation sequences are padded to a
longer total length than in training (a batch with a longer neighbour).
"""

from __future__ import annotations

import dataclasses
import time

import numpy

from tinyrnn import backend, seeding
from tinyrnn.layers import GRU, Dense, Masking
from tinyrnn.models import Sequential
from tinyrnn.optimizers import Adam


@dataclasses.dataclass(frozen=True)
class Settings:
    """How big the experiment is: sequence lengths, units, data, and the training budget."""

    min_length: int = 5
    max_length: int = 50              # T: every training sequence is padded to this length
    last: int = 5                     # the target is the sum of the last ``last`` values
    units: int = 16
    n_train: int = 2000
    n_valid: int = 500
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 0.01       # Adam
    padded_lengths: tuple = (50, 75, 100, 150)   # validation sequences padded to these lengths too


FULL = Settings()
"""The chapter's run: well under two minutes on 2 cores."""

QUICK = Settings(max_length=12, units=4, n_train=64, n_valid=32, epochs=2, padded_lengths=(12, 24))
"""A smoke test of the code path (a second or two); its numbers mean nothing."""

VARIANTS = {
    "masked, right-padded": ("post", True),
    "unmasked, right-padded": ("post", False),
    "unmasked, left-padded": ("pre", False),
}
"""name -> (padding, masked): the three models compared."""


def sequences(n: int, settings: Settings = FULL, seed: int = 0):
    """``n`` sequences of random lengths and their targets, before padding.

    Returns (values, lengths, y): values (n, max_length) drawn from U(-1, 1), of
    which row i uses the first ``lengths[i]`` (between ``min_length`` and
    ``max_length``); y (n, 1) the sum of each sequence's last ``settings.last`` values.
    """
    rng = numpy.random.default_rng(seed)
    lengths = rng.integers(settings.min_length, settings.max_length + 1, size=n)
    values = rng.uniform(-1.0, 1.0, size=(n, settings.max_length))
    values[values == 0.0] = 0.5                     # a real value is never the padding value
    y = numpy.array([values[i, length - settings.last:length].sum() for i, length in enumerate(lengths)])
    return values, lengths, y[:, None].astype("float32")


def pad(values, lengths, total_length: int, padding: str = "post"):
    """Sequences padded with zeros to ``total_length``: (n, total_length, 1), as Keras's
    ``pad_sequences(..., padding=padding, dtype="float32")`` with one feature per step."""
    x = numpy.zeros((len(lengths), total_length, 1), "float32")
    for i, length in enumerate(lengths):
        start = 0 if padding == "post" else total_length - length
        x[i, start:start + length, 0] = values[i, :length]
    return x


def build_model(masked: bool, units: int) -> Sequential:
    """``[Masking(0.0)] -> GRU(units) -> Dense(1)`` reading (B, T, 1)."""
    layers = [Masking(0.0, input_shape=[None, 1])] if masked else []
    return Sequential([*layers, GRU(units, input_shape=[None, 1]), Dense(1)])


def mse_by_padding(model, x, y, lengths, total_length: int, bins: int = 5) -> list:
    """Validation MSE grouped by the amount of padding (total_length - length), in ``bins``
    equal ranges: [(lowest padding, highest padding, MSE, count), ...]."""
    errors = (model.predict(x, verbose=0) - y)[:, 0] ** 2
    padding = total_length - lengths
    edges = numpy.linspace(padding.min(), padding.max() + 1, bins + 1).astype(int)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = (padding >= low) & (padding < high)
        if chosen.any():
            rows.append((int(low), int(high - 1), float(errors[chosen].mean()), int(chosen.sum())))
    return rows


def train_variant(name: str, settings: Settings = FULL, seed: int = 42, log=print) -> dict:
    """Train one variant of ``VARIANTS``; returns plain numbers (JSON-ready)."""
    padding, masked = VARIANTS[name]
    values, lengths, y = sequences(settings.n_train, settings, seed=seed)
    v_values, v_lengths, y_valid = sequences(settings.n_valid, settings, seed=seed + 1)
    T = settings.max_length
    x_train, x_valid = pad(values, lengths, T, padding), pad(v_values, v_lengths, T, padding)
    seeding.set_random_seed(seed)
    model = build_model(masked, settings.units)
    model.compile(loss="mse", optimizer=Adam(learning_rate=settings.learning_rate))
    start = time.perf_counter()
    history = model.fit(x_train, y, epochs=settings.epochs, batch_size=settings.batch_size,
                        validation_data=(x_valid, y_valid), verbose=0)
    seconds = time.perf_counter() - start
    val_loss = [float(v) for v in history.history["val_loss"]]
    by_total = {str(n): float(model.evaluate(pad(v_values, v_lengths, n, padding), y_valid, verbose=0))
                for n in settings.padded_lengths}
    result = {"padding": padding, "masked": masked, "val_loss": val_loss, "loss": history.history["loss"],
              "relative": val_loss[-1] / float(y_valid.var()), "seconds": seconds,
              "by_padding": mse_by_padding(model, x_valid, y_valid, v_lengths, T),
              "by_total_length": by_total}
    log(f"  {name}: val MSE {val_loss[-1]:.4f} ({result['relative']:.1%} of the target variance) after "
        f"{settings.epochs} epochs, {seconds:.1f} s; padded to "
        + ", ".join(f"{n}: {mse:.4f}" for n, mse in by_total.items()))
    return result


def run(quick: bool = False, seed: int = 42, log=print) -> dict:
    """The experiment: every variant of ``VARIANTS`` on the same data, ``QUICK`` or ``FULL``.

    Returns ``{"settings": {...}, "target_variance": float, "results": {variant: train_variant(...)}}``.
    """
    settings = QUICK if quick else FULL
    log(f"  sequences of {settings.min_length}..{settings.max_length} steps, target the sum of the last "
        f"{settings.last}; {settings.n_train} train / {settings.n_valid} valid; GRU({settings.units}), "
        f"Adam({settings.learning_rate:g}), batch {settings.batch_size}, {settings.epochs} epochs")
    _, _, y_valid = sequences(settings.n_valid, settings, seed=seed + 1)
    results = {name: train_variant(name, settings, seed, log) for name in VARIANTS}
    return {"settings": dataclasses.asdict(settings), "target_variance": float(y_valid.var()),
            "results": results}


def summary_table(experiment: dict) -> str:
    """The experiment as a Markdown table: one row per variant; the validation MSE at the
    training length and at each longer padded length."""
    lengths = [str(n) for n in experiment["settings"]["padded_lengths"]]
    lines = ["| model | val MSE | of the variance | " + " | ".join(f"padded to {n}" for n in lengths)
             + " | train time |", "|" + "---|" * (len(lengths) + 4)]
    for name, r in experiment["results"].items():
        lines.append(f"| {name} | {r['val_loss'][-1]:.4f} | {r['relative']:.1%} | "
                     + " | ".join(f"{r['by_total_length'][n]:.4f}" for n in lengths)
                     + f" | {r['seconds']:.1f} s |")
    return "\n".join(lines)


def plot(experiment: dict, path=None):
    """Three panels: validation MSE per epoch; MSE by amount of padding; MSE when the same
    sequences are padded longer. Returns the matplotlib figure (saved to ``path`` if given)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    variance = experiment["target_variance"]
    styles = [{"marker": "o", "linestyle": "-"}, {"marker": "s", "linestyle": "-"},
              {"marker": "x", "linestyle": "--"}]            # the masked and left-padded curves overlap
    for (name, r), style in zip(experiment["results"].items(), styles):
        epochs = numpy.arange(1, len(r["val_loss"]) + 1)
        axes[0].plot(epochs, r["val_loss"], label=name, **style)
        middles = [(low + high) / 2 for low, high, _, _ in r["by_padding"]]
        axes[1].plot(middles, [mse for _, _, mse, _ in r["by_padding"]], label=name, **style)
        totals = sorted(r["by_total_length"], key=int)
        axes[2].plot([int(n) for n in totals], [r["by_total_length"][n] for n in totals], label=name,
                     **style)
    for ax in axes:
        ax.axhline(variance, color="gray", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    axes[0].set(title="validation MSE while training", xlabel="epoch", ylabel="MSE (log scale)")
    axes[1].set(title=f"by padding (sequences padded to T={experiment['settings']['max_length']})",
                xlabel="padded steps in the sequence", ylabel="MSE")
    axes[2].set(title="the same sequences padded longer", xlabel="padded length T", ylabel="MSE")
    axes[0].legend(fontsize=8)
    axes[0].annotate("variance of the target", (1, variance), fontsize=8, color="gray",
                     xytext=(0, 3), textcoords="offset points")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def main(argv=None) -> None:
    """``python -m tinyrnn.padding_experiment [--quick] [--seed 42] [--out padding.png]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tinyrnn.padding_experiment",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smoke test (its numbers mean nothing)")
    parser.add_argument("--seed", type=int, default=42, help="seed for the data and the weights (default 42)")
    parser.add_argument("--out", default="padding_experiment.png", help="where to save the figure")
    args = parser.parse_args(argv)
    backend.limit_blas_threads(1)   # small matrices: one BLAS thread is fastest (as the chapter runs)
    start = time.perf_counter()
    experiment = run(quick=args.quick, seed=args.seed)
    print(summary_table(experiment))
    plot(experiment, args.out)
    print(f"total {time.perf_counter() - start:.1f} s; figure saved to {args.out}")


if __name__ == "__main__":
    main()
