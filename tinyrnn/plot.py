"""The chapter's figures, as functions that return a matplotlib ``Figure``.

Each function draws one figure and returns it without showing it: in Jupyter
leave the figure as a cell's last value to display it, in a script save it
with ``fig.savefig("name.png")``; or hand it to ``show(fig, name)``, which
does whichever fits where it runs (the tutorials use it). Figures are closed
in pyplot's registry before they are returned, so a loop that makes many
figures keeps no memory and Jupyter shows each figure once. Without a
display (a server, CI) the Agg backend is chosen, unless you picked a backend
yourself. Every function also takes ``ax=`` to draw into an Axes you already
have (a grid of panels).

Series plots follow the course's notebook: the inputs as a blue line with
dots, the true future values as red circles, the forecasts as crosses.
Shapes: T input steps, n_ahead forecast steps, B series.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import sys

import matplotlib
import numpy
from matplotlib.ticker import LogFormatter, MaxNLocator

if ("matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ
        and sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))):
    matplotlib.use("Agg")  # no display: render to files only

from matplotlib import pyplot  # noqa: E402  (after the backend is chosen)

_unnamed_figures = itertools.count(1)  # show()'s file names for figures without a name


def _new_figure(nrows=1, ncols=1, figsize=(7, 4), **kwargs):
    fig, axes = pyplot.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="tight", **kwargs)
    pyplot.close(fig)  # the caller owns it: no pyplot state, no double display in Jupyter
    return fig, axes


def _figure_and_axes(ax):
    """(figure, axes) of ``ax``, or of a new one-panel figure when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax
    fig, axes = _new_figure()
    return fig, axes[0, 0]


def _one_series(a, what) -> numpy.ndarray:
    """A single series as a 1-D array: (T,), (T, 1) and (1, T, 1) are all accepted."""
    a = numpy.asarray(a, dtype=float)
    if sum(d > 1 for d in a.shape) > 1:
        raise ValueError(f"{what} must be one series, e.g. shape (T,) or (T, 1), got shape {a.shape}")
    return a.reshape(-1)


def plot_series(series, y_true=None, y_pred=None, x_label="$t$", y_label="$x(t)$", title=None, ax=None):
    """One input series, and optionally its true future value(s) and a forecast.

    Parameters
    ----------
    series : (T,) or (T, 1), the inputs x(0) .. x(T - 1).
    y_true, y_pred : scalar or (n_ahead,), the values at steps T .. T + n_ahead - 1.
    ax : draw on this Axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes; one line for the series, one for each of ``y_true`` and ``y_pred`` that is given.
    """
    fig, ax = _figure_and_axes(ax)
    x = _one_series(series, "series")
    T = len(x)
    ax.plot(numpy.arange(T), x, ".-", color="tab:blue", label="inputs")
    if y_true is not None:
        y = _one_series(y_true, "y_true")
        ax.plot(numpy.arange(T, T + len(y)), y, "o", color="tab:red", label="target", markersize=7)
    if y_pred is not None:
        y = _one_series(y_pred, "y_pred")
        ax.plot(numpy.arange(T, T + len(y)), y, "x", color="black", label="forecast",
                markersize=9, markeredgewidth=2)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    if y_true is not None or y_pred is not None:
        ax.legend(loc="best", fontsize="small")
    return fig


