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
# # 2. The three shapes of a recurrent network
#
# A recurrent layer reads a sequence (B, T, D) and can hand on either every
# hidden state, (B, T, H) with `return_sequences=True`, or only the last one,
# (B, H). Combined with `RepeatVector`, which turns a vector into a sequence,
# that gives the three shapes of the course:
#
# | shape | in | out | example |
# |---|---|---|---|
# | sequence to sequence | (B, T, 1) | (B, T, 1) | at every step, forecast the next value |
# | sequence to vector | (B, T, 1) | (B, 1) | forecast the value after the series |
# | vector to sequence | (B, D) | (B, T', 1) | from one vector, produce ten future values |
#
# and the encoder-decoder, a sequence-to-vector network followed by a
# vector-to-sequence one. Each is a small working model here; the point is the
# shapes, so every model prints its summary and the shape of what it outputs.
#
# Set `TINYRNN_QUICK=1` to run on a few hundred series for two epochs.

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import generate_time_series, seq2seq_targets, split
from tinyrnn.layers import Dense, Flatten, RepeatVector, SimpleRNN

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"
N_SERIES = 300 if QUICK else 10000    # the course's 10000 series: 7000 / 2000 / 1000
EPOCHS = 2 if QUICK else 5            # enough to see each shape learn; the chapter trains 20
tinyrnn.set_random_seed(42)

# %% [markdown]
# One set of series of 60 steps serves all four models: the first 50 steps
# are what the model sees, the last 10 are the future.

# %%
series = generate_time_series(N_SERIES, 60, seed=42)     # (B, 60, 1)
n_train, n_valid = int(0.7 * N_SERIES), int(0.2 * N_SERIES)
X_train, X_valid, _ = split(series[:, :50], n_train, n_valid)          # (B, 50, 1)
future_train, future_valid, _ = split(series[:, 50:], n_train, n_valid)  # (B, 10, 1)
print("inputs ", X_train.shape, "future", future_train.shape)


def train(model, X, Y, X_val, Y_val, **compile_args):
    """Compile, print the summary, fit quietly, and return the last validation loss."""
    model.compile(loss="mse", optimizer="adam", **compile_args)
    model.summary()
    history = model.fit(X, Y, epochs=EPOCHS, validation_data=(X_val, Y_val), verbose=0)
    return history.history["val_loss"][-1]


# %% [markdown]
# ## Sequence to sequence
#
# `return_sequences=True` keeps every h_t, (B, 50, 20); `Dense(1)` then acts at
# each time step (on the last axis), giving (B, 50, 1): a forecast of the next
# value after every step. The target at step t is the value at step t+1
# (`seq2seq_targets` with one step ahead).
#
# Expect the summary to show (None, None, 20) then (None, None, 1), and the
# output shape (3, 50, 1). After the full run the validation MSE over every
# step is about 0.004 to 0.012, below the naive forecast's 0.020 (the early
# steps, which have seen little of the series, pull it up).

# %%
Y_seq_train = seq2seq_targets(series[:n_train], n_ahead=1, n_inputs=50)            # (B, 50, 1)
Y_seq_valid = seq2seq_targets(series[n_train:n_train + n_valid], n_ahead=1, n_inputs=50)
seq_to_seq = Sequential([
    SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    Dense(1),
])
val_mse = train(seq_to_seq, X_train, Y_seq_train, X_valid, Y_seq_valid)
print("targets", Y_seq_train.shape, "| predict(X_valid[:3])", seq_to_seq.predict(X_valid[:3]).shape)
print(f"validation MSE (every step): {val_mse:.4f}")

# %% [markdown]
# ## Sequence to vector
#
# Without `return_sequences` the layer hands on only the last hidden state,
# (B, 20), and `Dense(1)` maps it to one value: the forecast of step 51.
#
# Expect (None, 20) then (None, 1), output (3, 1), and a validation MSE of
# about 0.003 to 0.008 after the full run.

# %%
seq_to_vec = Sequential([
    SimpleRNN(20, input_shape=[None, 1]),
    Dense(1),
])
val_mse = train(seq_to_vec, X_train, future_train[:, 0], X_valid, future_valid[:, 0])
print("targets", future_train[:, 0].shape, "| predict(X_valid[:3])", seq_to_vec.predict(X_valid[:3]).shape)
print(f"validation MSE: {val_mse:.4f}")

# %% [markdown]
# ## Vector to sequence
#
# Here the input is one vector per sample: the 50 observed values laid flat,
# (B, 50). `RepeatVector(10)` feeds that same vector at each of 10 time steps,
# (B, 10, 50); the recurrent layer turns it into a sequence of hidden states,
# and `Dense(1)` gives one future value per step, (B, 10, 1).
#
# Expect (None, 10, 50), (None, 10, 20), (None, 10, 1), output (3, 10, 1),
# and a validation MSE over the ten future steps of about 0.012 to 0.03 after
# the full run, far below the naive ten-step forecast's 0.26.

# %%
flat_train, flat_valid = X_train[..., 0], X_valid[..., 0]          # (B, 50): one vector per series
vec_to_seq = Sequential([
    RepeatVector(10, input_shape=[50]),
    SimpleRNN(20, return_sequences=True),
    Dense(1),
])
val_mse = train(vec_to_seq, flat_train, future_train, flat_valid, future_valid)
print("inputs", flat_train.shape, "| predict(flat_valid[:3])", vec_to_seq.predict(flat_valid[:3]).shape)
print(f"validation MSE (10 steps): {val_mse:.4f}")

# %% [markdown]
# ## Encoder-decoder: sequence to vector to sequence
#
# Put the two together: an encoder reads the series into one vector (its last
# hidden state), `RepeatVector` hands that vector to a decoder at each of ten
# steps. The vector in the middle is all the decoder knows about the past.
#
# Expect (None, 20), (None, 10, 20), (None, 10, 20), (None, 10, 1) and an
# output of (3, 10, 1); the validation MSE is in the same range as the
# vector-to-sequence model's.

# %%
encoder_decoder = Sequential([
    SimpleRNN(20, input_shape=[None, 1]),        # encoder: (B, 50, 1) -> (B, 20)
    RepeatVector(10),                            # (B, 20) -> (B, 10, 20)
    SimpleRNN(20, return_sequences=True),        # decoder: (B, 10, 20) -> (B, 10, 20)
    Dense(1),                                    # (B, 10, 1)
])
val_mse = train(encoder_decoder, X_train, future_train, X_valid, future_valid)
print("predict(X_valid[:3])", encoder_decoder.predict(X_valid[:3]).shape)
print(f"validation MSE (10 steps): {val_mse:.4f}")

# %% [markdown]
# ## A shape that is *not* recurrent
#
# For contrast, `Flatten` + `Dense` also maps (B, 50, 1) to a vector, but it
# has one weight per time step, so it only reads series of exactly 50 steps,
# whereas every recurrent model above accepts any length (its input shape is
# (None, None, 1)). Expect the recurrent model to forecast a 30-step series,
# output (3, 1), with no change.

# %%
linear = Sequential([Flatten(input_shape=[50, 1]), Dense(1)])
linear.summary()
print("recurrent model on 30 steps:", seq_to_vec.predict(X_valid[:3, :30]).shape)
assert numpy.isfinite(seq_to_vec.predict(X_valid[:3, :30])).all()
