"""The date-translation experiments: a plain encoder-decoder against one with attention.

Both models read a date as people write it ("Monday, April 22nd, 2019") one character at a
time and write it in ISO format ("2019-04-22"), trained with teacher forcing on the same
seeded splits (``tinyrnn.dates.load_dates``), same sizes, same epochs. Then, on the test set:

- sequence accuracy (the whole date right, greedy decoding), token accuracy, BLEU (characters);
- sequence accuracy per input format, and on the longest formats, where the plain model must
  carry the whole date in its final state and attention can look back;
- greedy vs beam search on the hardest inputs (those a model gets wrong greedily);
- the attention weights of one long input as a heat map (``tinyrnn.plot.plot_attention``).

One command trains both and writes ``translation.md``, ``translation.json`` and the figures::

    python -m tinyrnn.translation_chapter --out translation_out            # the full run
    python -m tinyrnn.translation_chapter --quick --out /tmp/translation   # a smoke test (seconds)

``run(quick=False, seed=42)`` does the same and returns the results as a dict.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import time

import numpy

from tinyrnn import bleu, dates, seeding
from tinyrnn.optimizers import Adam
from tinyrnn.seq2seq import EncoderDecoder, pad_left, sequence_accuracy, teacher_forcing, token_accuracy

SIZES = {"n_train": 10_000, "n_valid": 1_000, "n_test": 2_000}
QUICK_SIZES = {"n_train": 300, "n_valid": 50, "n_test": 100}
SETTINGS = {"embedding_dim": 16, "units": 64, "cell": "lstm", "epochs": 12, "batch_size": 64,
            "learning_rate": 0.003}
QUICK_SETTINGS = {**SETTINGS, "units": 16, "epochs": 1}
MODELS = {"plain": None, "attention": "luong"}
"""The two experiments: the encoder's final states only, and Luong (dot-product) attention."""
OUTPUT_LENGTH = 11          # "2019-04-22" and the end token
BEAM_WIDTH = 3
N_HARD = 6                  # inputs shown with greedy and beam outputs
N_LONGEST_FORMATS = 3


# --- data ------------------------------------------------------------------------------------------
def encoder_ids(vocabulary, texts, length=None):
    """Input ids (B, Tx), padded on the left; unknown characters are a ValueError naming them."""
    return pad_left(vocabulary.encode(texts, length=length))


def format_of(text: str, iso: str) -> str:
    """Which of ``dates.FORMATS`` wrote ``text`` for the date ``iso``."""
    date = datetime.date.fromisoformat(iso)
    return next(p for p in dates.FORMATS if dates.format_date(date, p) == text)


def longest_formats(n: int = N_LONGEST_FORMATS) -> list:
    """The n formats writing the longest inputs (mean length over the days of 2001)."""
    days = [datetime.date(2001, 1, 1) + datetime.timedelta(days=k) for k in range(365)]
    mean = {p: numpy.mean([len(dates.format_date(d, p)) for d in days]) for p in dates.FORMATS}
    return sorted(dates.FORMATS, key=lambda p: -mean[p])[:n]


# --- one experiment ---------------------------------------------------------------------------------
def train(attention, splits, settings, seed, vocabularies):
    """An EncoderDecoder trained with teacher forcing: (model, seconds, history)."""
    source, target = vocabularies
    seeding.set_random_seed(seed)
    model = EncoderDecoder(len(source), len(target), settings["embedding_dim"], settings["units"],
                           settings["cell"], attention)
    model.model.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(settings["learning_rate"]))
    x = encoder_ids(source, splits.x_train)
    decoder_inputs, decoder_targets = teacher_forcing(target, splits.y_train)
    valid_inputs, valid_targets = teacher_forcing(target, splits.y_valid)
    started = time.perf_counter()
    history = model.model.fit([x, decoder_inputs], decoder_targets, epochs=settings["epochs"],
                              batch_size=settings["batch_size"], verbose=0, shuffle=True,
                              validation_data=([encoder_ids(source, splits.x_valid), valid_inputs],
                                               valid_targets))
    return model, time.perf_counter() - started, history


