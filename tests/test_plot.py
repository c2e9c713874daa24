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
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["training loss", "validation loss"]  # no grad_norm
    assert [line.get_linestyle() for line in ax.lines] == ["--", "-"]
    fig = plot.plot_learning_curves(history.history, keys=["val_loss"])
    assert len(fig.axes[0].lines) == 1


def test_learning_curves_say_what_they_plot():
    history = {"loss": [0.3, 0.2], "val_loss": [0.25, 0.2]}
    ax = plot.plot_learning_curves(history, loss_name="MSE").axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["training MSE", "validation MSE"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "MSE (log scale)"
    assert ax.get_title() == "MSE per epoch"
    seq = {**history, "last_time_step_mse": [0.2, 0.1], "val_last_time_step_mse": [0.2, 0.15]}
    ax = plot.plot_learning_curves(seq, keys=["last_time_step_mse", "val_last_time_step_mse"],
                                   title="lstm").axes[0]
    assert ax.get_ylabel() == "last-step MSE (log scale)" and ax.get_title() == "lstm"
    ax = plot.plot_learning_curves(seq, loss_name="MSE").axes[0]
    assert ax.get_ylabel() == "MSE, last-step MSE (log scale)"
    assert ax.get_title() == "MSE and last-step MSE per epoch"


def test_plot_learning_curves_grid_shows_each_models_figure():
    mse = {"loss": [0.3, 0.2], "val_loss": [0.25, 0.2]}
    seq = {**mse, "last_time_step_mse": [0.2, 0.1], "val_last_time_step_mse": [0.2, 0.15]}
    fig = plot.plot_learning_curves_grid({"a": mse, "b": seq, "c": mse, "d": mse, "e": seq}, loss_name="MSE")
    assert isinstance(fig, Figure) and len(fig.axes) == 5  # a 2 x 4 grid, 3 spare cells removed
    labels = [line.get_label() for line in fig.axes[1].lines]
    assert labels == ["training last-step MSE", "validation last-step MSE"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d", "e"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["MSE", "last-step MSE", "MSE", "MSE", "last-step MSE"]
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["training", "validation"]
    assert "learning curves" in fig.get_suptitle().lower()


def _visible_y_labels(ax):
    """The y tick labels matplotlib draws (ticks inside the view, non-empty text), after a draw."""
    return [text for _, text in _y_tick_labels(ax)]


def _y_tick_labels(ax):
    """[(tick value, label)] of the labelled y ticks inside the view, major then minor, after a draw."""
    ax.figure.canvas.draw()
    low, high = ax.get_ylim()
    labels = ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True)
    return [(label.get_position()[1], label.get_text()) for label in labels
            if label.get_text() and low <= label.get_position()[1] <= high]


@pytest.mark.parametrize(("values", "at_least"), [
    ([0.1459, 0.1470, 0.1521], 3),   # the deep WaveNet panel: was "0.15 0.15 0.15 ..."
    ([0.1501, 0.1503], 3),           # narrower still
    ([0.0062, 0.0071, 0.0079], 3),   # evenly spaced fallback ticks inside one decade
    ([0.085, 0.13], 3),              # only 0.09 and 0.1 on the log rule: evenly spaced ones instead
    ([0.02, 0.4], 3),                # about a decade: log-spaced minor ticks
    ([1e-6, 0.5], 3),                # many decades
])
def test_log_axis_labels_are_distinct_exact_and_few(values, at_least):
    ax = plot.plot_learning_curves({"loss": values, "val_loss": values[::-1]}).axes[0]
    labels = _visible_y_labels(ax)
    assert len(labels) >= at_least, labels
    assert len(labels) == len(set(labels)), f"repeated tick labels {labels}"
    assert len(labels) <= 2 * 5, labels  # at most 5 major and 5 minor labels
    low, high = ax.get_ylim()
    for text in labels:
        value = float(text.replace("\u2212", "-"))
        assert low <= value <= high, f"label {text} outside the view {low}..{high}"
    for loc, text in _y_tick_labels(ax):  # each label is its tick's exact value
        assert float(text.replace("\u2212", "-")) == pytest.approx(loc, rel=1e-9), (loc, text)


def test_log_axis_labels_use_no_powers_of_ten_between_1_and_a_million():
    ax = plot.plot_learning_curves({"loss": [2.0, 300.0]}).axes[0]
    labels = _visible_y_labels(ax)
    assert "100" in labels and not any("e+" in text for text in labels), labels


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


def _long_memory_result(relative, epochs, grad_norms):
    baseline = 0.16
    return {"relative": relative, "solved": relative <= 0.05, "epochs": epochs, "baseline": baseline,
            "val_mse": list(numpy.linspace(baseline, relative * baseline, epochs)),
            "grad_norms": list(grad_norms), "reach": grad_norms[0] / grad_norms[-1]}


def test_plot_long_memory():
    long_T = 12
    fading = numpy.concatenate([numpy.zeros(4), numpy.geomspace(1e-20, 1.0, long_T - 4)])  # 0 up to t = 4
    experiment = {"solved_fraction": 0.05, "results": {
        name: {"6": _long_memory_result(0.01, 2, numpy.ones(6)),
               str(long_T): _long_memory_result(1.1 if name == "SimpleRNN" else 0.02, 3,
                                                fading if name == "SimpleRNN" else numpy.full(long_T, 0.5))}
        for name in ("SimpleRNN", "LSTM", "GRU")}}
    fig = plot.plot_long_memory(experiment)
    after, curves, grads = fig.axes
    assert [ax.get_yscale() for ax in fig.axes] == ["log"] * 3
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    cells = ("SimpleRNN", "LSTM", "GRU")
    assert [line.get_label() for line in after.lines][:3] == [f"{n} (2, 3 epochs)" for n in cells]
    numpy.testing.assert_allclose(after.lines[0].get_ydata(), [1.0, 110.0])   # % of answering the mean
    numpy.testing.assert_array_equal(after.lines[0].get_xdata(), [6, long_T])
    assert len(curves.lines[1].get_xdata()) == 3                              # one point per epoch
    simple = grads.lines[0]
    assert simple.get_label() == "SimpleRNN (exactly 0 for t <= 4)"
    assert numpy.isnan(simple.get_ydata()[:4]).all() and simple.get_ydata()[-1] == 1.0
    assert "T = 12" in grads.get_title()


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


def test_plot_attention_heat_map():
    weights = rng.dirichlet(numpy.ones(5), size=3)                 # (Ty, Tx), rows sum to 1
    fig = plot.plot_attention(weights, list("1 May"), ["2", "0", "<end>"], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2", "0", "<end>"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "␣", "M", "a", "y"]
    numpy.testing.assert_array_equal(ax.images[0].get_array(), weights)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        plot.plot_attention(weights, list("1 Ma"), ["2", "0", "<end>"])