def plot_learning_curves(history, keys=None, title=None, ax=None, legend=True):
    """Training and validation curves, one line per logged quantity, log scale.

    Parameters
    ----------
    history : a ``History`` (what ``fit`` returns) or its ``history`` dict,
        {"loss": [...], "val_loss": [...], ...}, one value per epoch.
    keys : which quantities to draw; None means every one but the gradient
        norm (``grad_norm``, which is not a loss).
    ax : draw on this Axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes, one line per key; training dashed, validation solid.
    """
    logs = getattr(history, "history", history)
    keys = [k for k in logs if k != "grad_norm"] if keys is None else list(keys)
    fig, ax = _figure_and_axes(ax)
    for key in keys:
        values = logs[key]
        style = "-" if key.startswith("val_") else "--"
        ax.plot(numpy.arange(1, len(values) + 1), values, style, marker=".", label=key)
    _log_y_axis(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    if legend:
        ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def headline_keys(history) -> list:
    """The quantity a model is judged by and its validation twin: the last metric
    compiled (e.g. ``last_time_step_mse``), else the loss."""
    logs = getattr(history, "history", history)
    train_keys = [k for k in logs if not k.startswith("val_") and k != "grad_norm"]
    key = train_keys[-1]
    return [key, f"val_{key}"] if f"val_{key}" in logs else [key]


def plot_learning_curves_grid(histories: dict, ncols: int = 4):
    """One small panel per experiment, {name: History or dict}, each showing the
    figure it is judged by (``headline_keys``) for training and validation.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per experiment, spare grid cells removed.
    """
    if not histories:
        raise ValueError("plot_learning_curves_grid needs at least one history")
    ncols = min(ncols, len(histories))
    nrows = -(-len(histories) // ncols)
    fig, axes = _new_figure(nrows, ncols, figsize=(3.4 * ncols, 2.5 * nrows))
    for ax, (name, history) in zip(axes.flat, histories.items()):
        keys = headline_keys(history)
        plot_learning_curves(history, keys=keys, title=f"{name}: {keys[-1]}", ax=ax, legend=False)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.title.set_fontsize("small")
    for ax in list(axes.flat)[len(histories):]:
        fig.delaxes(ax)
    fig.supxlabel("epoch (dashed: training, solid: validation)", fontsize="small")
    return fig


class _PlainLogFormatter(LogFormatter):
    """Two significant digits (0.11, 0.2, 1e-06), also when the axis spans less than a decade."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:.2g}"


def _log_y_axis(ax):
    """Log scale with plain tick labels (0.02, 1e-06): cheaper to draw than LaTeX powers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
    ax.grid(True, which="both", alpha=0.3)


def plot_multiple_forecasts(X, Y, Y_pred, index=0, title=None, ax=None):
    """A multi-step forecast against the truth, for series ``index`` of a batch.

    Parameters
    ----------
    X : (B, T, 1), the input series.
    Y : (B, n_ahead) or (B, n_ahead, 1), the true next values.
    Y_pred : same shape as Y, the forecasts.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes, three lines: inputs, actual, forecast.
    """
    X, Y, Y_pred = numpy.asarray(X), numpy.asarray(Y), numpy.asarray(Y_pred)
    if X.ndim != 3 or Y.shape[:2] != Y_pred.shape[:2] or Y.shape[0] != X.shape[0]:
        raise ValueError(f"expected X (B, T, 1) and Y, Y_pred (B, n_ahead); got shapes "
                         f"{X.shape}, {Y.shape}, {Y_pred.shape}")
    fig, ax = _figure_and_axes(ax)
    plot_series(X[index], ax=ax, title=title)
    T, n_ahead = X.shape[1], Y.shape[1]
    steps = numpy.arange(T, T + n_ahead)
    ax.plot(steps, Y[index].reshape(-1), "o-", color="tab:red", label="actual")
    ax.plot(steps, Y_pred[index].reshape(-1), "x-", color="black", label="forecast", markersize=9)
    ax.legend(loc="best", fontsize="small")
    return fig


def plot_mc_dropout(X, mean, std, y_true=None, title=None, ax=None):
    """An MC-dropout forecast: the mean of the stochastic forecasts with a band
    of +-2 standard deviations (about 95% if the spread were Gaussian).

    Parameters
    ----------
    X : (T,) or (T, 1), one input series.
    mean, std : (n_ahead,), from ``tinyrnn.forecast.mc_dropout`` for that series.
    y_true : (n_ahead,), the true next values, optional.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes; lines: inputs, mean forecast, and the truth when given; the band is a filled area.
    """
    mean, std = _one_series(mean, "mean"), _one_series(std, "std")
    if mean.shape != std.shape:
        raise ValueError(f"mean and std must have the same shape, got {mean.shape} and {std.shape}")
    fig, ax = _figure_and_axes(ax)
    plot_series(X, ax=ax, title=title)
    T = len(_one_series(X, "X"))
    steps = numpy.arange(T, T + len(mean))
    ax.fill_between(steps, mean - 2 * std, mean + 2 * std, color="tab:orange", alpha=0.3,
                    label="mean $\\pm$ 2 std")
    ax.plot(steps, mean, "x-", color="tab:orange", label="MC-dropout mean", markersize=8)
    if y_true is not None:
        ax.plot(steps, _one_series(y_true, "y_true"), "o", color="tab:red", label="actual")
    ax.legend(loc="best", fontsize="small")
    return fig


def plot_gradient_norms(norms: dict, title="Gradient reaching the hidden state, per time step", ax=None):
    """Per-time-step gradient norms ||dL/dh_t||, one line per layer type, log scale.

    Parameters
    ----------
    norms : {"SimpleRNN": (T,), "LSTM": (T,), "GRU": (T,)}, e.g. each
        recurrent layer's ``hidden_grad_norms`` after one backward pass.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes, one line per entry. A line that falls towards t = 1 is a
        vanishing gradient: early steps barely learn.
    """
    fig, ax = _figure_and_axes(ax)
    for name, values in norms.items():
        values = _one_series(values, name)
        ax.plot(numpy.arange(1, len(values) + 1), values, ".-", label=name)
    _log_y_axis(ax)
    ax.set_xlabel("time step $t$")
    ax.set_ylabel("$\\|\\partial L / \\partial h_t\\|$")
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def show(fig, name=None) -> None:
    """Show a figure where it can be seen: inline in Jupyter, as a PNG file from a script.

    - In a Jupyter kernel: displayed inline, once (``IPython.display.display``).
    - Otherwise, when the environment variable ``TINYRNN_TUTORIAL_OUT`` names a
      folder: saved there as ``<name>.png`` (80 dpi; the folder is created if
      needed). Without a name, ``figure_1.png``, ``figure_2.png``, ...
    - Otherwise (a script, nobody asked for files): nothing at all.

    It never calls ``pyplot.show()``: that would block a script on a desktop
    and do nothing without a display, and the figures of this module are not
    in pyplot's registry anyway. Returns None, so ``show(fig)`` as a cell's
    last line displays the figure once, not twice. (A figure of your own from
    ``pyplot.subplots`` should be closed first, ``pyplot.close(fig)``, or
    Jupyter shows it a second time at the end of the cell.)
    """
    ipython = sys.modules.get("IPython")  # imported already in a kernel; never imported here for a script
    shell = ipython.get_ipython() if ipython is not None else None
    if getattr(shell, "kernel", None) is not None:
        from IPython.display import display
        display(fig)
        return
    folder = os.environ.get("TINYRNN_TUTORIAL_OUT")
    if folder:
        name = name if name is not None else f"figure_{next(_unnamed_figures)}"
        path = pathlib.Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
