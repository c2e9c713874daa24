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
# # 5. Sequence to sequence, and TimeDistributed
#
# The sequence-to-vector model of tutorial 4 forecasts the next ten values
# once, after reading the whole series. A sequence-to-sequence model
# forecasts the next ten values *at every time step*: at step t it outputs
# $x(t+1), \dots, x(t+10)$. The loss then has a term at every step, so
# the gradient reaches every step directly instead of only through the
# recurrence, which stabilises and speeds up training.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential, metrics, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import generate_time_series, load_course_data, seq2seq_targets
from tinyrnn.layers import Dense, SimpleRNN, TimeDistributed
from tinyrnn.optimizers import Adam
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs
tinyrnn.set_random_seed(42)


# %% [markdown]
# ## The targets
#
# From series of 60 steps, the inputs are the first 50 steps and the target
# at step t holds the ten values after it:
#
# $$Y[b, t, k-1] = x_b(t + k), \qquad t = 0..49,\ k = 1..10$$
#
# so Y has shape (B, 50, 10), and its last step Y[:, -1] is exactly the
# ten-step target of tutorial 4. `seq2seq_targets` builds it with one gather.
#
# Expect (7000, 50, 1) and (7000, 50, 10), then `True` twice.

# %%
series = generate_time_series(5, 60, seed=0)                    # a few series to look at
Y_small = seq2seq_targets(series, n_ahead=10)                  # (5, 50, 10)
print(numpy.array_equal(Y_small[0, 7], series[0, 8:18, 0]))    # step 7 holds x(8) .. x(17)
print(numpy.array_equal(Y_small[:, -1], series[:, 50:, 0]))    # the last step: the ten-step target

seq2seq = load_course_data("seq2seq", n_series=N_SERIES)       # the course's data, the same recipe
X_train, Y_train = seq2seq["train"]
X_valid, Y_valid = seq2seq["valid"]
print("X", X_train.shape, "Y", Y_train.shape)

# %% [markdown]
# ## TimeDistributed
#
# `TimeDistributed(Dense(10))` applies the same `Dense` layer at every time
# step: it reshapes (B, T, H) to (B*T, H), runs the layer, and reshapes back
# to (B, T, 10). Its weights are shared by all steps, so their gradients sum
# over B and T.
#
# A `Dense` layer on a 3-D input already acts on the last axis, step by
# step, so with the same weights the two give the same output. Expect
# (4, 50, 20) -> (4, 50, 10) and a difference below 1e-6: float32 rounding
# only, because the same product runs on arrays of different shapes.

# %%
h = numpy.random.default_rng(0).normal(size=(4, 50, 20)).astype("float32")  # like (B, T, H) states
per_step = TimeDistributed(Dense(10))
per_step(h)                                                   # builds the inner Dense (20, 10)
plain = Dense(10)
plain(h)
plain.set_weights(per_step.get_weights())
print(h.shape, "->", per_step(h).shape)
print("max |TimeDistributed - Dense| =", float(numpy.abs(per_step(h) - plain(h)).max()))

# %% [markdown]
# ## The model
#
# Both recurrent layers return sequences, and `TimeDistributed(Dense(10))`
# turns each step's 20 hidden units into ten forecasts. The loss is the MSE
# over all steps; the course's metric scores only the last step, the one that
# is a real forecast (earlier steps' targets overlap the inputs):

# %%
def last_time_step_mse(Y_true, Y_pred):
    """The course's metric: the MSE of the last time step only, (B, T, 10) -> (B,)."""
    return metrics.mean_squared_error(Y_true[:, -1], Y_pred[:, -1])


# %% [markdown]
# Expect a summary with output (None, None, 10), per-epoch logs of the
# loss, `last_time_step_mse` and their validation twins, and, after 20
# epochs (Adam at 0.01, as in the course; about fifteen seconds), a validation
# `last_time_step_mse` of about **0.006 to 0.010** (the course: 0.0096;
# Keras 3: 0.0059) and a full validation loss of about 0.016 to 0.022.

# %%
tinyrnn.set_random_seed(42)
model = Sequential([
    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    SimpleRNN(20, return_sequences=True),
    TimeDistributed(Dense(10)),
])
model.compile(loss="mse", optimizer=Adam(learning_rate=0.01), metrics=[last_time_step_mse])
model.summary()
history = model.fit(X_train, Y_train, epochs=EPOCHS, validation_data=(X_valid, Y_valid), verbose=2)
logs = history.history
print(f"validation: loss {logs['val_loss'][-1]:.4f}, "
      f"last_time_step_mse {logs['val_last_time_step_mse'][-1]:.4f}")

# %% [markdown]
# Expect four falling curves: the last-step metric below the full loss
# (the first steps have seen little of the series and forecast worse).

# %%
show(plot.plot_learning_curves(history, title="seq-to-seq, TimeDistributed(Dense(10))"), "05_learning_curves")

# %% [markdown]
# The forecast is the output at the last step, (B, 10). Expect the crosses
# to follow the red circles over all ten steps.

# %%
Y_pred = model.predict(X_valid)                                # (B, 50, 10)
print("outputs", Y_pred.shape, "-> forecast", Y_pred[:, -1].shape)
show(plot.plot_multiple_forecasts(X_valid, Y_valid[:, -1], Y_pred[:, -1], title="seq-to-seq forecast"),
     "05_forecast")

# %% [markdown]
# ## Why every step's loss helps
#
# After one backward pass each recurrent layer keeps `hidden_grad_norms`, the
# size of the gradient reaching $h_t$ at each step. Trained on the last step
# only (sequence to vector), the gradient enters at t = 50 and has to travel
# back through the recurrence; with a loss at every step it enters everywhere.
# We compare the two shapes fresh from the same seed, so their first layers
# start with the same weights, on one batch.
#
# Expect the sequence-to-vector line to be largest near the last step and to
# fall more than tenfold towards t = 1 (printed ratio below 0.1), and the
# sequence-to-sequence line to stay level, within a factor of about 2, over
# the first 45 steps; only the last few steps, which few later losses reach,
# get less. Its ratio printed below is therefore above 1.

# %%
def first_layer_grad_norms(last_layers, X, Y):
    """||dL/dh_t|| of a fresh model's first layer after one forward and backward pass on (X, Y)."""
    tinyrnn.set_random_seed(42)
    model = Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]), *last_layers])
    model.compile(loss="mse", optimizer="adam")
    model.build((None, 50, 1))
    Y_pred = model.forward(tinyrnn.backend.asarray(X), training=True)
    model.backward(model.loss.gradient(tinyrnn.backend.asarray(Y), Y_pred))
    return model.layers[0].hidden_grad_norms


norms = {
    "sequence to vector (loss at t = 50)":
        first_layer_grad_norms([SimpleRNN(20), Dense(10)], X_valid[:32], Y_valid[:32, -1]),
    "sequence to sequence (loss at every t)":
        first_layer_grad_norms([SimpleRNN(20, return_sequences=True), TimeDistributed(Dense(10))],
                               X_valid[:32], Y_valid[:32]),
}
for name, values in norms.items():
    print(f"{name}: ||dL/dh_1|| / ||dL/dh_50|| = {values[0] / values[-1]:.2f}")
show(plot.plot_gradient_norms(norms), "05_gradient_norms")
