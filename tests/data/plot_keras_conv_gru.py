"""The results page's Keras comparison: tinyrnn's conv_gru trained from the fixture's initial
weights (as ``tests/test_keras_curve.py`` does), printed as a Markdown table beside Keras 3's
validation curve, and plotted.

Run from the repository root (about a minute of training on 2 CPU cores)::

    PYTHONPATH=. python tests/data/plot_keras_conv_gru.py docs/pages/figures/keras_curve_conv_gru.png
"""

from __future__ import annotations

import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from test_keras_curve import load_course_splits, load_keras_run, train_like_keras  # noqa: E402

from tinyrnn.backend import limit_blas_threads  # noqa: E402


def main(png: str | None) -> None:
    limit_blas_threads(1)
    meta, weights = load_keras_run()
    start = time.perf_counter()
    ours = train_like_keras(meta, weights, load_course_splits(meta), epochs=meta["epochs"])
    seconds = time.perf_counter() - start
    keras = meta["history"]
    print("| epoch | Keras 3: last-step MSE | tinyrnn | relative gap | Keras 3: val loss | tinyrnn | "
          "relative gap |")
    print("|---|---|---|---|---|---|---|")
    for epoch in range(meta["epochs"]):
        cells = []
        for key in ("val_last_time_step_mse", "val_loss"):
            k, o = keras[key][epoch], float(ours[key][epoch])
            cells += [f"{k:.6f}", f"{o:.6f}", f"{abs(o / k - 1):.1e}"]
        print(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    print(f"\n(tinyrnn: {seconds:.0f} s of training; Keras {meta['keras']} on TensorFlow "
          f"{meta['tensorflow']})")
    if png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = range(1, meta["epochs"] + 1)
        fig, ax = plt.subplots(figsize=(7, 4))
        for key, label, color in (("val_last_time_step_mse", "last-step MSE (the chapter's figure)", "C0"),
                                  ("val_loss", "MSE over all steps (the loss)", "C1")):
            ax.plot(epochs, keras[key], "o", color=color, mfc="none", ms=8, label=f"Keras 3: {label}")
            ax.plot(epochs, ours[key], ".-", color=color, label=f"tinyrnn: {label}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation MSE")
        ax.set_xticks(list(epochs))
        ax.set_title("conv_gru from Keras 3's initial weights, no shuffle", fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        pathlib.Path(png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=100)
        print(f"figure written to {png}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
