"""The chapter runner (``python -m tinyrnn chapter``), its registry, and the forecasts it uses."""

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy
import pytest

import tinyrnn
from tinyrnn import chapter, long_memory
from tinyrnn.__main__ import main
from tinyrnn.forecast import iterative_forecast, mc_dropout, naive_forecast
from tinyrnn.layers import GRU, Dense, Dropout, SimpleRNN, TimeDistributed
from tinyrnn.models import Sequential

ROOT = pathlib.Path(__file__).resolve().parents[1]
COURSE = ["naive", "linear", "simple_rnn", "deep_rnn", "deep_rnn_dense", "iterative_10", "naive_10",
          "linear_10", "seq2vec", "seq2seq", "batchnorm", "ln_rnn", "lstm", "gru", "conv_gru", "wavenet",
          "deep_wavenet"]
FIGURES = ["series_forecast.png", "learning_curves.png", "iterative_10.png", "seq2seq_forecast.png",
           "lstm_forecast.png", "mc_dropout.png", "long_memory.png"]


def run_cli(*args, timeout=300):
    """``python -m tinyrnn ARGS`` from the repository root; returns (process, seconds)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tinyrnn", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - start


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chapter_quick")
    proc, seconds = run_cli("chapter", "--quick", "--out", str(out))
    return out, proc, seconds


# --- the command ----------------------------------------------------------------------------------
def test_quick_chapter_runs_every_experiment_in_under_two_minutes(quick_run):
    out, proc, seconds = quick_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert seconds < 120, f"--quick took {seconds:.0f} s (budget 120 s)"
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["results"]] == COURSE
    for r in results["results"]:
        assert r["error"] is None, f"{r['name']}: {r['error']}"
        assert numpy.isfinite(r["ours"]) and r["ours"] > 0
        assert f"| {r['name']} " in report, f"{r['name']} missing from the report's table"
    assert results["figures"] == FIGURES
    for png in FIGURES:
        assert (out / png).stat().st_size > 1000, png
        assert f"]({png})" in report, f"report.md does not show {png}"
    assert results["quick"] and results["n_series"] == chapter.QUICK_SERIES
    assert results["extras"]["mc_dropout"]["mean_std"] > 0
    memory = results["extras"]["long_memory"]
    assert set(memory["results"]) == {"SimpleRNN", "LSTM", "GRU"}
    assert memory["settings"]["steps"] == list(long_memory.QUICK.steps)  # quick mode: the quick experiment
    assert "## Why gates exist: the adding problem" in report and "| LSTM |" in report
    assert "python -m tinyrnn chapter --quick" in report and "backend: numpy" in report
    # progress while it trains, then the table on stdout
    assert "[1/17] naive" in proc.stdout and "Epoch 2/2" in proc.stdout
    assert "| deep_wavenet " in proc.stdout


def test_only_runs_just_that_experiment_and_reproduces_the_full_run(quick_run, tmp_path):
    full_out = quick_run[0]
    proc, _ = run_cli("chapter", "--quick", "--only", "lstm", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in results["results"]] == ["lstm"]
    assert not (tmp_path / "mc_dropout.png").exists()  # extras run with the whole chapter only
    full = {r["name"]: r for r in json.loads((full_out / "results.json").read_text())["results"]}
    assert results["results"][0]["ours"] == pytest.approx(full["lstm"]["ours"], rel=1e-6)


def test_unknown_experiment_fails_with_the_list_of_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["chapter", "--only", "lstm,transformer", "--threads", "0"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "'transformer'" in message
    for name in COURSE:
        assert name in message


def test_only_accepts_repeats_and_comma_lists_in_course_order():
    chosen = chapter.select_experiments(["gru,naive", "lstm"])
    assert [e.name for e in chosen] == ["naive", "lstm", "gru"]
    with pytest.raises(ValueError, match="deep_wavenet"):
        chapter.select_experiments(["nope"])


# --- the registry -----------------------------------------------------------------------------------
def test_registry_is_the_course_list():
    assert chapter.NAMES == COURSE
    for e in chapter.EXPERIMENTS:
        assert e.task in tinyrnn.data.TASKS
        assert e.figure in ("mse", "last_time_step_mse")
        assert e.reference == max(f for f in (e.course, e.keras3) if f is not None)
        assert (e.build is None) != (e.forecast is None), e.name
        if e.build is not None:
            assert e.keras_fit_seconds is not None, e.name
        if e.task == "seq2seq":
            assert e.figure == "last_time_step_mse"
    assert chapter.get_experiment("simple_rnn").learning_rate == 0.005
    assert chapter.get_experiment("seq2seq").learning_rate == 0.01
    assert chapter.get_experiment("iterative_10").uses == "deep_rnn_dense"
    assert sum(e.keras_fit_seconds for e in chapter.EXPERIMENTS
               if e.keras_fit_seconds and e.name != "deep_wavenet") == pytest.approx(636.1)


@pytest.mark.parametrize("name", [e.name for e in chapter.EXPERIMENTS if e.build is not None])
def test_each_model_maps_its_task_inputs_to_its_targets(name):
    experiment = chapter.get_experiment(name)
    run = chapter.ChapterRun(n_series=20)
    (X, Y), _ = run.splits(experiment)
    tinyrnn.set_random_seed(0)
    model = experiment.build()
    assert model.predict(X[:3]).shape == Y[:3].shape


def test_conv_gru_targets_are_cropped_as_the_course_does():
    run = chapter.ChapterRun(n_series=20)
    (X, Y), _ = run.splits(chapter.get_experiment("conv_gru"))
    full = run.data("seq2seq")["train"][1]
    assert Y.shape == (len(X), 24, 10)
    numpy.testing.assert_array_equal(Y, full[:, 3::2])


def test_iterative_10_gives_the_same_figure_alone_as_after_deep_rnn_dense():
    together = chapter.ChapterRun(epochs=1, n_series=100, verbose=False)
    trained = together.run(chapter.get_experiment("deep_rnn_dense"))
    reused = together.run(chapter.get_experiment("iterative_10"))
    assert reused.model is trained.model
    fresh = chapter.ChapterRun(epochs=1, n_series=100, verbose=False)
    alone = fresh.run(chapter.get_experiment("iterative_10"))
    assert alone.ours == reused.ours
    assert alone.predictions.shape == (20, 10)


def test_naive_figures_match_the_course():
    """The naive forecasts need no training: on the course's data they give its figures."""
    run = chapter.ChapterRun(verbose=False)
    for name in ("naive", "naive_10"):
        result = run.run(chapter.get_experiment(name))
        assert result.ours == pytest.approx(chapter.get_experiment(name).course, abs=5e-6)
        assert result.verdict == "within"