def evaluate(model, splits, vocabularies) -> dict:
    """Test-set figures of a trained model (greedy decoding), overall and per format."""
    source, target = vocabularies
    ids = model.translate(encoder_ids(source, splits.x_test), OUTPUT_LENGTH)
    predicted = target.decode(ids)
    _, targets = teacher_forcing(target, splits.y_test)
    formats = [format_of(x, y) for x, y in zip(splits.x_test, splits.y_test)]
    right = numpy.array([p == y for p, y in zip(predicted, splits.y_test)])
    per_format = {p: float(right[[f == p for f in formats]].mean()) for p in dates.FORMATS if p in formats}
    longest = [f in longest_formats() for f in formats]
    return {"sequence_accuracy": sequence_accuracy(predicted, splits.y_test),
            "token_accuracy": token_accuracy(ids, targets),
            "bleu": bleu.corpus_bleu(predicted, splits.y_test),
            "per_format": per_format,
            "longest_formats_accuracy": float(right[longest].mean()) if any(longest) else float("nan"),
            "predicted": predicted}


def greedy_vs_beam(models, texts, isos, vocabularies, beam_width=BEAM_WIDTH) -> list:
    """For each input: the target and every model's greedy and beam outputs."""
    source, target = vocabularies
    ids = encoder_ids(source, texts)
    rows = [{"input": x, "target": y} for x, y in zip(texts, isos)]
    for name, model in models.items():
        greedy = target.decode(model.translate(ids, OUTPUT_LENGTH))
        beam = target.decode(model.translate(ids, OUTPUT_LENGTH, beam_width=beam_width))
        for row, g, b in zip(rows, greedy, beam):
            row[f"{name}_greedy"], row[f"{name}_beam"] = g, b
    return rows


def hard_inputs(results, splits, n=N_HARD) -> list:
    """Test inputs some model gets wrong greedily (the plain model's first), then the longest inputs."""
    wrong = [k for k in range(len(splits.x_test))
             if any(r["predicted"][k] != splits.y_test[k] for r in results.values())]
    longest = sorted(range(len(splits.x_test)), key=lambda k: -len(splits.x_test[k]))
    chosen = list(dict.fromkeys(wrong[:n] + longest))[:n]
    return chosen


# --- the run -----------------------------------------------------------------------------------------
def run(quick: bool = False, seed: int = 42, out=None) -> dict:
    """Train the plain and the attention encoder-decoder, evaluate them, and (with ``out``)
    write ``translation.md``, ``translation.json`` and the figures there. Returns the results."""
    sizes, settings = (QUICK_SIZES, QUICK_SETTINGS) if quick else (SIZES, SETTINGS)
    splits = dates.load_dates(**sizes, seed=seed)
    vocabularies = (dates.input_vocabulary(), dates.target_vocabulary())
    models, results = {}, {}
    for name, attention in MODELS.items():
        model, seconds, history = train(attention, splits, settings, seed, vocabularies)
        models[name] = model
        results[name] = {"train_seconds": seconds, "epochs": settings["epochs"],
                         "loss": history.history["loss"], "val_loss": history.history["val_loss"],
                         **evaluate(model, splits, vocabularies)}
    chosen = hard_inputs(results, splits)
    examples = greedy_vs_beam(models, [splits.x_test[k] for k in chosen], [splits.y_test[k] for k in chosen],
                              vocabularies)
    longest = max(range(len(splits.x_test)), key=lambda k: len(splits.x_test[k]))
    report = {"quick": quick, "seed": seed, "sizes": sizes, "settings": settings,
              "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
              "platform": platform.platform(), "longest_formats": longest_formats(),
              "models": {name: {k: v for k, v in r.items() if k != "predicted"}
                         for name, r in results.items()},
              "greedy_vs_beam": examples, "heatmap_input": splits.x_test[longest]}
    if out is not None:
        write_report(report, models["attention"], vocabularies, pathlib.Path(out))
    return report


def attention_figure(model, text, vocabularies):
    """The attention weights of ``model`` translating ``text``, as a heat map."""
    from tinyrnn import plot
    source, target = vocabularies
    ids = encoder_ids(source, [text])
    written, weights = model.attention_weights(ids, OUTPUT_LENGTH)
    row = written[0].tolist()
    n = row.index(target.END) + 1 if target.END in row else len(row)
    outputs = [target.tokens[i] for i in row[:n]]
    inputs = [source.tokens[i] if i else "" for i in ids[0]]
    return plot.plot_attention(weights[0, :n], inputs, outputs, title=f"{text!r} -> attention weights")


