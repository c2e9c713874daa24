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
# # 7. LSTM, and LSTM with peepholes
#
# The long short-term memory cell carries two states: the short-term $h_t$
# and the long-term $c_t$. Three sigmoid gates decide what the long-term
# state forgets ($f$), what it learns ($i$) and what it shows ($o$):
#
# $$z = W^\top x_t + U^\top h_{t-1} + b \quad\text{(4H rows: } z_i, z_f, z_c, z_o)$$
# $$i = \sigma(z_i),\ f = \sigma(z_f),\ g = \tanh(z_c),\ o = \sigma(z_o)$$
# $$c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)$$
#
# Along $c$ the gradient is only multiplied by $f$ from one step to the
# previous: when the forget gate is open ($f \approx 1$) it survives many steps.
#
# A *peephole* LSTM (Gers and Schmidhuber) also lets the gates look at the
# long-term state: $i = \sigma(z_i + p_i \odot c_{t-1})$,
# $f = \sigma(z_f + p_f \odot c_{t-1})$, $o = \sigma(z_o + p_o \odot c_t)$, with
# three weight vectors $p$ of H entries each. In tinyrnn it is a cell,
# `RNN(PeepholeLSTMCell(20))`, as in the course.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential, gradcheck, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.layers import LSTM, RNN, Dense, PeepholeLSTMCell, TimeDistributed
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs
numpy.set_printoptions(precision=3, suppress=True)


# %% [markdown]
# ## The weights, in Keras's layout
#
# One kernel holds the four gates side by side, in Keras's order i, f, c, o:
# for 20 units and one input feature, expect kernel (1, 80), recurrent kernel
# (20, 80), bias (80,). The forget gate's bias starts at 1
# (`unit_forget_bias=True`): the cell starts by remembering. Expect the
# bias blocks' means to be 0, 1, 0, 0.

# %%
tinyrnn.set_random_seed(42)
lstm = LSTM(20, return_sequences=True)
lstm.build((None, 50, 1))
for name, weight in zip(lstm.weight_names, lstm.get_weights()):
    print(f"{name:17s}{weight.shape}")
bias = lstm.get_weights()[2]
print("bias block means (i, f, c, o):", bias.reshape(4, 20).mean(axis=1))

# %% [markdown]
# ## Both states come out with `return_state`
#
# `return_state=True` returns the output and the final states: for an LSTM,
# [y, h_T, c_T]. With `return_sequences=True`, y is every h_t, so its last
# step equals h_T. Expect (3, 50, 20), (3, 20), (3, 20) and `True`.

# %%
series = load_course_data("seq2seq", n_series=N_SERIES)
X_valid, Y_valid = series["valid"]
with_state = LSTM(20, return_sequences=True, return_state=True)
y, h_T, c_T = with_state(X_valid[:3])
print(y.shape, h_T.shape, c_T.shape)
print(numpy.allclose(y[:, -1], h_T))

# %% [markdown]
# ## Gradient checks
#
# Both cells' backward passes, against finite differences (tiny sizes, float64).
# The peephole cell adds three weight vectors of H = 4 entries each. Expect
# every error **below 1e-7** (between about 1e-12 and 1e-9).

# %%
x = numpy.random.default_rng(0).normal(size=(2, 5, 3))                 # B=2, T=5, D=3
for layer in (LSTM(4, return_sequences=True), RNN(PeepholeLSTMCell(4), return_sequences=True)):
    report = gradcheck(layer, x)
    print(report, "\n")
    report.assert_ok()

# %% [markdown]
# ## Training both on the sequence-to-sequence task
#
# The model of tutorial 5 with LSTM layers: two `LSTM(20, return_sequences=True)`
# and `TimeDistributed(Dense(10))`, Adam at its default rate, for 20 epochs.
# An LSTM step costs about four SimpleRNN steps, and the peephole cell a
# little more: expect about a minute for each.
#
# Expect a validation `last_time_step_mse` of about **0.007 to 0.011** for
# both (the course's LSTM: 0.0086; Keras 3: 0.0095), and the peephole cell
# no better than the plain LSTM here: its extra weights buy nothing on these
# short series.

# %%
def train(name, recurrent_layer):
    tinyrnn.set_random_seed(42)
    model = Sequential([
        recurrent_layer(return_sequences=True, input_shape=[None, 1]),
        recurrent_layer(return_sequences=True),
        TimeDistributed(Dense(10)),
    ], name=name)
    model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
    history = model.fit(*series["train"], epochs=EPOCHS, validation_data=series["valid"], verbose=0)
    print(f"{name}: {model.count_params()} parameters, validation last_time_step_mse "
          f"{history.history['val_last_time_step_mse'][-1]:.4f}")
    return model, history


lstm_model, lstm_history = train("LSTM", lambda **kw: LSTM(20, **kw))
peephole_model, peephole_history = train("peephole LSTM", lambda **kw: RNN(PeepholeLSTMCell(20), **kw))

# %% [markdown]
# Expect two panels of falling curves, similar in shape (each model's
# `last_time_step_mse`: training dashed, validation solid), then the LSTM's
# ten-step forecast of one validation series: crosses close to the red circles.

# %%
histories = {"LSTM": lstm_history, "RNN(PeepholeLSTMCell)": peephole_history}
show(plot.plot_learning_curves_grid(histories), "07_learning_curves")

Y_pred = lstm_model.predict(X_valid[:1])[:, -1]                         # (1, 10): the last step's forecast
show(plot.plot_multiple_forecasts(X_valid[:1], Y_valid[:1, -1], Y_pred, title="LSTM forecast"), "07_forecast")

# %% [markdown]
# ## What to remember
#
# - Keras's gate order i, f, c, o, one kernel of 4H columns; the forget gate's
#   bias starts at 1.
# - The long-term state is multiplied only by $f$ from step to step: the
#   gradient survives as long as the network keeps $f$ near 1.
# - Peepholes add 3H weights and a little cost; the chapter shows no gain here.
