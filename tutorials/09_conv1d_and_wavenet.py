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
# # 9. Conv1D and WaveNet
#
# Recurrent layers read one step at a time; a 1-D convolution reads a window
# of K steps at every position, all positions at once:
#
# $$y[b, t, f] = \sum_{k=0}^{K-1} \sum_{d} x_{\text{pad}}[b,\ t s + k r,\ d]\; W[k, d, f] + \text{bias}[f]$$
#
# with stride $s$ and dilation rate $r$. Two uses in the course:
#
# 1. a strided `Conv1D` in front of GRU layers shortens the sequence (and so
#    the recurrence) and detects short patterns;
# 2. WaveNet: a stack of *causal*, *dilated* convolutions and no recurrence at all.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy
from matplotlib import pyplot

import tinyrnn
from tinyrnn import Sequential, backend, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.layers import GRU, Conv1D, Dense, InputLayer, TimeDistributed
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs


def train(model, X_train, Y_train, X_valid, Y_valid):
    model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
    history = model.fit(X_train, Y_train, epochs=EPOCHS, validation_data=(X_valid, Y_valid), verbose=0)
    print(f"{model.name}: validation last_time_step_mse {history.history['val_last_time_step_mse'][-1]:.4f}")
    return history


series = load_course_data("seq2seq", n_series=N_SERIES)
X_train, Y_train = series["train"]                     # (B, 50, 1), (B, 50, 10)
X_valid, Y_valid = series["valid"]

# %% [markdown]
# ## A strided convolution shortens the sequence
#
# `Conv1D(20, kernel_size=4, strides=2, padding="valid")` reads steps
# 0-3, 2-5, 4-7, ...: from 50 steps, $\lfloor (50 - 4) / 2 \rfloor + 1 = 24$
# outputs. Expect (3, 50, 1) -> (3, 24, 20).

# %%
tinyrnn.set_random_seed(42)
conv = Conv1D(20, kernel_size=4, strides=2, padding="valid")
print(X_valid[:3].shape, "->", conv(backend.asarray(X_valid[:3])).shape)

# %% [markdown]
# ### Cropping the targets
#
# Output step j has read inputs 2j .. 2j + 3, so its target must be the ten
# values after input 2j + 3: the targets of steps 3, 5, 7, ..., 49, that is
# `Y[:, 3::2]`. Any other choice lets the model see the future or forecast
# the past. Expect (7000, 24, 10), and the last output step to read steps 46
# to 49.

# %%
Y_train_cropped, Y_valid_cropped = Y_train[:, 3::2], Y_valid[:, 3::2]
last_window = [2 * 23 + k for k in range(4)]
print(Y_train_cropped.shape, "| the last output step reads inputs", last_window)

# %% [markdown]
# The course's model, `Conv1D` then two GRU layers. Each GRU now runs 24
# steps instead of 50, so an epoch costs about half.
#
# Expect a validation `last_time_step_mse` of about **0.006 to 0.010** (the
# course: 0.0080; Keras 3: 0.0064), as good as the GRU alone of tutorial 8
# or better, in about half a minute.

# %%
tinyrnn.set_random_seed(42)
conv_gru = Sequential([
    Conv1D(20, kernel_size=4, strides=2, padding="valid", input_shape=[None, 1]),
    GRU(20, return_sequences=True),
    GRU(20, return_sequences=True),
    TimeDistributed(Dense(10)),
], name="conv_gru")
conv_gru_history = train(conv_gru, X_train, Y_train_cropped, X_valid, Y_valid_cropped)

# %% [markdown]
# ## WaveNet: causal, dilated convolutions
#
# `padding="causal"` pads K - 1 zeros on the left only, so output step t reads
# steps t, t - r, ..., never a later one. Doubling the dilation rate layer after
# layer (1, 2, 4, 8) doubles the span each time: with K = 2, one stack of four
# layers sees $1 + (1 + 2 + 4 + 8) = 16$ steps, two stacks 31.
#
# Let us *prove* that WaveNet never reads the future. Build the course's
# WaveNet, send a gradient back from one output step only, t = 40, and see
# which input steps receive any: those are exactly the steps it read.
#
# Expect the 31 steps 10 to 40 and nothing after step 40. With
# `padding="same"` instead, the same stack reads steps on both sides of t:
# expect steps after 40 in its list.

