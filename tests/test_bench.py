"""The benchmark command runs end to end and reports what it promises (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy
import pytest

from tinyrnn import backend, bench, seeding

ROOT = pathlib.Path(__file__).resolve().parent.parent
CPU_WORKLOADS = ["W1", "W2-gru", "W2-simplernn", "W3", "W4", "char"]
GPU_WORKLOADS = ["W1-gpu", "W5"]
HAS_TORCH = importlib.util.find_spec("torch") is not None


def run_bench(*args, timeout=120):
    """``python -m tinyrnn.bench *args`` from the repository root; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("TINYRNN_BACKEND", None)  # the CPU workloads on NumPy
    # One BLAS thread (torch gets --threads 1): on a loaded shared machine, spinning
    # BLAS and OpenMP threads fighting for the same cores slow a tiny run down 10-40x.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tinyrnn.bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_quick_json_times_every_cpu_workload():
    done = run_bench("--quick", "--json", "--threads", "1")  # tinyrnn: its defaults, as fit runs
    assert done.returncode == 0, done.stderr
    records = {record["workload"]: record for record in json.loads(done.stdout)}
    assert list(records) == CPU_WORKLOADS + GPU_WORKLOADS
    for name in CPU_WORKLOADS:
        record = records[name]
        assert not record["skipped"], f"{name}: {record['note']}"
        assert record["unit"] == "epoch"
        assert record["tinyrnn_s"] > 0 and len(record["tinyrnn_times"]) == 1  # --quick: one repeat
        if HAS_TORCH:
            assert record["torch_s"] > 0, name
            assert record["ratio"] == pytest.approx(record["tinyrnn_s"] / record["torch_s"])
        else:
            assert record["torch_s"] is None and record["note"] == "torch not installed"
        for key in ("backend", "device", "threads", "torch_version", "numpy_version"):
            assert key in record, f"{name}: no {key!r}"
        assert record["backend"] == "numpy" and record["device"] == "cpu" and record["threads"] == 1
        assert record["blas_threads"] == "rule" and record["tinyrnn_threads"] == backend.available_cores()
    for name in GPU_WORKLOADS:  # the numpy backend: skipped, saying why
        assert records[name]["skipped"] and "cupy" in records[name]["note"]


def test_table_names_the_machine_and_prints_a_row():
    done = run_bench("--quick", "--workloads", "w2-simplernn,W1-gpu", "--threads", "1")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "machine:" in out and "numpy" in out and "1 threads" in out and "threads, blas =" in out
    row = next(line for line in out.splitlines() if line.startswith("W2-simplernn"))
    assert "SimpleRNN(20)" in row and ("x" in row.split()[-1] if HAS_TORCH else "torch not installed" in row)
    assert any(line.startswith("W1-gpu") and "skipped" in line for line in out.splitlines())


def test_memory_option_reports_peak_and_activations():
    done = run_bench("--memory", "--quick", "--json", "--threads", "1")
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)
    assert record["workload"] == "W3-memory" and record["peak_bytes"] > 0
    assert record["activation_bytes"] == bench.lstm_activation_bytes(2, 10, 64, 32)


def test_tinyrnn_runs_its_defaults_unless_asked():
    """No per-workload settings: the bench times what fit gets; the flags are opt-in overrides."""
    assert not {"threads", "blas_threads"} & set(bench.Workload.__dataclass_fields__)
    args = bench.parse_args(["--workloads", "W1"])
    assert args.tinyrnn_threads is None and args.blas_threads is None
    done = run_bench("--quick", "--json", "--workloads", "W2-simplernn", "--threads", "1",
                     "--tinyrnn-threads", "1", "--blas-threads", "2")
    assert done.returncode == 0, done.stderr
    (record, ) = json.loads(done.stdout)
    assert record["tinyrnn_threads"] == 1 and record["blas_threads"] == 2


def test_set_tinyrnn_threads_sets_the_engine_and_zero_means_every_core():
    try:
        bench.set_tinyrnn_threads(1, 0)
        assert backend.threads() == 1 and backend.blas_threads_override() == os.cpu_count()
        bench.set_tinyrnn_threads(0, None)
        assert backend.threads() == backend.available_cores()
    finally:
        backend.set_threads(None)
        backend.set_blas_threads(None)


@pytest.mark.parametrize("argv, named", [(["--workloads", "W1,W9"], "W9"),
                                         (["--blas-threads", "-1"], "--blas-threads"),
                                         (["--tinyrnn-threads", "-1"], "--tinyrnn-threads")])
def test_bad_arguments_are_usage_errors(capsys, argv, named):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_activation_formula_for_w3():
    # 2 layers x T=100 x B=64 x (4H gates + c + tanh c + h = 7H, H=256) x 4 bytes
    assert bench.lstm_activation_bytes(2, 100, 64, 256) == 91_750_400


def test_peak_memory_of_a_small_w3_step():
    state = seeding.get_state()
    try:
        memory = bench.peak_memory_w3(batch_size=4, n_steps=5, units=8, n_features=3)
    finally:
        seeding.set_state(state)
    assert memory["activation_bytes"] == 2 * 5 * 4 * 7 * 8 * 4
    assert memory["peak_bytes"] > 0
    assert memory["peak_over_activations"] == pytest.approx(memory["peak_bytes"] / memory["activation_bytes"])