def learning_curves_figure(report):
    from tinyrnn import plot
    fig, axes = plot._new_figure(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, (name, r) in zip(axes[0], report["models"].items()):
        plot.plot_learning_curves({"loss": r["loss"], "val_loss": r["val_loss"]}, ax=ax,
                                  title=f"{name} encoder-decoder", loss_name="cross-entropy")
    return fig


def write_report(report, attention_model, vocabularies, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (attention_file, _), (curves_file, _) = FIGURES
    heatmap = attention_figure(attention_model, report["heatmap_input"], vocabularies)
    heatmap.savefig(out / attention_file, dpi=100)
    learning_curves_figure(report).savefig(out / curves_file, dpi=100)
    (out / "translation.json").write_text(json.dumps(report, indent=1))
    (out / "translation.md").write_text(report_section(report))


FIGURES = (("translation_attention.png", "Attention weights of the longest test input"),
           ("translation_learning_curves.png", "Learning curves of the plain and the attention model"))
"""The figures ``write_report`` saves beside the report: (file name, caption)."""


def report_section(report, figures: bool = True) -> str:
    """The Markdown of the experiments: the table, the longest formats, greedy vs beam, and
    (``figures``) links to ``FIGURES``, which ``write_report`` saves in the same folder."""
    m = report["models"]
    lines = ["## Translation: dates to ISO format", "",
             f"{report['sizes']['n_train']} training pairs, {report['sizes']['n_test']} test pairs (seed "
             f"{report['seed']}), {report['settings']['cell'].upper()} encoder and decoder of "
             f"{report['settings']['units']} units, {report['settings']['epochs']} epochs, batch "
             f"{report['settings']['batch_size']}, Adam {report['settings']['learning_rate']}; "
             "greedy decoding."
             f" Load average at the end: {', '.join(f'{x:.1f}' for x in report['load_average'])} on "
             f"{report['cpu_count']} cores.", "",
             "| model | test sequence accuracy | token accuracy | BLEU | longest formats | training time |",
             "|---|---|---|---|---|---|"]
    for name, r in m.items():
        lines.append(f"| {name} | {r['sequence_accuracy']:.2%} | {r['token_accuracy']:.2%} | "
                     f"{r['bleu']:.4f} | "
                     f"{r['longest_formats_accuracy']:.2%} | {r['train_seconds']:.0f} s |")
    lines += ["", "Sequence accuracy per input format:", "", "| format | " + " | ".join(m) + " |",
              "|---|" + "---|" * len(m)]
    for p in dates.FORMATS:
        if all(p in r["per_format"] for r in m.values()):
            lines.append(f"| `{p}` | " + " | ".join(f"{r['per_format'][p]:.1%}" for r in m.values()) + " |")
    lines += ["", f"Longest formats: {', '.join(f'`{p}`' for p in report['longest_formats'])}.", "",
              f"Greedy vs beam search (beam width {BEAM_WIDTH}) on hard inputs:", "",
              "| input | target | " + " | ".join(f"{n} greedy | {n} beam" for n in m) + " |",
              "|---|---|" + "---|---|" * len(m)]
    for row in report["greedy_vs_beam"]:
        lines.append(f"| {row['input']} | {row['target']} | "
                     + " | ".join(f"{row[f'{n}_greedy']} | {row[f'{n}_beam']}" for n in m) + " |")
    if figures:
        for filename, caption in FIGURES:
            lines += ["", f"![{caption}]({filename})"]
    return "\n".join(lines) + "\n"


def summary(report) -> str:
    """One line: each model's test sequence accuracy, its longest formats' and its training time."""
    return "; ".join(f"{name}: {r['sequence_accuracy']:.2%} of test dates right "
                     f"({r['longest_formats_accuracy']:.1%} on the longest formats), trained in "
                     f"{r['train_seconds']:.0f} s" for name, r in report["models"].items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyrnn.translation_chapter",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one epoch: a smoke test")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="translation_out", help="report folder (default ./translation_out)")
    args = parser.parse_args(argv)
    report = run(quick=args.quick, seed=args.seed, out=args.out)
    print(report_section(report, figures=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
