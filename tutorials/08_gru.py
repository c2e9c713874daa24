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
# # 8. The GRU, both ways
#
# The gated recurrent unit merges the LSTM's two states into one and its
# forget and input gates into one *update* gate $z$; a *reset* gate $r$ decides
# how much of the past the candidate $n$ sees:
#
# $$z = \sigma(\dots),\quad r = \sigma(\dots),\quad
# h_t = z \odot h_{t-1} + (1 - z) \odot n$$
#
# Where the reset gate acts comes in two forms, and Keras offers both:
#
# - `reset_after=True` (Keras's default, cuDNN's and PyTorch's form): the
#   recurrent product is computed first, then reset:
#   $n = \tanh(W_h^\top x_t + b_{xh} + r \odot (U_h^\top h_{t-1} + b_{hh}))$,
#   with two bias vectors, bias shape (2, 3H);
# - `reset_after=False` (the original GRU of Cho et al.): reset first, then
#   the product: $n = \tanh(W_h^\top x_t + U_h^\top (r \odot h_{t-1}) + b_h)$,
#   bias shape (3H,).
#
# Along the direct path $h_t = z \odot h_{t-1} + \dots$ the gradient is
# multiplied by $z$ from one step to the previous: the update gate plays the
# role of the LSTM's forget gate.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential, gradcheck, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.layers import GRU, Dense, TimeDistributed
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs


# %% [markdown]
# ## The weights of both forms
#
# Gates in Keras's order z, r, h, side by side: for 20 units and one input
# feature, expect kernel (1, 60) and recurrent kernel (20, 60) in both forms,
# and the bias (2, 60) with `reset_after=True` (input bias, recurrent bias)
# but (60,) with `reset_after=False`: 1,380 parameters against 1,320.

# %%
tinyrnn.set_random_seed(42)
for reset_after in (True, False):
    gru = GRU(20, reset_after=reset_after)
    gru.build((None, 50, 1))
    shapes = {name: weight.shape for name, weight in zip(gru.weight_names, gru.get_weights())}
    print(f"reset_after={reset_after}: {shapes}, {gru.count_params():,} parameters")

# %% [markdown]
# ## Gradient checks
#
# The two forms have different backward passes (see `GRUCell`'s docstring):
# with `reset_after` the gradient of the reset gate goes through the
# recurrent product $U_h^\top h_{t-1} + b_{hh}$; without it, through
# $r \odot h_{t-1}$. Tiny sizes, float64; expect every error **below 1e-7**
# (between about 1e-12 and 1e-9) for both.

# %%
x = numpy.random.default_rng(0).normal(size=(2, 5, 3))                 # B=2, T=5, D=3
for reset_after in (True, False):
    layer = GRU(4, reset_after=reset_after, return_sequences=True)
    layer.build(x.shape)
    rng = numpy.random.default_rng(1)
    layer.params["bias"][...] = rng.normal(scale=0.5, size=layer.params["bias"].shape)  # not the zero default
    report = gradcheck(layer, x)
    print(f"reset_after={reset_after}\n{report}\n")
    report.assert_ok()

# %% [markdown]
# ## Training both on the sequence-to-sequence task
#
# Two `GRU(20, return_sequences=True)` layers and `TimeDistributed(Dense(10))`,
# Adam at its default rate, 20 epochs each (about 45 seconds each).
#
# Expect a validation `last_time_step_mse` of about **0.008 to 0.013** for
# both forms (with `reset_after=True` the course's GRU scored 0.0103, Keras 3
# 0.0085). The two forms land within about 20 % of each other: the choice matters for
# loading weights (Keras 3, PyTorch and cuDNN use `reset_after=True`), not
# for accuracy here.

# %%
series = load_course_data("seq2seq", n_series=N_SERIES)
X_valid, Y_valid = series["valid"]


def train(reset_after):
    tinyrnn.set_random_seed(42)
    model = Sequential([
        GRU(20, reset_after=reset_after, return_sequences=True, input_shape=[None, 1]),
        GRU(20, reset_after=reset_after, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])
    model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
    history = model.fit(*series["train"], epochs=EPOCHS, validation_data=series["valid"], verbose=0)
    print(f"reset_after={reset_after}: {model.count_params():,} parameters, validation last_time_step_mse "
          f"{history.history['val_last_time_step_mse'][-1]:.4f}")
    return model, history


models = {reset_after: train(reset_after) for reset_after in (True, False)}

# %% [markdown]
# Expect two panels of falling curves of similar shape (each form's
# `last_time_step_mse`: training dashed, validation solid), then one forecast
# of the `reset_after=True` model: crosses close to the red circles.

# %%
histories = {f"reset_after={reset_after}": history for reset_after, (_, history) in models.items()}
show(plot.plot_learning_curves_grid(histories), "08_learning_curves")

model = models[True][0]
Y_pred = model.predict(X_valid[:1])[:, -1]                               # (1, 10)
show(plot.plot_multiple_forecasts(X_valid[:1], Y_valid[:1, -1], Y_pred, title="GRU forecast"), "08_forecast")

# %% [markdown]
# ## What to remember
#
# - One state, two gates; the update gate $z$ carries the gradient along
#   $h$ as the LSTM's forget gate does along $c$.
# - `reset_after` changes where the reset gate acts, the bias shape and the
#   backward pass; Keras 3 defaults to `True`.
# - A GRU has about three quarters of an LSTM's parameters (1,380 against
#   1,760 for 20 units on one input) and costs less per step.