# %%
def wavenet(padding="causal", rates=(1, 2, 4, 8) * 2):
    """The course's WaveNet: Conv1D(20, 2, relu) with dilation rates 1, 2, 4, 8 twice, then Conv1D(10, 1)."""
    model = Sequential([InputLayer(input_shape=[None, 1])], name="wavenet")
    for rate in rates:
        model.add(Conv1D(20, kernel_size=2, padding=padding, activation="relu", dilation_rate=rate))
    model.add(Conv1D(10, kernel_size=1))
    return model


def steps_read(model, t, T=50):
    """The input steps whose value reaches output step t: where dL/dx is non-zero for L = sum(y[:, t])."""
    x = backend.asarray(numpy.random.default_rng(0).normal(size=(8, T, 1)))
    y = model(x)
    dy = backend.xp.zeros_like(y)
    dy[:, t] = 1.0                              # the gradient of sum(y[:, t]) only
    dx = backend.to_numpy(model.backward(dy))   # (8, T, 1)
    return numpy.flatnonzero(numpy.abs(dx).sum(axis=(0, 2)))


tinyrnn.set_random_seed(42)
causal = steps_read(wavenet("causal"), t=40)
print(f"causal: output step 40 reads {len(causal)} steps, {causal.min()} to {causal.max()}")
tinyrnn.set_random_seed(42)
same = steps_read(wavenet("same"), t=40)
print(f"same:   output step 40 reads steps {same.min()} to {same.max()}, "
      f"{int((same > 40).sum())} of them after step 40")
assert causal.max() == 40, "a causal stack must not read any step after t"

# %% [markdown]
# (A relu unit that is switched off for all eight series blocks its path,
# so a list can have a hole or two; the causal list never has a step after 40.)
#
# ### Training WaveNet
#
# No recurrence: every layer processes all 50 steps at once, and the output
# at every step is a ten-step forecast, so the targets are the full Y.
#
# Expect a validation `last_time_step_mse` of about **0.006 to 0.010** (the
# course: 0.0072; Keras 3: 0.0088), in about half a minute.

# %%
tinyrnn.set_random_seed(42)
wavenet_model = wavenet()
wavenet_model.summary()
wavenet_history = train(wavenet_model, X_train, Y_train, X_valid, Y_valid)

# %% [markdown]
# Expect two panels of falling learning curves (each model's
# `last_time_step_mse`: training dashed, validation solid), then two
# forecasts of the same validation series, both close to the red circles.

# %%
histories = {"Conv1D + GRU": conv_gru_history, "WaveNet": wavenet_history}
show(plot.plot_learning_curves_grid(histories), "09_learning_curves")

fig, axes = pyplot.subplots(1, 2, figsize=(11, 4), sharey=True)
pyplot.close(fig)
truth = Y_valid[:1, -1]                                                   # (1, 10)
plot.plot_multiple_forecasts(X_valid[:1], truth, conv_gru.predict(X_valid[:1])[:, -1],
                             title="Conv1D + GRU", ax=axes[0])
plot.plot_multiple_forecasts(X_valid[:1], truth, wavenet_model.predict(X_valid[:1])[:, -1],
                             title="WaveNet", ax=axes[1])
fig.tight_layout()
show(fig, "09_forecasts")

# %% [markdown]
# ## What to remember
#
# - A strided convolution divides the number of recurrent steps; crop the
#   targets to the steps its outputs end at (`Y[:, 3::2]` here).
# - Causal padding never reads the future; doubling dilations grow the
#   receptive field exponentially with depth.
# - The course also names a deep WaveNet, rates (1, 2, ..., 512) x 3: try
#   `python -m tinyrnn chapter --only deep_wavenet` and compare.
