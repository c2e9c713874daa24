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
# # 10. Error bars with MC dropout
#
# A forecast without an error bar hides how sure the model is. MC dropout
# (Gal and Ghahramani) gets one from a model trained with dropout: keep the
# dropout *on* at inference, run the model many times, and read the spread
# of the forecasts,
#
# $$\hat y = \frac1N \sum_{n=1}^{N} \hat y^{(n)}, \qquad
# \sigma = \sqrt{\frac1N \sum_{n=1}^{N} \big(\hat y^{(n)} - \hat y\big)^2}.$$
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential, backend, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.forecast import mc_dropout
from tinyrnn.layers import GRU, Dense, SimpleRNN, TimeDistributed
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs
N_SAMPLES = 20 if QUICK else 100                      # stochastic passes (the book uses 100)
N_FORECAST = 30 if QUICK else 200                     # validation series to forecast
numpy.set_printoptions(precision=4, suppress=True)


# %% [markdown]
# ## Dropout in a recurrent layer
#
# A recurrent layer takes two dropout rates, as in Keras:
#
# - `dropout`: a mask on the inputs $x_t$;
# - `recurrent_dropout`: a mask on $h_{t-1}$ where the recurrent kernel reads
#   it, in $U^\top h_{t-1}$, and nowhere else. A GRU also carries $h_{t-1}$
#   straight into $h_t = z \odot h_{t-1} + (1 - z) \odot n$; that carry
#   keeps the unmasked state, as in Keras.
#
# Each is drawn **once per sequence** and reused at every time step (a new
# mask at every step would wipe out the memory the recurrence carries), and
# only when `training=True`. The kept values are scaled by $1 / (1 - p)$.
#
# One consequence for our series: they have a single input feature, so input
# `dropout` on the *first* layer blanks a whole series for a fraction p of
# the sequences. We put both dropouts on the second layer only, where the
# input is the first layer's 20 hidden units.
#
# The mask can be seen in the input gradient: a dropped input feature gets
# no gradient at *any* time step. One layer with `dropout=0.5` on 4 input
# features, two sequences of 6 steps: expect, for each sequence, whole
# columns of zeros (the same features dropped at every step), different
# columns for the two sequences, and no zeros at all without `training`.

# %%
tinyrnn.set_random_seed(1)
layer = SimpleRNN(3, dropout=0.5, return_sequences=True)
x = backend.asarray(numpy.random.default_rng(0).normal(size=(2, 6, 4)))    # (B, T, D)
for training in (True, False):
    y = layer(x, training=training)
    dx = backend.to_numpy(layer.backward(backend.xp.ones_like(y)))          # (B, T, D)
    print(f"training={training}: which dL/dx are non-zero (rows: time steps, columns: features)")
    for b in range(2):
        print(f"  sequence {b}:\n{(dx[b] != 0).astype(int)}")

# %% [markdown]
# ## `predict(training=True)` is random, `predict()` is not
#
# Expect three different values from the first line, three equal ones from
# the second.

# %%
series = load_course_data("seq2seq", n_series=N_SERIES)
X_valid, Y_valid = series["valid"]

tinyrnn.set_random_seed(42)
model = Sequential([
    GRU(20, return_sequences=True, input_shape=[None, 1]),
    GRU(20, return_sequences=True, dropout=0.2, recurrent_dropout=0.2),
    TimeDistributed(Dense(10)),
])
model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
print("training=True: ", [float(model.predict(X_valid[:1], training=True)[0, -1, 0]) for _ in range(3)])
print("training=False:", [float(model.predict(X_valid[:1])[0, -1, 0]) for _ in range(3)])

# %% [markdown]
# ## Train the model with dropout
#
# The sequence-to-sequence GRU of tutorial 8 (two `GRU(20)` layers, Adam at
# its default rate) with `dropout=0.2, recurrent_dropout=0.2` in its second
# layer, 20 epochs (about a minute). Expect a validation `last_time_step_mse`
# of about **0.007 to 0.013**, about what the same model scores without
# dropout in tutorial 8: at 20 units, this much dropout costs little
# accuracy.

# %%
history = model.fit(*series["train"], epochs=EPOCHS, validation_data=series["valid"], verbose=0)
print(f"validation last_time_step_mse {history.history['val_last_time_step_mse'][-1]:.4f}")

# %% [markdown]
# ## MC dropout
#
# `tinyrnn.forecast.mc_dropout(model, X, n_samples=100)` runs
# `model.predict(X, training=True)` 100 times and returns the mean and the
# standard deviation, each of the model's output shape (B, 50, 10). The
# forecast is the last step's ten values.
#
# Expect:
#
# - the MC mean to score about the same as one deterministic pass (within
#   about 10 %);
# - standard deviations of a few hundredths (about 0.02 to 0.07);
# - only about **65 to 85 %** of the true values inside mean +- 2 std, where
#   a calibrated Gaussian band would hold 95 %. MC dropout measures how
#   unsure the *model* is (the spread of its plausible weights), not the
#   noise in the data, here uniform noise of standard deviation about 0.03
#   on every value: the band is an error bar on the model, too narrow for
#   the observations.

# %%
X, Y = X_valid[:N_FORECAST], Y_valid[:N_FORECAST, -1]                       # (n, 50, 1), (n, 10)
mean, std = mc_dropout(model, X, n_samples=N_SAMPLES, batch_size=N_FORECAST)
print("mean", mean.shape, "std", std.shape)
mean, std = mean[:, -1], std[:, -1]                                         # the forecast: (n, 10)
deterministic = model.predict(X, batch_size=N_FORECAST)[:, -1]
print(f"last-step MSE: MC mean {numpy.mean((mean - Y) ** 2):.4f}, "
      f"one deterministic pass {numpy.mean((deterministic - Y) ** 2):.4f}")
print("mean std per forecast step 1..10:", std.mean(axis=0))
inside = numpy.abs(Y - mean) <= 2 * std
print(f"true values inside mean +- 2 std: {inside.mean():.0%}")

# %% [markdown]
# Expect the series in blue, the ten true values as red circles, the MC mean
# as orange crosses in an orange band a few hundredths wide, with some red
# circles outside it.

# %%
show(plot.plot_mc_dropout(X[0], mean[0], std[0], y_true=Y[0], title="MC dropout, 2 std band"), "10_band")

# %% [markdown]
# ## What to remember
#
# - Recurrent dropout uses one mask per sequence, reused at every step, and
#   masks $h_{t-1}$ only where $U$ multiplies it (the GRU's carry keeps the
#   unmasked state).
# - `predict(training=True)` keeps dropout on; `mc_dropout` averages many such
#   passes and turns their spread into an error bar at no training cost.
# - That error bar is the model's uncertainty only: check how many true values
#   it holds before trusting it.
