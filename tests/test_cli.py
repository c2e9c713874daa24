"""``python -m tinyrnn``: the subcommands, the gradient-check table, the bench hand-off."""

import os
import pathlib
import subprocess
import sys
import types

import pytest

import tinyrnn.__main__ as cli
from tinyrnn.layers import Dense

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "tinyrnn", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_help_lists_the_subcommands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("chapter", "gradcheck", "bench"):
        assert command in proc.stdout


def test_gradcheck_passes_for_every_layer_and_option():
    proc = run_cli("gradcheck")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    names = [name for name, *_ in cli.gradcheck_cases()]
    for name in names:
        assert name in proc.stdout
    assert "FAIL" not in proc.stdout
    assert f"{len(names)}/{len(names)} passed" in proc.stdout
    for layer in ("SimpleRNN", "LSTM", "GRU reset_after=True", "GRU reset_after=False", "PeepholeLSTMCell",
                  "LNSimpleRNNCell", "Dense", "TimeDistributed", "Flatten", "RepeatVector", "Dropout",
                  "LayerNormalization", "BatchNormalization (training)", "BatchNormalization (inference)",
                  "Conv1D padding=causal", "dilation_rate=2", "strides=2", "recurrent_dropout",
                  "return_state"):
        assert layer in proc.stdout, layer


class WrongDense(Dense):
    """Dense with a deliberately broken backward: the input gradient is doubled."""

    def backward(self, dy):
        return 2 * super().backward(dy)


def test_gradcheck_exits_1_on_a_failure(monkeypatch, capsys):
    case = ("WrongDense", lambda: WrongDense(3), (2, 4), False)
    monkeypatch.setattr(cli, "gradcheck_cases", lambda: [case])
    assert cli.main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "input" in out


def test_bench_hands_its_arguments_to_tinyrnn_bench(monkeypatch):
    seen = []
    fake = types.ModuleType("tinyrnn.bench")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "tinyrnn.bench", fake)
    assert cli.main(["bench", "--json", "--workloads", "W1"]) == 0
    assert seen == [["--json", "--workloads", "W1"]]


def test_bench_missing_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tinyrnn.bench", None)  # as if tinyrnn/bench.py did not exist
    assert cli.main(["bench"]) == 2
    assert "not part of this install" in capsys.readouterr().err


def test_no_subcommand_prints_help(capsys):
    assert cli.main([]) == 2
    assert "chapter" in capsys.readouterr().out


def test_chapter_list(capsys):
    assert cli.main(["chapter", "--list"]) == 0
    out = capsys.readouterr().out
    assert "deep_wavenet" in out and "Adam(0.005)" in out


@pytest.mark.parametrize("bad", [["chapter", "--epochs", "0"], ["chapter", "--only", ""],
                                 ["chapter", "--seeds", "0"], ["chapter", "--workers", "2"],
                                 ["chapter", "--seeds", "5", "--workers", "0"],
                                 ["chapter", "--seeds", "5", "--extras"]])
def test_chapter_rejects_bad_options(bad):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(bad + ["--threads", "0"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("seeds", [False, True])
def test_chapter_exits_0_when_it_completes_and_1_for_errors_or_strict_misses(monkeypatch, seeds):
    """A figure above 1.15x is reported, not an exit status, unless --strict asks; an error always is."""
    from tinyrnn import chapter as course

    missed, fine = ("FAIL", "PASS") if seeds else ("above", "within")
    verdicts = []
    runner = "run_seeds" if seeds else "run_chapter"
    monkeypatch.setattr(course, runner,
                        lambda *args, **kwargs: [types.SimpleNamespace(verdict=v) for v in verdicts])
    base = ["chapter", "--threads", "0"] + (["--seeds", "5"] if seeds else [])
    verdicts[:] = [fine, missed]
    assert cli.main(base) == 0
    assert cli.main(base + ["--strict"]) == 1
    verdicts[:] = [fine, "ERROR"]
    assert cli.main(base) == 1
    verdicts[:] = [fine, "-"]  # quick mode: nothing comparable
    assert cli.main(base + ["--strict"]) == 0


def test_chapter_seeds_passes_its_options_to_run_seeds(monkeypatch):
    from tinyrnn import chapter as course

    seen = {}
    monkeypatch.setattr(course, "run_seeds", lambda names, **kwargs: seen.update(names=names, **kwargs) or [])
    assert cli.main(["chapter", "--threads", "0", "--seeds", "3", "--seed", "50", "--only", "gru",
                     "--epochs", "4", "--quick", "--workers", "2", "--out", "somewhere"]) == 0
    assert seen["names"] == ["gru"]
    assert {k: seen[k] for k in ("seeds", "first_seed", "epochs", "quick", "workers", "out")} == \
        {"seeds": 3, "first_seed": 50, "epochs": 4, "quick": True, "workers": 2, "out": "somewhere"}
    assert seen["command"].startswith("python -m tinyrnn chapter") and "--seeds 3" in seen["command"]