def test_per_step_timing_runs_on_the_cpu_too():
    """The GPU workloads' per-step path (skipped on NumPy by the command), exercised on the CPU."""
    workload = next(w for w in bench.WORKLOADS if w.name == "W1-gpu")
    X, Y = workload.make_data(True)
    state = seeding.get_state()
    try:
        trainers = [bench.TinyrnnTrainer(workload, X, Y)]
        if HAS_TORCH:
            import torch

            with torch.random.fork_rng():
                trainers.append(bench.TorchTrainer(workload, X, Y, "cpu"))
        for trainer in trainers:
            bench.warm_up(trainer, workload)
            assert bench.time_once(trainer, workload, quick=True) > 0
    finally:
        seeding.set_state(state)


def test_ln_cell_option_trains_both_cells_from_the_same_start(capsys):
    """--ln-cell: the chapter's ln_rnn with the built-in cell and with the cell written with
    operations; both from the same weights and shuffles, so after 1 epoch the figures agree
    to float32 rounding (the time ratio is a measurement, not asserted)."""
    assert bench.main(["--ln-cell", "--epochs", "1", "--series", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["epochs"], result["n_train"], result["n_valid"]) == (1, 70, 20)
    assert result["builtin_s"] > 0 and result["recorded_s"] > 0
    assert result["time_ratio"] == pytest.approx(result["recorded_s"] / result["builtin_s"])
    assert result["figure_ratio"] == pytest.approx(1.0, abs=1e-4)


def test_keras_ln_cell_is_the_built_in_cell_in_keras_s_protocol():
    from tinyrnn.backend import float_precision
    from tinyrnn.layers import RNN, LNSimpleRNNCell

    rng = numpy.random.default_rng(5)
    x = rng.normal(size=(2, 5, 3))
    with float_precision("float64"):
        mine = RNN(bench.KerasLNCell(4), return_sequences=True)
        ref = RNN(LNSimpleRNNCell(4), return_sequences=True)
        mine(x), ref(x)
        weights = [rng.normal(size=w.shape) for w in ref.get_weights()]      # gains and biases random too
        mine.set_weights(weights), ref.set_weights(weights)
        numpy.testing.assert_allclose(mine(x), ref(x), rtol=0, atol=1e-12)


def test_char_workload_replays_the_streams_in_order():
    X, Y = bench.char_data(quick=True)
    assert X.shape == Y.shape == (6 * 32, 100) and X.dtype.kind == "i"
    first, second = X[:32], X[32:64]                       # batch 0 and batch 1
    numpy.testing.assert_array_equal(Y[:32, -1], second[:, 0])   # row b of batch 1 continues row b of batch 0
    numpy.testing.assert_array_equal(Y[:32, :-1], first[:, 1:])
    workload = next(w for w in bench.WORKLOADS if w.name == "char")
    assert not workload.shuffle and workload.batch_size == 32 and workload.optimizer == "nadam"


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_char_twins_compute_the_same_loss_and_gradients():
    """The PyTorch twin is the same model: with tinyrnn's weights copied in, the same loss on a batch
    (float64), and after one Nadam / NAdam step with Keras's defaults, the same weights."""
    import torch

    from tinyrnn import interop

    X, Y = bench.char_data(quick=True)
    xb, yb = X[:2, :5], Y[:2, :5]                            # B=2, T=5
    with backend.float_precision("float64"):
        seeding.set_random_seed(1)
        tiny = bench.char_model()
        tiny.compile(loss="sparse_categorical_crossentropy", optimizer="nadam")
        tiny.build((None, 5))
        rng = numpy.random.default_rng(2)
        tiny.set_weights([w + rng.normal(scale=0.1, size=w.shape) for w in tiny.get_weights()])  # biases too
        twin = bench.torch_char_model().double()
        embed, gru, dense = tiny.layers
        twin.embed.weight.data = torch.from_numpy(numpy.array(embed.get_weights()[0]))
        twin.gru.load_state_dict(interop.to_torch_state_dict(gru))
        twin.head.load_state_dict(interop.to_torch_state_dict(dense))
        trainer = bench.TorchTrainer.__new__(bench.TorchTrainer)
        workload = next(w for w in bench.WORKLOADS if w.name == "char")
        bench.TorchTrainer.__init__(trainer, workload, xb, yb, "cpu")
        trainer.model = twin
        trainer.optimizer = type(trainer.optimizer)(twin.parameters(), **trainer.optimizer.defaults)
        torch_loss = trainer.train_on_batch(torch.from_numpy(xb), torch.from_numpy(yb))
        tiny_loss, _, _ = tiny.train_step(*tiny._prepare(xb, yb))
        assert tiny_loss == pytest.approx(torch_loss, rel=1e-10)
        numpy.testing.assert_allclose(dense.get_weights()[0], twin.head.weight.detach().numpy().T,
                                      rtol=1e-7, atol=1e-10)
        numpy.testing.assert_allclose(embed.get_weights()[0], twin.embed.weight.detach().numpy(),
                                      rtol=1e-7, atol=1e-10)


def test_against_times_two_checkouts_alternating(tmp_path):
    """``--against``: the same engine on both sides (this checkout twice), paired ratios near 1."""
    done = run_bench("--against", str(ROOT), "--workloads", "W1,W1-gpu", "--batches", "1", "--rounds", "3",
                     "--quick", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)                              # per-step (GPU) workloads left out
    assert result["workload"] == "W1" and result["this"] == result["other"] == str(ROOT)
    assert len(result["this_times"]) == len(result["other_times"]) == 3
    assert result["ratio_min"] <= result["ratio"] <= result["ratio_max"]
    assert result["this_s"] > 0 and result["other_s"] > 0
    missing = run_bench("--against", str(tmp_path), "--workloads", "W1", "--quick")
    assert missing.returncode != 0 and "not a checkout of tinyrnn" in missing.stderr
