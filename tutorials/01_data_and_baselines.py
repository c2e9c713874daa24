# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The data and the baselines
#
# Every experiment of the course forecasts the same synthetic series. Before
# any recurrent network, we need two numbers to beat:
#
# - the **naive forecast**: the next value equals the last one seen;
# - a **linear model**: one weight per past time step (`Flatten` + `Dense(1)`).
#
# Run as a script (`python tutorials/01_data_and_baselines.py`) or open it in
# Jupyter with jupytext. Set `TINYRNN_QUICK=1` for a few-second run on a few
# hundred series.

# %%
import os

import numpy
from matplotlib import pyplot

import tinyrnn
from tinyrnn import Sequential, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import course_split_sizes, generate_time_series, one_step_ahead, split
from tinyrnn.forecast import naive_forecast
from tinyrnn.layers import Dense, Flatten
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs
tinyrnn.set_random_seed(42)


# %% [markdown]
# ## The series
#
# Each series is the sum of two sine waves of random frequency and phase, plus
# a little noise:
#
# $$x(t) = 0.5 \sin\big((t - o_1)(10 f_1 + 10)\big) + 0.2 \sin\big((t - o_2)(20 f_2 + 20)\big)
# + 0.1 (u_t - 0.5)$$
#
# with $t$ from 0 to 1 in `n_steps` steps and $f_1, f_2, o_1, o_2, u_t$
# uniform in [0, 1). `generate_time_series(B, T, seed=42)` draws exactly as
# the book's notebook after `np.random.seed(42)`, so our numbers can be
# compared with the course's.
#
# Expect a float32 array of shape (10000, 51, 1) (300 in quick mode), values
# within about [-0.8, 0.8].

# %%
series = generate_time_series(N_SERIES, 51, seed=42)    # (B, 51, 1)
print(series.shape, series.dtype, f"min {series.min():.2f} max {series.max():.2f}")

# %% [markdown]
# ## Inputs, target, split
#
# The task: read 50 steps, forecast step 51. `one_step_ahead` cuts
# X = the first 50 steps (B, 50, 1) and y = the last value (B, 1); `split`
# makes the course's 7000 / 2000 / 1000 train / validation / test split.
#
# Expect (7000, 50, 1) (7000, 1), then 2000 and 1000 rows.

# %%
X, y = one_step_ahead(series)
n_train, n_valid, n_test = course_split_sizes(N_SERIES)
X_train, X_valid, X_test = split(X, n_train, n_valid)
y_train, y_valid, y_test = split(y, n_train, n_valid)
print("train", X_train.shape, y_train.shape)
print("valid", X_valid.shape, y_valid.shape)
print("test ", X_test.shape, y_test.shape)

# %% [markdown]
# Three validation series. Expect wavy lines of 50 blue dots, each with the
# value to forecast as a red circle at t = 50.

# %%
fig, axes = pyplot.subplots(1, 3, figsize=(12, 3.5), sharey=True)
pyplot.close(fig)  # we show it ourselves
for i, ax in enumerate(axes):
    plot.plot_series(X_valid[i], y_true=y_valid[i], ax=ax, y_label="$x(t)$" if i == 0 else None)
fig.tight_layout()
show(fig, "01_series")

# %% [markdown]
# ## Baseline 1: the naive forecast
#
# $\hat y = x(50)$: tomorrow looks like today. Its mean squared error on the
# validation set is the first number every model must beat.
#
# Expect **0.0202** (the course prints 0.020211: the same data, bit for bit).
# In quick mode the validation set is small and the number will differ a little.

# %%
y_naive = naive_forecast(X_valid)                       # (B, 1): the last value of each series
naive_mse = float(numpy.mean((y_naive - y_valid) ** 2))
print(f"naive forecast, validation MSE: {naive_mse:.6f}")

# %% [markdown]
# Expect the black cross (forecast) level with the last blue dot, and a gap to
# the red circle.

# %%
show(plot.plot_series(X_valid[0], y_true=y_valid[0], y_pred=y_naive[0], title="naive forecast"), "01_naive")

# %% [markdown]
# ## Baseline 2: a linear model
#
# `Flatten` turns (B, 50, 1) into (B, 50) and `Dense(1)` computes
# $\hat y = \sum_{t} w_t x(t) + b$: 51 parameters, trained with Adam on the MSE
# for 20 epochs, as in the course.
#
# Expect a summary with 51 parameters, then a validation MSE of about
# **0.004** (0.0035 to 0.005; the course: 0.004168, Keras 3: 0.003783),
# four to five times better than the naive forecast. This takes a few seconds.

# %%
linear = Sequential([Flatten(input_shape=[50, 1]), Dense(1)])
linear.compile(loss="mse", optimizer="adam")
linear.summary()
history = linear.fit(X_train, y_train, epochs=EPOCHS, validation_data=(X_valid, y_valid), verbose=0)
linear_mse = linear.evaluate(X_valid, y_valid)
print(f"linear model, validation MSE: {linear_mse:.6f}  ({naive_mse / linear_mse:.1f}x better than naive)")

# %% [markdown]
# The learning curves. Expect both curves to fall steeply over the first few
# epochs and flatten out near 0.004, the validation curve close to the
# training curve (51 weights cannot overfit 7000 series).

# %%
show(plot.plot_learning_curves(history, title="Flatten + Dense(1)"), "01_learning_curves")

# %% [markdown]
# The linear model's forecast for the same series as above. Expect the cross
# much closer to the red circle than the naive one.

# %%
y_linear = linear.predict(X_valid[:1])
show(plot.plot_series(X_valid[0], y_true=y_valid[0], y_pred=y_linear[0], title="linear model"), "01_linear")

# %% [markdown]
# ## What to remember
#
# | model | validation MSE (course) |
# |---|---|
# | naive forecast | 0.0202 |
# | linear, Flatten + Dense(1) | about 0.004 |
#
# A recurrent network is worth its cost only if it beats 0.004. The next
# tutorials build the shapes of recurrent networks, then the cell itself.

# %%
print(f"to beat: naive {naive_mse:.4f}, linear {linear_mse:.4f}")
