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
# # 6. Unstable gradients
#
# Backpropagation through time multiplies the gradient by one Jacobian per
# step. For a SimpleRNN cell,
#
# $$\frac{\partial L}{\partial h_{t-1}} = \Big(\frac{\partial L}{\partial h_t} \odot (1 - h_t^2)\Big) U^\top
# \quad (+ \text{the output's own gradient at } t-1)$$
#
# so after k steps back the gradient has been through k such products: it can
# shrink towards zero (vanishing: early steps stop learning) or grow without
# bound (exploding: one update wrecks the weights). This tutorial:
#
# 1. measures the gradient reaching $h_t$ at every step, for SimpleRNN, LSTM
#    and GRU (`hidden_grad_norms`);
# 2. tames an exploding gradient with clipping (the optimizer's `clipnorm`);
# 3. compares the two normalisations of the course: BatchNormalization between
#    the layers and LayerNormalization inside the cell.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy
from matplotlib import pyplot

import tinyrnn
from tinyrnn import Sequential, TrainingError, backend, plot
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    BatchNormalization,
    Dense,
    LayerNormalization,
    LNSimpleRNNCell,
    SimpleRNN,
    TimeDistributed,
)
from tinyrnn.optimizers import SGD
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 20                           # the course: 20 epochs
N_SMALL = 300 if QUICK else 2000                      # for the short demonstrations
DEMO_EPOCHS = 1 if QUICK else 3


def new_figure(ncols, width=5.5):
    fig, axes = pyplot.subplots(1, ncols, figsize=(width * ncols, 4), squeeze=False)
    pyplot.close(fig)  # shown by show(), once
    return fig, axes[0]


# %% [markdown]
# ## 1. The gradient at every time step
#
# After a backward pass, every recurrent layer keeps `hidden_grad_norms`:
# $\|\partial L / \partial h_t\|$ for t = 1..T, summed over all the paths that
# reach $h_t$. We build the same two-layer sequence-to-vector model with each
# cell (forecast ten steps from 50), run one forward and backward pass on a
# batch, and read the first layer's norms: the gradient that has travelled
# furthest back.

# %%
ten_steps = load_course_data("ten_steps", n_series=N_SMALL)
X_batch, Y_batch = ten_steps["valid"][0][:64], ten_steps["valid"][1][:64]   # (64, 50, 1), (64, 10)


def two_layer_model(layer_class):
    tinyrnn.set_random_seed(42)
    model = Sequential([layer_class(20, return_sequences=True, input_shape=[None, 1]),
                        layer_class(20), Dense(10)])
    model.compile(loss="mse", optimizer="adam")
    model.build((None, 50, 1))
    return model


def hidden_grad_norms(model, X, Y):
    """||dL/dh_t|| of the model's first recurrent layer after one forward and backward pass."""
    Y_pred = model.forward(backend.asarray(X), training=True)
    model.backward(model.loss.gradient(backend.asarray(Y), Y_pred))
    return model.layers[0].hidden_grad_norms            # NumPy, (T,)


models = {cls.__name__: two_layer_model(cls) for cls in (SimpleRNN, LSTM, GRU)}
at_start = {name: hidden_grad_norms(m, X_batch, Y_batch) for name, m in models.items()}
for name, norms in at_start.items():
    print(f"{name:9s} ||dL/dh_50|| = {norms[-1]:.1e}   ||dL/dh_1|| = {norms[0]:.1e}   "
          f"ratio {norms[0] / norms[-1]:.0e}")

# %% [markdown]
# Now train each model for three epochs on 2000 series and measure again.
#
# Expect two panels on a log scale. **At initialisation** the SimpleRNN line
# falls only about tenfold from t = 50 back to t = 1 (its recurrent kernel is
# orthogonal and tanh is nearly linear for small inputs), while the gated
# cells' gradient vanishes: about 1e-4 of its final value for the LSTM and
# 1e-8 for the GRU at t = 1. Their gates start half shut: the LSTM's forget
# gate at $\sigma(1) \approx 0.73$ (`unit_forget_bias`), the GRU's update gate
# at $\sigma(0) = 0.5$, and the gradient along the memory is multiplied by
# that factor at every step. **After training** the gates have learnt to
# keep their memory open: every line now falls by no more than about 50
# times over the 50 steps (ratios between about 1e-2 and 0.3).
#
# A gate is a *learnt* path for the gradient: the network opens it where it
# needs a long memory. A SimpleRNN has no such path; on 50 steps it does not
# need one, but over hundreds of steps its gradient fades with nothing to
# hold it up.
#
# The chapter's run shows this on a task that does need a long memory: the
# adding problem (`tinyrnn.data.adding_problem`) at T = 20, 50 and 100, in
# `tinyrnn.long_memory` (alone: `python -m tinyrnn.long_memory`, about two
# minutes). There the SimpleRNN stays at the error of answering the mean from
# T = 50 on while the LSTM and the GRU solve every length, and after training
# the SimpleRNN's gradient at step 1 is 0 while the gated cells' is a tenth or
# more of that at the last step.

