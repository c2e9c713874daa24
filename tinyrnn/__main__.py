"""``python -m tinyrnn``: the chapter, the gradient checks and the benchmark.

    python -m tinyrnn chapter                 # every experiment of the course, 20 epochs
    python -m tinyrnn chapter --only lstm,gru # some of them
    python -m tinyrnn chapter --only text     # the text chapter alone: the character model on Shakespeare
    python -m tinyrnn chapter --only translation  # dates to ISO: encoder-decoder with and without attention
    python -m tinyrnn chapter --quick         # a smoke test (small data, 2 epochs)
    python -m tinyrnn chapter --seeds 5       # the acceptance check: median over seeds 42 to 46
    python -m tinyrnn gradcheck               # every layer's backward against finite differences
    python -m tinyrnn bench                   # speed, against PyTorch where installed
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time

import numpy

from tinyrnn import backend, seeding
from tinyrnn.gradcheck import DEFAULT_TOLERANCE, gradcheck

B, T, D, H = 2, 5, 3, 4
"""Gradient-check sizes: small and distinct, so a transposed weight crashes instead of passing."""


# --- gradcheck ------------------------------------------------------------------------------------
def gradcheck_cases() -> list[tuple[str, object, tuple, bool]]:
    """Every layer type and option as (name, layer factory, input shape, training).

    Conv1D and BatchNormalization are checked when ``tinyrnn.layers`` has them.
    """
    from tinyrnn import layers

    L = layers
    cases = []
    recurrent = [("SimpleRNN", L.SimpleRNN, {}), ("LSTM", L.LSTM, {}),
                 ("GRU reset_after=True", L.GRU, {"reset_after": True}),
                 ("GRU reset_after=False", L.GRU, {"reset_after": False})]
    for label, cls, kw in recurrent:
        for option, extra in (("last output", {}), ("return_sequences", {"return_sequences": True}),
                              ("return_state", {"return_state": True}),
                              ("return_sequences + return_state",
                               {"return_sequences": True, "return_state": True})):
            cases.append((f"{label}, {option}", _factory(cls, H, **kw, **extra), (B, T, D), False))
        cases.append((f"{label}, dropout + recurrent_dropout (training)",
                      _factory(cls, H, **kw, return_sequences=True, dropout=0.3, recurrent_dropout=0.3),
                      (B, T, D), True))
    cases += [
        ("RNN(PeepholeLSTMCell), return_sequences + return_state",
         lambda: L.RNN(L.PeepholeLSTMCell(H), return_sequences=True, return_state=True), (B, T, D), False),
        ("RNN(LNSimpleRNNCell), return_sequences",
         lambda: L.RNN(L.LNSimpleRNNCell(H), return_sequences=True), (B, T, D), False),
        ("Bidirectional(LSTM), merge_mode=mul, return_sequences + return_state",
         lambda: L.Bidirectional(L.LSTM(H, return_sequences=True, return_state=True), merge_mode="mul"),
         (B, T, D), False),
        ("Dense on (B, D)", _factory(L.Dense, H), (B, D), False),
        ("Dense(tanh) on (B, T, D)", _factory(L.Dense, H, activation="tanh"), (B, T, D), False),
        ("TimeDistributed(Dense)", lambda: L.TimeDistributed(L.Dense(H, activation="tanh")),
         (B, T, D), False),
        ("Flatten", L.Flatten, (B, T, D), False),
        ("RepeatVector", _factory(L.RepeatVector, T), (B, D), False),
        ("Dropout (training)", _factory(L.Dropout, 0.4), (B, T, D), True),
        ("LayerNormalization", L.LayerNormalization, (B, T, D), False),
    ]
    batch_norm = getattr(L, "BatchNormalization", None)
    if batch_norm is not None:
        cases += [("BatchNormalization (training) on (B, T, D)", batch_norm, (B, T, D), True),
                  ("BatchNormalization (training) on (B, D)", batch_norm, (3, D), True),
                  ("BatchNormalization (inference)", batch_norm, (B, T, D), False)]
    conv1d = getattr(L, "Conv1D", None)
    if conv1d is not None:
        for padding, strides, rate in (("valid", 1, 1), ("same", 1, 1), ("causal", 1, 1), ("valid", 2, 1),
                                       ("same", 2, 1), ("causal", 1, 2), ("same", 1, 2)):
            cases.append((f"Conv1D padding={padding} strides={strides} dilation_rate={rate}",
                          _factory(conv1d, H, 3, strides=strides, padding=padding, dilation_rate=rate),
                          (B, 8, D), False))
        cases.append(("Conv1D(tanh) kernel_size=2 causal", _factory(conv1d, H, 2, padding="causal",
                                                                    activation="tanh"), (B, 8, D), False))
    return cases


def _factory(cls, *args, **kwargs):
    return lambda: cls(*args, **kwargs)


def _randomized(layer, shape, seed):
    """Build ``layer`` for ``shape`` and give every parameter (and BatchNorm's
    moving statistics) random values: zero biases and unit gains hide bugs."""
    rng = numpy.random.default_rng(seed)
    with backend.float_precision("float64"):
        seeding.set_random_seed(seed)
        layer.build(shape)
    for value in layer.params.values():
        value[...] = backend.xp.asarray(rng.normal(scale=0.5, size=value.shape))
    for key, value in layer.state.items():
        positive = "variance" in key
        random = rng.uniform(0.5, 1.5, size=value.shape) if positive else rng.normal(size=value.shape)
        value[...] = backend.xp.asarray(random)
    return layer


def run_gradchecks(tolerance=DEFAULT_TOLERANCE, verbose=False, print_fn=print) -> bool:
    """Check every case of ``gradcheck_cases``; print one row each; True when all pass."""
    rows, all_passed = [], True
    header = f"{'layer and option':<62} {'arrays':>6}  {'worst array':<32} {'worst rel. error':>16}  result"
    print_fn(f"gradient checks: float64 central differences (Richardson), random weights and upstream "
             f"gradient, B={B} T={T} D={D} H={H}, tolerance {tolerance:.0e}")
    print_fn(header)
    print_fn("-" * len(header))
    for i, (name, make, shape, training) in enumerate(gradcheck_cases()):
        layer = _randomized(make(), shape, seed=i)
        x = numpy.random.default_rng(1000 + i).normal(size=shape)
        report = gradcheck(layer, x, seed=i, training=training)
        worst, passed = report.worst, report.passed(tolerance)
        all_passed &= passed
        array = worst.name.split("/", 1)[-1]
        row = (f"{name:<62} {len(report.checks):>6}  {array:<32} {worst.error:>16.2e}  "
               f"{'PASS' if passed else 'FAIL'}")
        rows.append(row)
        print_fn(row)
        if verbose or not passed:
            print_fn("    " + str(report).replace("\n", "\n    "))
    print_fn(f"{sum('PASS' in r for r in rows)}/{len(rows)} passed")
    return all_passed


# --- the command line -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from tinyrnn.chapter import NAMES

    parser = argparse.ArgumentParser(
        prog="python -m tinyrnn",
        description="tinyrnn: a from-scratch recurrent-network engine for teaching.")
    sub = parser.add_subparsers(dest="command", metavar="{chapter,gradcheck,bench}")

    chapter = sub.add_parser(
        "chapter", help="train the course's experiments and write the results table and figures",
        description="Train every experiment of the course chapter (seed 42, 20 epochs, batch 32) on the "
                    "course's data, print the table against the published and Keras 3 figures, and write "
                    "report.md, results.json and PNG figures to --out.",
        epilog="experiments: " + ", ".join(NAMES) + "; and text (the character model on Shakespeare, "
               "its own recipe: --epochs does not change it) and translation (dates to ISO, plain vs "
               "attention encoder-decoder, its own recipe)")
    chapter.add_argument("--only", action="append", metavar="NAME",
                         help="run only these experiments (repeat, or give a comma list)")
    chapter.add_argument("--epochs", type=int, default=None,
                         help="training epochs (default 20; 2 with --quick)")
    chapter.add_argument("--quick", action="store_true",
                         help="smoke test: 1000 series and 2 epochs (figures not comparable)")
    chapter.add_argument("--backend", choices=("numpy", "cupy"), default=None,
                         help="array backend (default: numpy, or $TINYRNN_BACKEND)")
    chapter.add_argument("--out", default="chapter_out", help="report folder (default ./chapter_out)")
    chapter.add_argument("--seed", type=int, default=42, help="seed for data and weights (default 42)")
    chapter.add_argument("--extras", action=argparse.BooleanOptionalAction, default=None,
                         help="also train the MC-dropout model and run the long-memory experiment (why gates "
                              "exist) (default: on for the whole chapter, off with --only)")
    chapter.add_argument("--threads", type=int, default=1,
                         help="threads for NumPy's BLAS (default 1, fastest for the course's small models; "
                              "0 leaves BLAS as it is)")
    chapter.add_argument("--seeds", type=int, default=None, metavar="N",
                         help="the acceptance check: run seeds --seed, ..., --seed + N - 1 (--seeds 5: 42 to "
                              "46) and report each experiment's median, smallest and largest figure; it "
                              "passes when the median is within 1.15x of the larger reference")
    chapter.add_argument("--workers", type=int, default=None,
                         help="with --seeds: processes that train in parallel, each with --threads BLAS "
                              "threads (default: one per usable CPU)")
    chapter.add_argument("--strict", action="store_true",
                         help="exit 1 when a verdict misses the bound (with --seeds: a median above 1.15x; "
                              "without: any single figure above 1.15x); by default the exit status is 1 "
                              "only for errors")
    chapter.add_argument("--list", action="store_true", help="list the experiments and exit")

    check = sub.add_parser("gradcheck", help="check every layer's gradients against finite differences",
                           description="Check every layer type and option of tinyrnn against finite "
                                       "differences; exit status 1 if any check fails.")
    check.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                       help=f"largest relative error that passes (default {DEFAULT_TOLERANCE:g})")
    check.add_argument("--verbose", action="store_true", help="print every array's worst error")

    sub.add_parser("bench", add_help=False,
                   help="time the course's models against PyTorch (options: python -m tinyrnn bench --help)")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "chapter":
        return chapter(args, parser, argv)
    if args.command == "gradcheck":
        start = time.perf_counter()
        passed = run_gradchecks(args.tolerance, verbose=args.verbose)
        print(f"({time.perf_counter() - start:.1f} s)")
        return 0 if passed else 1
    parser.print_help()
    return 2


def chapter(args, parser, argv) -> int:
    from tinyrnn import chapter as course

    if args.list:
        for e in course.EXPERIMENTS:
            print(f"{e.name:<15} {e.task:<10} {e.optimizer:<12} {e.architecture}")
        print(f"{course.TEXT:<15} {'shakespeare':<10} {'nadam':<12} Embedding(39, 16), GRU(128, rs), "
              "Dense(39, softmax), stateful")
        print(f"{course.TRANSLATION:<15} {'dates':<10} {'adam':<12} LSTM(64) encoder-decoder, without "
              "and with Attention, teacher forcing")
        return 0
    series, with_text = course.split_text(args.only)
    try:
        if series != [] or not (with_text or course.wants_translation(args.only)):
            course.select_experiments(series)
    except ValueError as err:
        parser.error(str(err))
    if args.seeds is not None and args.only is not None and with_text:
        parser.error("--seeds is the series experiments' acceptance check; the text chapter runs once: "
                     "drop text from --only")
    if args.seeds is not None and args.only is not None and course.wants_translation(args.only):
        parser.error("--seeds is the series experiments' acceptance check; the translation experiments run "
                     "once: drop translation from --only")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds} (--seeds 5 is the acceptance check)")
    if args.workers is not None and (args.workers < 1 or args.seeds is None):
        parser.error("--workers takes a number >= 1 and goes with --seeds, e.g. --seeds 5 --workers 2")
    if args.seeds is not None and args.extras:
        parser.error("--extras makes the figures of one seed's run; drop it with --seeds")
    if args.backend:
        try:
            backend.set_backend(args.backend)
        except RuntimeError as err:
            parser.error(str(err))
    if args.threads > 0 and not course.limit_blas_threads(args.threads):
        print(f"note: could not set NumPy's BLAS threads to {args.threads} here; set OPENBLAS_NUM_THREADS="
              f"{args.threads} before starting Python if training is slow", file=sys.stderr)
    command = "python -m tinyrnn " + shlex.join(argv)
    if args.seeds is not None:
        verdicts = [s.verdict for s in course.run_seeds(
            args.only, seeds=args.seeds, epochs=args.epochs, quick=args.quick, out=args.out,
            first_seed=args.seed, workers=args.workers, threads=args.threads, command=command)]
        missed = "FAIL"
    else:
        verdicts = [r.verdict for r in course.run_chapter(
            args.only, epochs=args.epochs, quick=args.quick, out=args.out, seed=args.seed,
            extras=args.extras, command=command)]
        missed = "above"
    return chapter_exit_status(verdicts, missed, args.strict)


def chapter_exit_status(verdicts: list[str], missed: str, strict: bool) -> int:
    """1 for an error, or with ``strict`` for a verdict that misses the bound; else 0.

    The chapter's acceptance is the median over seeds (``--seeds 5``); a run that
    completes without errors exits 0 whatever its figures, unless ``--strict`` asks.
    """
    if "ERROR" in verdicts or (strict and missed in verdicts):
        return 1
    return 0


def bench(argv) -> int:
    """Hand the arguments to ``tinyrnn.bench.main`` (imported only when asked for)."""
    try:
        bench_module = importlib.import_module("tinyrnn.bench")
    except ModuleNotFoundError as err:
        if err.name != "tinyrnn.bench":
            raise  # the benchmark exists but something it imports is missing: show that
        print("python -m tinyrnn bench: the benchmark (tinyrnn/bench.py) is not part of this install yet.",
              file=sys.stderr)
        return 2
    return bench_module.main(argv)


if __name__ == "__main__":
    sys.exit(main())
