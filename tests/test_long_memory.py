"""The adding problem (``tinyrnn.data.adding_problem``) and the long-memory experiment behind the
chapter's "why gates exist" figure (``tinyrnn.long_memory``)."""

import numpy
import pytest

import tinyrnn
from tinyrnn import data, long_memory

B, T = 6, 23


def test_adding_problem_shapes_markers_and_targets():
    X, y = data.adding_problem(B, T, seed=3)
    assert X.shape == (B, T, 2) and y.shape == (B, 1)
    assert X.dtype == numpy.float32 and y.dtype == numpy.float32
    values, markers = X[:, :, 0], X[:, :, 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(numpy.unique(markers)) == {0.0, 1.0}
    assert (markers.sum(axis=1) == 2).all()                      # exactly two marked steps
    for b in range(B):
        first, second = numpy.flatnonzero(markers[b])
        assert first < T // 10 and second >= T // 2              # far apart: early and late
        assert y[b, 0] == pytest.approx(values[b, first] + values[b, second], rel=1e-6)


def test_adding_problem_is_seeded():
    X1, y1 = data.adding_problem(B, T, seed=5)
    X2, y2 = data.adding_problem(B, T, seed=5)
    X3, _ = data.adding_problem(B, T, seed=6)
    numpy.testing.assert_array_equal(X1, X2)
    numpy.testing.assert_array_equal(y1, y2)
    assert not numpy.array_equal(X1, X3)


def test_adding_problem_first_marker_position_for_short_sequences():
    X, _ = data.adding_problem(50, 2, seed=0)                    # T = 2: first at 0, second at 1
    numpy.testing.assert_array_equal(X[:, :, 1], numpy.ones((50, 2)))


def test_adding_problem_baseline_is_the_target_variance():
    _, y = data.adding_problem(40000, 10, seed=1)
    assert y.var() == pytest.approx(data.ADDING_BASELINE_MSE, rel=0.03)
    assert y.mean() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("bad", [dict(n_samples=0, n_steps=5), dict(n_samples=3, n_steps=1),
                                 dict(n_samples=2.5, n_steps=5)])
def test_adding_problem_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="must be an integer"):
        data.adding_problem(**bad)


@pytest.mark.parametrize("cell", list(long_memory.CELLS))
def test_output_grad_norms_at_the_last_step_is_the_dense_kernel(cell):
    """dy_hat/dh_T is Dense(1)'s kernel w for every sample, so ||.|| over (B, H) is sqrt(B) ||w||."""
    tinyrnn.set_random_seed(7)
    model = long_memory.build_model(cell, units=4)
    X, _ = data.adding_problem(B, 5, seed=2)
    model.build((None, 5, 2))
    norms = long_memory.output_grad_norms(model, X)
    kernel = tinyrnn.to_numpy(model.layers[1].params["kernel"])   # (H, 1)
    assert norms.shape == (5,) and (norms > 0).all()
    assert norms[-1] == pytest.approx(numpy.sqrt(B) * numpy.linalg.norm(kernel), rel=1e-5)


def test_train_until_solved_stops_at_the_first_solved_epoch(monkeypatch):
    settings = long_memory.Settings(steps=(6,), units=3, n_train=32, n_valid=16, max_epochs=3, grad_samples=4)
    unsolvable = long_memory.train_until_solved("GRU", 6, settings, seed=0, log=lambda _: None)
    assert unsolvable["epochs"] == 3 and not unsolvable["solved"]  # 3 epochs cannot reach 5%
    monkeypatch.setattr(long_memory, "SOLVED_FRACTION", 100.0)     # anything counts as solved
    solved = long_memory.train_until_solved("GRU", 6, settings, seed=0, log=lambda _: None)
    assert solved["epochs"] == 1 and solved["solved"]
    assert solved["relative"] == pytest.approx(solved["val_mse"][-1] / solved["baseline"])
    assert len(solved["grad_norms"]) == 6
    assert solved["reach"] == pytest.approx(solved["grad_norms"][0] / solved["grad_norms"][-1])


def test_quick_experiment_covers_every_cell_and_length():
    logged = []
    experiment = long_memory.run_long_memory(long_memory.QUICK, seed=1, log=logged.append)
    steps = long_memory.QUICK.steps
    assert set(experiment["results"]) == {"SimpleRNN", "LSTM", "GRU"}
    for by_T in experiment["results"].values():
        assert list(by_T) == [str(n) for n in steps]
        for n in steps:
            result = by_T[str(n)]
            assert 1 <= result["epochs"] <= long_memory.QUICK.max_epochs
            assert len(result["grad_norms"]) == n and result["baseline"] > 0
    assert sum("T=" in line for line in logged) == 3 * len(steps)
    table = long_memory.summary_table(experiment)
    assert table.count("\n") == 1 + 3 and "| SimpleRNN |" in table and f"T = {steps[-1]}" in table


def test_command_line_prints_the_table_and_saves_the_figure(tmp_path, capsys):
    long_memory.main(["--quick", "--seed", "3", "--out", str(tmp_path / "memory.png")])
    printed = capsys.readouterr().out
    assert "| GRU |" in printed and "figure saved to" in printed
    assert (tmp_path / "memory.png").stat().st_size > 1000