# %%
after_training = {}
for name, model in models.items():
    model.fit(*ten_steps["train"], epochs=DEMO_EPOCHS, verbose=0)
    after_training[name] = hidden_grad_norms(model, X_batch, Y_batch)
    norms = after_training[name]
    print(f"{name:9s} after {DEMO_EPOCHS} epoch(s): ||dL/dh_1|| / ||dL/dh_50|| = {norms[0] / norms[-1]:.0e}")

fig, (left, right) = new_figure(2)
plot.plot_gradient_norms(at_start, title="at initialisation", ax=left)
plot.plot_gradient_norms(after_training, title=f"after {DEMO_EPOCHS} epoch(s)", ax=right)
fig.tight_layout()
show(fig, "06_gradient_norms")

# %% [markdown]
# ## 2. Exploding gradients and clipping
#
# Clipping belongs to the optimizer (never to the loss or a layer, so a
# gradient check always sees the true gradient). With `clipnorm=c` each
# parameter's gradient $g$ becomes $g \cdot c / \max(\|g\|, c)$: its direction is
# kept, its norm is at most c.
#
# On one parameter, a gradient (30, 40, 0) of norm 50 and plain SGD with
# learning rate 1. Expect the unclipped step to be -(30, 40, 0), the clipped
# one -(0.6, 0.8, 0), of norm 1.

# %%
for optimizer in (SGD(learning_rate=1.0), SGD(learning_rate=1.0, clipnorm=1.0)):
    param = backend.xp.zeros(3, dtype="float32")
    optimizer.apply_gradients([("w", param, backend.xp.asarray([30.0, 40.0, 0.0], dtype="float32"))])
    print(f"clipnorm={optimizer.clipnorm}: step {backend.to_numpy(param).round(4)}")

# %% [markdown]
# In training: a deep SimpleRNN trained by SGD with a learning rate of 1 is
# unstable. Without clipping, expect the gradient norm to explode (to around
# 1e18) within two epochs and `fit` to stop with a `TrainingError` that says
# so and suggests clipping (caught and printed here). With `clipnorm=1.0` the
# same run stays finite: expect a validation loss below 1 every epoch.
# `History.history["grad_norm"]` holds the mean gradient norm of each epoch,
# measured *before* clipping. (In quick mode the first run may well survive.)

# %%
def clipping_run(clipnorm):
    tinyrnn.set_random_seed(42)
    model = Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
                        SimpleRNN(20), Dense(10)])
    model.compile(loss="mse", optimizer=SGD(learning_rate=1.0, clipnorm=clipnorm))
    with numpy.errstate(over="ignore", invalid="ignore"):    # the overflow is the point here
        try:
            history = model.fit(*ten_steps["train"], epochs=DEMO_EPOCHS, validation_data=ten_steps["valid"],
                                verbose=0)
        except TrainingError as err:
            print(f"clipnorm={clipnorm}: TrainingError: {err}")
            return None
    print(f"clipnorm={clipnorm}: val_loss per epoch", [round(v, 4) for v in history.history["val_loss"]],
          "| grad_norm per epoch", [round(v, 3) for v in history.history["grad_norm"]])
    return history


unclipped = clipping_run(None)
clipped = clipping_run(1.0)

# %% [markdown]
# ## 3. BatchNormalization or LayerNormalization?
#
# Both rescale activations to mean 0 and variance 1, then apply a learnt
# gain $\gamma$ and shift $\beta$. They differ in *what* they average over:
#
# - `BatchNormalization`, between recurrent layers, averages each feature over
#   the batch *and* the time steps, (B, T, H) -> H statistics, and keeps moving
#   averages for inference;
# - `LayerNormalization` averages each sample's H features at one step,
#   (B, T, H) -> B*T statistics, the same in training and inference. Inside a
#   cell (`LNSimpleRNNCell`) it normalises $z_t$ at every step, before tanh.
#
# Expect for BatchNormalization: per-feature means about 0 (below 1e-6) and
# standard deviations about 1, while one sample's step is not normalised;
# for LayerNormalization the reverse.

