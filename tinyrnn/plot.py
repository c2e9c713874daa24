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
import math
import os
import pathlib
import sys

import matplotlib
import numpy
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter, LogLocator, MaxNLocator

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


def plot_learning_curves(history, keys=None, title=None, ax=None, legend=True, loss_name="loss"):
    """Training and validation curves, one line per logged quantity, log scale.

    Parameters
    ----------
    history : a ``History`` (what ``fit`` returns) or its ``history`` dict,
        {"loss": [...], "val_loss": [...], ...}, one value per epoch.
    keys : which quantities to draw; None means every one but the gradient
        norm (``grad_norm``, which is not a loss).
    title : the Axes title; None means "<quantity> per epoch".
    ax : draw on this Axes instead of a new figure.
    legend : add a legend ("training <quantity>", "validation <quantity>").
    loss_name : what to call the ``loss`` key (e.g. "MSE" for ``loss="mse"``).

    Returns
    -------
    matplotlib.figure.Figure
        One Axes, one line per key; training dashed, validation solid; the
        y label names the quantity, the x axis counts epochs from 1.
    """
    logs = getattr(history, "history", history)
    keys = [k for k in logs if k != "grad_norm"] if keys is None else list(keys)
    fig, ax = _figure_and_axes(ax)
    names = []
    for key in keys:
        values = logs[key]
        is_validation = key.startswith("val_")
        name = _quantity_name(key, loss_name)
        names.append(name)
        ax.plot(numpy.arange(1, len(values) + 1), values, "-" if is_validation else "--", marker=".",
                label=f"{'validation' if is_validation else 'training'} {name}")
    _log_y_axis(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    quantities = list(dict.fromkeys(names))
    ax.set_ylabel(f"{', '.join(quantities)} (log scale)")
    if legend:
        ax.legend(loc="best", fontsize="small")
    ax.set_title(title if title is not None else f"{' and '.join(quantities)} per epoch")
    return fig


_QUANTITY_NAMES = {"last_time_step_mse": "last-step MSE", "mse": "MSE", "mae": "MAE"}


def _quantity_name(key: str, loss_name: str = "loss") -> str:
    """The readable name of a History key: "val_last_time_step_mse" -> "last-step MSE"."""
    base = key[len("val_"):] if key.startswith("val_") else key
    return loss_name if base == "loss" else _QUANTITY_NAMES.get(base, base)


def headline_keys(history) -> list:
    """The quantity a model is judged by and its validation twin: the last metric
    compiled (e.g. ``last_time_step_mse``), else the loss."""
    logs = getattr(history, "history", history)
    train_keys = [k for k in logs if not k.startswith("val_") and k != "grad_norm"]
    key = train_keys[-1]
    return [key, f"val_{key}"] if f"val_{key}" in logs else [key]


def plot_learning_curves_grid(histories: dict, ncols: int = 4, loss_name="loss"):
    """One small panel per experiment, {name: History or dict}, each showing the
    figure it is judged by (``headline_keys``) for training and validation.

    ``loss_name`` names the ``loss`` key on the y axes (e.g. "MSE").

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per experiment, titled with its name, its y axis with the
        quantity drawn; spare grid cells removed; one legend for the figure
        (training dashed, validation solid).
    """
    if not histories:
        raise ValueError("plot_learning_curves_grid needs at least one history")
    ncols = min(ncols, len(histories))
    nrows = -(-len(histories) // ncols)
    fig, axes = _new_figure(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows + 0.6))
    for ax, (name, history) in zip(axes.flat, histories.items()):
        plot_learning_curves(history, keys=headline_keys(history), title=name, ax=ax, legend=False,
                             loss_name=loss_name)
        ax.set_ylabel(ax.get_ylabel().replace(" (log scale)", ""), fontsize="small")
        ax.set_xlabel("epoch", fontsize="small")
        ax.tick_params(labelsize="small", which="both")
        ax.title.set_fontsize("small")
    for ax in list(axes.flat)[len(histories):]:
        fig.delaxes(ax)
    first = fig.axes[0]
    handles = [Line2D([], [], linestyle=line.get_linestyle(), color=line.get_color(), marker=".")
               for line in first.lines]
    labels = ["training" if not line.get_label().startswith("validation") else "validation"
              for line in first.lines]
    fig.suptitle("Learning curves: the figure each model is judged by, per epoch (log scale)",
                 fontsize="medium")
    fig.legend(handles, labels, loc="upper right", fontsize="small", ncols=2)
    return fig


class _PlainLogFormatter(LogFormatter):
    """Plain tick labels on a log axis (0.11, 0.2, 1e-06): exact, distinct and few.

    On a range narrower than a decade matplotlib's minor ticks fall back to
    evenly spaced values (0.146, 0.148, 0.150, ...), which at two significant
    digits would all read "0.15". So before each draw ``set_locs`` keeps at most
    ``max_labels`` of the labelled ticks in view (every k-th, starting where the
    labels come out shortest) and writes them with the fewest significant
    digits (at least 2) that give each tick's exact value.
    """

    def __init__(self, *args, max_labels=5, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_labels = max_labels
        self._digits, self._shown = 2, None

    def set_locs(self, locs=None):
        super().set_locs(locs)
        self._digits, self._shown = 2, None
        if locs is None or self.axis is None:
            return
        vmin, vmax = sorted(self.axis.get_view_interval())
        self._digits = 17  # full precision while asking which ticks the log rules label
        log_rule_label = super().__call__  # "" where the log rules leave a tick unlabelled
        labelled = sorted(x for x in locs if vmin <= x <= vmax and x > 0 and log_rule_label(x))
        step = max(1, -(-len(labelled) // self.max_labels))  # ceil(n / max_labels)
        choices = [labelled[start::step] for start in range(step)]
        self._shown = min(choices, key=lambda xs: (_exact_digits(xs), -len(xs)))
        self._digits = _exact_digits(self._shown)

    def __call__(self, x, pos=None):
        if self._shown is not None and x not in self._shown:
            return ""
        return super().__call__(x, pos)

    def _num_to_string(self, x, vmin, vmax):
        return _plain(x, self._digits)


def _plain(x, digits) -> str:
    """x with ``digits`` significant digits, never in powers of ten between 1 and 1e6 (100, not 1e+02)."""
    if 1 <= abs(x) < 1e6:
        digits = max(digits, math.floor(math.log10(abs(x))) + 1)
    return f"{x:.{digits}g}"


def _exact_digits(values, most=7) -> int:
    """The fewest significant digits (2 to ``most``) that write every value exactly (to 1e-9)."""
    return next((d for d in range(2, most) if all(abs(float(_plain(x, d)) - x) <= 1e-9 * abs(x)
                                                   for x in values)), most)


class _LogMinorLocator(LogLocator):
    """Log-scale minor ticks (0.02, 0.03, ...), or evenly spaced round ones (0.12, 0.14, ...)
    when fewer than ``min_ticks`` ticks of the log rule, decades included, fall in view."""

    def __init__(self, min_ticks=4):
        super().__init__(base=10.0, subs="auto")
        self.min_ticks = min_ticks

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((vmin, vmax))
        ticks = super().tick_values(vmin, vmax)
        decades = 10.0 ** numpy.arange(math.ceil(math.log10(vmin)), math.floor(math.log10(vmax)) + 1) \
            if vmin > 0 else numpy.array([])
        in_view = numpy.union1d(ticks[(ticks >= vmin) & (ticks <= vmax)], decades)
        if vmin > 0 and len(in_view) < self.min_ticks:
            return MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
        return ticks


def _log_y_axis(ax):
    """Log scale with plain tick labels (0.02, 1e-06): cheaper to draw than LaTeX powers,
    and enough minor ticks to read a range narrower than a decade."""
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(_LogMinorLocator())
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


def plot_long_memory(experiment: dict):
    """Why gates exist: the adding problem learnt, or not, by SimpleRNN, LSTM and GRU.

    Parameters
    ----------
    experiment : what ``tinyrnn.long_memory.run_long_memory`` returns:
        ``results[cell][str(T)]`` with ``relative``, ``solved``, ``val_mse``,
        ``baseline`` and ``grad_norms`` (T,), and ``solved_fraction``.

    Returns
    -------
    matplotlib.figure.Figure
        Three Axes, one line per cell in each, log scale:
        (1) validation MSE after training, as % of answering the mean, against T;
        (2) validation MSE per epoch at the longest T;
        (3) ||dy_hat/dh_t|| / ||dy_hat/dh_T|| after training at the longest T:
        how much of the output's gradient reaches step t (a gradient of exactly
        0 has no point on a log axis: the legend says from which step on).
    """
    results = experiment["results"]
    steps = sorted({int(T) for by_T in results.values() for T in by_T})
    T_long, solved_pct = str(steps[-1]), 100 * experiment["solved_fraction"]
    fig, axes = _new_figure(1, 3, figsize=(16, 4.6))
    after, curves, grads = axes[0]
    for name, by_T in results.items():
        relative = [100 * by_T[str(T)]["relative"] for T in steps]
        epochs = ", ".join(str(by_T[str(T)]["epochs"]) for T in steps)
        after.plot(steps, relative, "o-", label=f"{name} ({epochs} epochs)")
        long = by_T[T_long]
        curves.plot(numpy.arange(1, len(long["val_mse"]) + 1),
                    100 * numpy.asarray(long["val_mse"]) / long["baseline"], ".-", label=name)
        norms = numpy.asarray(long["grad_norms"], dtype=float)
        reach = norms / norms[-1]
        zeros = numpy.flatnonzero(reach == 0)
        label = name if not len(zeros) else f"{name} (exactly 0 for t <= {zeros[-1] + 1})"
        reach = numpy.where(reach > 0, reach, numpy.nan)                  # log axis: no point for 0
        grads.plot(numpy.arange(1, len(reach) + 1), reach, "-", label=label)
    for ax in (after, curves):
        ax.axhline(100, color="gray", linestyle=":", label="answering the mean (100%)")
        ax.axhline(solved_pct, color="tab:green", linestyle="--", linewidth=1,
                   label=f"solved (<= {solved_pct:g}%)")
        _log_y_axis(ax)
        ax.set_ylabel("validation MSE, % of answering the mean")
        ax.legend(loc="center right", fontsize="small")
    after.set_xticks(steps)
    after.set_xlabel("sequence length T")
    after.set_title("After training: validation error against T", fontsize="medium")
    curves.set_xlabel("epoch")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_title(f"Training at T = {T_long}: validation error per epoch", fontsize="medium")
    marker_zone = max(1, int(T_long) // 10)
    grads.axvspan(0.5, marker_zone + 0.5, color="tab:gray", alpha=0.15, label="first marker here")
    _log_y_axis(grads)
    grads.set_xlabel("time step $t$")
    grads.set_ylabel(r"$\|\partial \hat y / \partial h_t\| \;/\; \|\partial \hat y / \partial h_T\|$")
    grads.set_title(f"After training at T = {T_long}: gradient reaching step t", fontsize="medium")
    grads.legend(loc="best", fontsize="small")
    return fig


def plot_attention(weights, input_tokens, output_tokens, title=None, ax=None):
    """Attention weights as a heat map: one row per output token, one column per input token.

    ``weights`` (Ty, Tx): row i is the weights output step i gave the input steps (each row
    sums to 1, e.g. ``EncoderDecoder.attention_weights(ids, n)[1][b]``); ``input_tokens`` the
    Tx input characters (padding included, e.g. as ""), ``output_tokens`` the Ty written ones.
    Dark is 0, bright is 1 (a fixed scale, so two maps compare).
    """
    weights = numpy.asarray(weights, dtype=float)
    input_tokens, output_tokens = list(input_tokens), list(output_tokens)
    if weights.shape != (len(output_tokens), len(input_tokens)):
        raise ValueError(f"weights must be (output steps, input steps) = ({len(output_tokens)}, "
                         f"{len(input_tokens)}) for these tokens, got shape {weights.shape}")
    if ax is None:
        fig, axes = _new_figure(figsize=(max(4.0, 0.25 * len(input_tokens) + 1.5),
                                         max(2.5, 0.3 * len(output_tokens) + 1.2)))
        ax = axes[0, 0]
    fig = ax.figure
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(input_tokens)), [repr(t)[1:-1] if t != " " else "␣" for t in input_tokens])
    ax.set_yticks(range(len(output_tokens)), output_tokens)
    ax.set_xlabel("input characters")
    ax.set_ylabel("output characters")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="attention weight")
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
