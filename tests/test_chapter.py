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
        assert result.verdict == "PASS"


def test_results_table_and_verdicts():
    run = chapter.ChapterRun(n_series=100, verbose=False, comparable=False)
    result = run.run(chapter.get_experiment("naive"))
    assert result.verdict == "-"  # quick data: not comparable
    table = chapter.results_table([result], quick=True)
    assert "| naive " in table and "QUICK MODE" in table
    assert chapter.verdict(1.15) == "PASS" and chapter.verdict(1.16) == "FAIL"


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