# %%
h = SimpleRNN(20, return_sequences=True)(backend.asarray(X_batch))        # (64, 50, 20) hidden states
y_bn = backend.to_numpy(BatchNormalization()(h, training=True))
y_ln = backend.to_numpy(LayerNormalization()(h))
for name, y in (("BatchNormalization", y_bn), ("LayerNormalization", y_ln)):
    print(f"{name}: per feature over (B, T): |mean| <= {numpy.abs(y.mean(axis=(0, 1))).max():.1e}, "
          f"std {y.std(axis=(0, 1)).mean():.2f} | per (b, t) over H: |mean| <= "
          f"{numpy.abs(y.mean(axis=-1)).max():.1e}, std {y.std(axis=-1).mean():.2f}")

# %% [markdown]
# The course's two models, sequence to sequence as in tutorial 5 (Adam at
# its default rate, 20 epochs; about a minute for both):
#
# - BatchNormalization after each recurrent layer: expect a validation
#   `last_time_step_mse` of about **0.012 to 0.019** (the course: 0.0164;
#   Keras 3: 0.0149), *worse* than tutorial 5's model without it (about
#   0.006 to 0.010, trained at Adam's rate 0.01). Statistics pooled over time
#   steps help little in a recurrent net;
# - LayerNormalization inside the cell: expect about **0.011 to 0.025** (the
#   course: 0.0121 and 0.0132 in two runs; Keras 3: 0.0212). Seed-to-seed
#   spread is large here.

# %%
seq2seq = load_course_data("seq2seq", n_series=N_SERIES)


def train_seq2seq(name, layers):
    tinyrnn.set_random_seed(42)
    model = Sequential(layers, name=name)
    model.compile(loss="mse", optimizer="adam", metrics=["last_time_step_mse"])
    history = model.fit(*seq2seq["train"], epochs=EPOCHS, validation_data=seq2seq["valid"], verbose=0)
    print(f"{model.name}: validation last_time_step_mse {history.history['val_last_time_step_mse'][-1]:.4f}")
    return history


histories = {
    "BatchNormalization": train_seq2seq("batchnorm", [
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        BatchNormalization(),
        SimpleRNN(20, return_sequences=True),
        BatchNormalization(),
        TimeDistributed(Dense(10)),
    ]),
    "LNSimpleRNNCell": train_seq2seq("ln_rnn", [
        RNN(LNSimpleRNNCell(20), return_sequences=True, input_shape=[None, 1]),
        RNN(LNSimpleRNNCell(20), return_sequences=True),
        TimeDistributed(Dense(10)),
    ]),
}

# %% [markdown]
# Learning curves, and `History.history["grad_norm"]`, the mean gradient norm
# per epoch. Expect falling curves for both models, and mean gradient norms
# between about 0.1 and a few units throughout: the LN-RNN's jumps from epoch
# to epoch, the BatchNorm model's stays steadier, and neither explodes
# (nothing here needs clipping).

# %%
fig, axes = new_figure(3, width=4.5)
for ax, (name, history) in zip(axes, histories.items()):
    plot.plot_learning_curves(history, title=name, ax=ax)
for name, history in histories.items():
    grad_norms = history.history["grad_norm"]
    axes[2].plot(range(1, len(grad_norms) + 1), grad_norms, ".-", label=name)
axes[2].set(yscale="log", xlabel="epoch", ylabel="mean gradient norm", title='history["grad_norm"]')
axes[2].legend(fontsize="small")
fig.tight_layout()
show(fig, "06_normalization")

# %% [markdown]
# ## What to remember
#
# - `hidden_grad_norms` shows how far back the gradient reaches; gates give
#   the network a path it can learn to keep open.
# - Clip in the optimizer (`clipnorm`, `clipvalue`, `global_clipnorm`); watch
#   `history.history["grad_norm"]`.
# - In a recurrent network, normalise per sample and per step (LayerNorm in the
#   cell) rather than over the batch and time (BatchNorm).
