"""tinyrnn.plot: every function returns a Figure with the axes and lines it promises."""

import numpy
import pytest
from matplotlib.figure import Figure

from tinyrnn import History, plot

rng = numpy.random.default_rng(0)
T, N_AHEAD = 50, 10


def test_plot_series_lines():
    x = rng.normal(size=(T, 1))
    fig = plot.plot_series(x)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert len(fig.axes[0].lines) == 1
    fig = plot.plot_series(x, y_true=0.3, y_pred=numpy.array([0.25]))
    assert len(fig.axes[0].lines) == 3
    fig = plot.plot_series(x[:, 0], y_true=rng.normal(size=N_AHEAD), y_pred=rng.normal(size=N_AHEAD))
    assert len(fig.axes[0].lines[1].get_xdata()) == N_AHEAD
    assert fig.axes[0].lines[1].get_xdata()[0] == T  # the future starts right after the inputs


def test_plot_series_rejects_a_batch():
    with pytest.raises(ValueError, match="one series"):
        plot.plot_series(rng.normal(size=(3, T, 1)))


def test_plot_learning_curves_from_history_or_dict():
    history = History()
    for epoch in range(3):
        history.append(epoch, {"loss": 0.1 / (epoch + 1), "grad_norm": 1.0, "val_loss": 0.2 / (epoch + 1)})
    fig = plot.plot_learning_curves(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert [line.get_label() for line in fig.axes[0].lines] == ["loss", "val_loss"]  # no grad_norm
    fig = plot.plot_learning_curves(history.history, keys=["val_loss"])
    assert len(fig.axes[0].lines) == 1


def test_plot_learning_curves_grid_shows_each_models_figure():
    mse = {"loss": [0.3, 0.2], "val_loss": [0.25, 0.2]}
    seq = {**mse, "last_time_step_mse": [0.2, 0.1], "val_last_time_step_mse": [0.2, 0.15]}
    fig = plot.plot_learning_curves_grid({"a": mse, "b": seq, "c": mse, "d": mse, "e": seq})
    assert isinstance(fig, Figure) and len(fig.axes) == 5  # a 2 x 4 grid, 3 spare cells removed
    labels = [line.get_label() for line in fig.axes[1].lines]
    assert labels == ["last_time_step_mse", "val_last_time_step_mse"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)


def test_plot_multiple_forecasts():
    X, Y, Y_pred = rng.normal(size=(4, T, 1)), rng.normal(size=(4, N_AHEAD)), rng.normal(size=(4, N_AHEAD))
    fig = plot.plot_multiple_forecasts(X, Y, Y_pred, index=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = fig.axes[0].lines
    assert len(lines) == 3
    numpy.testing.assert_array_equal(lines[2].get_ydata(), Y_pred[2])
    with pytest.raises(ValueError):
        plot.plot_multiple_forecasts(X, Y, Y_pred[:, :5])


def test_plot_mc_dropout():
    mean, std = rng.normal(size=N_AHEAD), rng.uniform(0.01, 0.1, size=N_AHEAD)
    fig = plot.plot_mc_dropout(rng.normal(size=T), mean, std, y_true=rng.normal(size=N_AHEAD))
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 1  # inputs, mean, truth; the +-2 std band
    fig = plot.plot_mc_dropout(rng.normal(size=(T, 1)), mean, std)
    assert len(fig.axes[0].lines) == 2


def test_plot_gradient_norms():
    norms = {name: numpy.exp(-rng.uniform(size=T).cumsum()) for name in ("SimpleRNN", "LSTM", "GRU")}
    fig = plot.plot_gradient_norms(norms)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["SimpleRNN", "LSTM", "GRU"]
    assert ax.get_yscale() == "log"
    assert ax.lines[0].get_xdata()[0] == 1 and len(ax.lines[0].get_xdata()) == T


def test_figures_do_not_pile_up_in_pyplot(tmp_path):
    from matplotlib import pyplot

    before = len(pyplot.get_fignums())
    fig = plot.plot_series(rng.normal(size=T))
    fig.savefig(tmp_path / "series.png")
    assert len(pyplot.get_fignums()) == before
    assert (tmp_path / "series.png").stat().st_size > 1000


def test_show_saves_a_png_only_when_asked(tmp_path, monkeypatch):
    fig = plot.plot_series(rng.normal(size=T))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TINYRNN_TUTORIAL_OUT", raising=False)
    assert plot.show(fig, "series") is None
    assert list(tmp_path.iterdir()) == []  # a script without TINYRNN_TUTORIAL_OUT writes nothing

    figures = tmp_path / "figures"
    monkeypatch.setenv("TINYRNN_TUTORIAL_OUT", str(figures))
    plot.show(fig, "01_series")
    plot.show(fig)
    saved = sorted(p.name for p in figures.iterdir())
    assert saved[0] == "01_series.png" and saved[1].startswith("figure_") and len(saved) == 2
    assert (figures / "01_series.png").stat().st_size > 1000


def test_show_displays_inline_in_a_jupyter_kernel(tmp_path, monkeypatch):
    """In a kernel the figure goes to IPython's display, never to a file."""
    import sys
    import types

    displayed = []
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setitem(sys.modules, "IPython.display", types.SimpleNamespace(display=displayed.append))
    monkeypatch.setenv("TINYRNN_TUTORIAL_OUT", str(tmp_path))
    fig = plot.plot_series(rng.normal(size=T))
    plot.show(fig, "series")
    assert displayed == [fig]
    assert list(tmp_path.iterdir()) == []