def test_results_table_and_verdicts():
    run = chapter.ChapterRun(n_series=100, verbose=False, comparable=False)
    result = run.run(chapter.get_experiment("naive"))
    assert result.verdict == "-"  # quick data: not comparable
    table = chapter.results_table([result], quick=True)
    assert "| naive " in table and "QUICK MODE" in table
    assert chapter.verdict(1.15) == "PASS" and chapter.verdict(1.16) == "FAIL"
    assert chapter.mark(1.15) == "within" and chapter.mark(1.16) == "above" and chapter.mark(None) == "-"


def test_single_seed_table_states_the_rule_and_quick_mode_leaves_out_keras_times():
    trained = chapter.ChapterRun(epochs=1, n_series=40, verbose=False).run(chapter.get_experiment("linear"))
    full = chapter.results_table([trained])
    assert "Keras s" in full and "| 5.7 " in full  # Keras 3's fit time beside ours
    assert "median over seeds 42 to 46" in full and "--seeds 5" in full and "for information" in full
    quick = chapter.results_table([trained], quick=True)
    assert "Keras s" not in quick and "5.7" not in quick
    assert "fit times (full data, 20 epochs) are left out" in quick


# --- several seeds: the acceptance check ---------------------------------------------------------
def fake_result(name, ours, seed, error=None):
    e = chapter.get_experiment(name)
    return chapter.Result(name=name, architecture=e.architecture, task=e.task, figure=e.figure, ours=ours,
                          course=e.course, keras3=e.keras3, reference=e.reference, ratio=None,
                          verdict="-", seconds=1.0, keras_fit_seconds=e.keras_fit_seconds, epochs=20,
                          error=error, seed=seed)


def test_summarize_seeds_takes_the_median_against_the_larger_reference():
    e = chapter.get_experiment("conv_gru")  # references 0.0080 (course) and 0.006396 (Keras 3)
    figures = [0.009227, 0.008885, 0.008507, 0.007761, 0.008320]  # seeds 42 to 46, in seed order
    s = chapter.summarize_seeds(e, [fake_result("conv_gru", f, 42 + i) for i, f in enumerate(figures)])
    assert s.seeds == [42, 43, 44, 45, 46] and s.figures == figures
    assert (s.median, s.smallest, s.largest) == (0.008507, 0.007761, 0.009227)
    assert s.reference == 0.008 and s.ratio == pytest.approx(0.008507 / 0.008)
    assert s.verdict == "PASS"  # seed 42 alone is 1.153x; the median is 1.06x
    worse = chapter.summarize_seeds(e, [fake_result("conv_gru", f * 1.1, 42 + i)
                                        for i, f in enumerate(figures)])
    assert worse.ratio == pytest.approx(1.1 * 0.008507 / 0.008) and worse.verdict == "FAIL"
    failed = fake_result("conv_gru", float("nan"), 43, error="TrainingError: nan")
    broken = chapter.summarize_seeds(e, [fake_result("conv_gru", 0.008, 42), failed])
    assert broken.verdict == "ERROR" and broken.errors == ["seed 43: TrainingError: nan"]
    assert json.dumps(broken.to_dict())  # NaN becomes null
    table = chapter.seeds_table([s, worse])
    assert "| conv_gru " in table and "| 42-46 " in table and "PASS" in table and "FAIL" in table
    assert "median of its figure over seeds 42 to 46" in table and "not the rule's" not in table


