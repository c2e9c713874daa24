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
# # 4. Deep RNNs and forecasting several steps ahead
#
# Tutorial 1 set the bar: naive forecast 0.0202, linear model about 0.004.
# Here we train the course's recurrent models on the same data:
#
# 1. the simplest RNN, one recurrent neuron;
# 2. a deep RNN, three stacked recurrent layers, and its better variant with a
#    `Dense` output;
# 3. forecasting ten steps ahead, first by feeding the one-step model its own
#    forecasts (iterative), then with a model that outputs all ten at once
#    (sequence to vector, `Dense(10)`).
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.forecast import iterative_forecast, naive_forecast
from tinyrnn.layers import Dense, Flatten, SimpleRNN
from tinyrnn.optimizers import Adam
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs


def mse(y_true, y_pred):
    return float(numpy.mean((numpy.asarray(y_true) - numpy.asarray(y_pred)) ** 2))


def train(model, data, optimizer="adam"):
    """Compile and fit on data["train"], validating on data["valid"]; return the History."""
    tinyrnn.set_random_seed(42)  # the same start for every model: the same seed gives the same run
    model.compile(loss="mse", optimizer=optimizer)
    return model.fit(*data["train"], epochs=EPOCHS, validation_data=data["valid"], verbose=0)


# %% [markdown]
# `load_course_data("one_step")` does tutorial 1's steps in one call: 51-step
# series with seed 42, X (B, 50, 1), y (B, 1), split 70 / 20 / 10 %.

# %%
one_step = load_course_data("one_step", n_series=N_SERIES)
X_valid, y_valid = one_step["valid"]
print({part: (X.shape, y.shape) for part, (X, y) in one_step.items()})

# %% [markdown]
# ## The simplest RNN
#
# One recurrent neuron: $h_t = \tanh(w x_t + u h_{t-1} + b)$, three
# parameters, and its last $h_t$ is the forecast. The course trains it with
# Adam at learning rate 0.005.
#
# Expect 3 parameters and a validation MSE of about **0.011** (0.009 to 0.014;
# the course: 0.010882): better than naive, worse than the linear model.
# One neuron has too little memory, and its output, a tanh, is squashed to (-1, 1).

# %%
simple_rnn = Sequential([SimpleRNN(1, input_shape=[None, 1])])
history = train(simple_rnn, one_step, optimizer=Adam(learning_rate=0.005))
print("parameters:", simple_rnn.count_params())
print(f"SimpleRNN(1), validation MSE: {history.history['val_loss'][-1]:.6f}")

# %% [markdown]
# ## A deep RNN
#
# Stack recurrent layers: every layer but the last returns its whole sequence
# of hidden states (`return_sequences=True`), so the next layer has a
# sequence to read.
#
# Expect the shapes (None, None, 20), (None, None, 20), (None, 1) and a
# validation MSE of about **0.003** (0.0025 to 0.004; the course: 0.002911),
# the first model to beat the linear one. About fifteen seconds.

# %%
deep_rnn = Sequential([
    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    SimpleRNN(20, return_sequences=True),
    SimpleRNN(1),
])
deep_rnn.summary()
history = train(deep_rnn, one_step)
print(f"deep RNN, validation MSE: {history.history['val_loss'][-1]:.6f}")

# %% [markdown]
# The last layer, `SimpleRNN(1)`, carries the forecast in its single hidden
# state, squashed by tanh. A `Dense(1)` output is free of both limits and
# lets the second layer stop returning sequences.
#
# Expect a validation MSE of about **0.0027** (0.0022 to 0.0035; the course:
# 0.002624), within about 10 % of the deep RNN above (either may win on a given
# seed), reached faster per epoch, with learning curves that fall fast over
# the first epochs, then slowly.

# %%
deep_rnn_dense = Sequential([
    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    SimpleRNN(20),
    Dense(1),
])
history = train(deep_rnn_dense, one_step)
print(f"deep RNN with Dense(1), validation MSE: {history.history['val_loss'][-1]:.6f}")
show(plot.plot_learning_curves(history, title="SimpleRNN(20) x 2 + Dense(1)"), "04_learning_curves")

# %% [markdown]
# ## Forecasting ten steps ahead
#
# New series of 60 steps: the model sees the first 50 and must forecast the
# last 10, Y (B, 10). Two baselines first:
#
# - naive: repeat the last value ten times; expect about **0.26** (the course: 0.256974);
# - linear: `Flatten` + `Dense(10)`; expect about **0.019** (0.017 to 0.022; the course: 0.0187).

# %%
ten_steps = load_course_data("ten_steps", n_series=N_SERIES)
X10_valid, Y10_valid = ten_steps["valid"]                       # (B, 50, 1), (B, 10)
print("X", X10_valid.shape, "Y", Y10_valid.shape)
print(f"naive, 10 steps: {mse(Y10_valid, naive_forecast(X10_valid, 10)):.6f}")
linear_10 = Sequential([Flatten(input_shape=[50, 1]), Dense(10)])
history = train(linear_10, ten_steps)
print(f"linear, 10 steps: {history.history['val_loss'][-1]:.6f}")

# %% [markdown]
# ### Iterative: feed the one-step model its own forecasts
#
# Forecast step 51, append it to the input, forecast step 52 from 51 steps,
# and so on, ten times (`tinyrnn.forecast.iterative_forecast`). Every error
# is fed back in, so errors compound.
#
# Expect an MSE over the ten steps of about **0.02 to 0.03** (the course:
# 0.027511): no better than the linear model, despite a far better one-step
# model.

# %%
Y10_iterative = iterative_forecast(deep_rnn_dense, X10_valid, n_ahead=10)   # (B, 10)
print("forecasts", Y10_iterative.shape)
print(f"iterative deep RNN, 10 steps: {mse(Y10_valid, Y10_iterative):.6f}")

# %% [markdown]
# Expect the crosses to follow the shape of the red circles, with an error
# that tends to grow towards step 59 (on average over the validation set; a
# single series can be luckier).

# %%
show(plot.plot_multiple_forecasts(X10_valid, Y10_valid, Y10_iterative, title="iterative forecast"),
     "04_iterative")

# %% [markdown]
# ### Sequence to vector: all ten at once
#
# Change only the output layer to `Dense(10)` and train on the ten-step
# targets: the network learns to output the whole future in one pass.
#
# Expect a validation MSE of about **0.008** (0.007 to 0.012; the course:
# 0.0085): two to three times better than both the linear model and the
# iterative forecast.

# %%
seq2vec = Sequential([
    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    SimpleRNN(20),
    Dense(10),
])
history = train(seq2vec, ten_steps)
Y10_seq2vec = seq2vec.predict(X10_valid)
print("forecasts", Y10_seq2vec.shape)
print(f"seq-to-vector Dense(10), 10 steps: {history.history['val_loss'][-1]:.6f}")
show(plot.plot_multiple_forecasts(X10_valid, Y10_valid, Y10_seq2vec, title="sequence to vector, Dense(10)"),
     "04_seq2vec")

# %% [markdown]
# ## What to remember
#
# | model | validation MSE (course) |
# |---|---|
# | SimpleRNN(1) | 0.0109 |
# | deep RNN | 0.0029 |
# | deep RNN + Dense(1) | 0.0026 |
# | 10 steps: naive / linear / iterative | 0.257 / 0.0187 / 0.0275 |
# | 10 steps: sequence to vector, Dense(10) | 0.0085 |
#
# The same numbers, trained and timed: `python -m tinyrnn chapter`. Next: a
# model that forecasts the next ten values at *every* time step.