def test_seed_jobs_keep_a_forecast_with_the_model_it_uses_and_run_longest_first():
    experiments = chapter.select_experiments(["naive", "deep_rnn_dense", "iterative_10", "gru"])
    jobs = chapter.seed_jobs(experiments, [42, 43])
    assert sorted(jobs) == sorted([(s, names) for s in (42, 43)
                                   for names in (["naive"], ["deep_rnn_dense", "iterative_10"], ["gru"])])
    assert jobs[:2] == [(42, ["gru"]), (43, ["gru"])]  # the longest (Keras: 98 s) first
    alone = chapter.seed_jobs(chapter.select_experiments(["iterative_10"]), [42])
    assert alone == [(42, ["iterative_10"])]  # it trains deep_rnn_dense itself


def test_seeds_run_in_parallel_give_each_seed_its_single_seed_figure(quick_run, tmp_path):
    """Two worker processes: seed 42's figures equal the single-seed run's, and one process agrees."""
    names = "lstm,iterative_10"
    proc, _ = run_cli("chapter", "--quick", "--only", names, "--seeds", "2", "--workers", "2",
                      "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 experiments x seeds 42..43: 4 jobs in 2 processes" in proc.stdout
    parallel = json.loads((tmp_path / "two" / "results.json").read_text())
    assert parallel["seeds"] == [42, 43] and parallel["workers"] == 2
    single_run = json.loads((quick_run[0] / "results.json").read_text())
    single = {r["name"]: r["ours"] for r in single_run["results"]}
    for s in parallel["summaries"]:
        assert s["figures"][0] == single[s["name"]], s["name"]
        assert s["figures"][1] != s["figures"][0]  # seed 43 makes other data and weights
        assert s["median"] == pytest.approx(numpy.median(s["figures"])) and s["verdict"] == "-"
    report = (tmp_path / "two" / "report.md").read_text()
    assert "| lstm " in report and "seed 43" in report and "--seeds 2" in report
    before = tinyrnn.backend.blas_threads()
    tinyrnn.backend.limit_blas_threads(1)  # as the workers: the order of BLAS's sums is part of a figure
    try:
        here = chapter.run_seeds(names, seeds=2, quick=True, out=None, workers=1, verbose=False)
    finally:
        if before:
            tinyrnn.backend.limit_blas_threads(before)
    assert [s.figures for s in here] == [s["figures"] for s in parallel["summaries"]]


# --- forecasts --------------------------------------------------------------------------------------
def series(B=3, T=6, seed=0):
    return numpy.random.default_rng(seed).normal(size=(B, T, 1)).astype("float32")


def test_naive_forecast_repeats_the_last_value():
    X = series()
    numpy.testing.assert_array_equal(naive_forecast(X), X[:, -1])
    Y = naive_forecast(X, n_ahead=10)
    assert Y.shape == (3, 10)
    numpy.testing.assert_array_equal(Y, numpy.repeat(X[:, -1], 10, axis=1))
    with pytest.raises(ValueError, match="n_ahead"):
        naive_forecast(X, 0)


def test_iterative_forecast_feeds_its_forecasts_back():
    tinyrnn.set_random_seed(1)
    model = Sequential([SimpleRNN(4, return_sequences=True, input_shape=[None, 1]), SimpleRNN(3), Dense(1)])
    X = series()
    Y = iterative_forecast(model, X, 10)
    assert Y.shape == (3, 10)
    manual = X
    for _ in range(10):  # the course's loop
        manual = numpy.concatenate([manual, model.predict(manual)[:, numpy.newaxis, :]], axis=1)
    numpy.testing.assert_array_equal(Y, manual[:, X.shape[1]:, 0])


def test_mc_dropout_spread_comes_from_dropout_only():
    X = series(B=4)
    tinyrnn.set_random_seed(2)
    with_dropout = Sequential([GRU(5, return_sequences=True, dropout=0.2, recurrent_dropout=0.2,
                                   input_shape=[None, 1]), TimeDistributed(Dense(2))])
    mean, std = mc_dropout(with_dropout, X, n_samples=20)
    assert mean.shape == std.shape == (4, 6, 2)
    assert (std > 0).all()
    without = Sequential([GRU(5, return_sequences=True, input_shape=[None, 1]), TimeDistributed(Dense(2))])
    mean, std = mc_dropout(without, X, n_samples=5)
    assert (std == 0).all()
    numpy.testing.assert_allclose(mean, without.predict(X), rtol=1e-6)


def test_mc_dropout_with_a_dropout_layer():
    tinyrnn.set_random_seed(3)
    model = Sequential([SimpleRNN(4, input_shape=[None, 1]), Dropout(0.5), Dense(1)])
    _, std = mc_dropout(model, series(), n_samples=10)
    assert (std > 0).all()
