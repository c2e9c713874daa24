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
# # 14. Padding, masking and bidirectional layers
#
# Sentences, words and recordings come in different lengths, but a batch is
# one array (B, T, D). The usual fix is **padding**: every sequence is
# extended with zeros to the longest length T. Padding changes what a
# recurrent layer computes, unless it is told which steps are padding: that
# is the **mask**, a (B, T) array of booleans, True where a step holds data.
#
# - `Masking(0.0)` makes the mask from the data (a step whose features are
#   all 0.0 is padding); `Embedding(..., mask_zero=True)` makes it from token
#   id 0. The mask flows through the following layers, as in Keras.
# - A recurrent layer **skips** masked steps: its state is carried through
#   them unchanged, so its last output is the state after the last real step.
# - A **bidirectional** layer runs a second recurrent layer over the reversed
#   sequence and merges both outputs; the mask is reversed with the sequence.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import Sequential, backend, gradcheck, padding_experiment
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.layers import GRU, LSTM, Bidirectional, Dense, Masking
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs

# %% [markdown]
# ## Padding a batch
#
# Three sequences of lengths 4, 2 and 5, one feature per step, padded with
# zeros after the data ("post" padding, also called right padding) to T = 5.
# `Masking(0.0)` turns the zeros into the mask. Expect the mask rows
# `[T T T T F]`, `[T T F F F]` and `[T T T T T]`.

# %%
rng = numpy.random.default_rng(0)
lengths = [4, 2, 5]
x = numpy.zeros((3, 5, 1), "float32")
for i, n in enumerate(lengths):
    x[i, :n, 0] = rng.uniform(-1, 1, size=n)
print(x[..., 0].round(2))
print(Masking(0.0).compute_mask(x))

# %% [markdown]
# ## A GRU with and without the mask
#
# The same GRU reads each sequence alone (no padding at all) and then the
# padded batch, once through `Masking` and once without. Expect the masked
# batch to give **exactly** each sequence's own answer (difference 0), and
# the unmasked batch to differ for the two padded sequences (rows 0 and 1),
# since the GRU also read the zeros, but not for the full-length one (row 2).

# %%
tinyrnn.set_random_seed(1)
gru = GRU(3)
masked = Sequential([Masking(0.0, input_shape=[None, 1]), gru])
unmasked = Sequential([gru])                                 # the same layer, the same weights
alone = numpy.concatenate([gru(x[i:i + 1, :n]) for i, n in enumerate(lengths)])
print("masked   - alone:", numpy.abs(masked.predict(x, verbose=0) - alone).max(axis=1))
print("unmasked - alone:", numpy.abs(unmasked.predict(x, verbose=0) - alone).max(axis=1).round(4))

# %% [markdown]
# ## Bidirectional: the future helps
#
# `Bidirectional(GRU(h))` holds two GRUs: `forward_gru` reads
# $x_1 \dots x_T$, `backward_gru` reads $x_T \dots x_1$, and the outputs are
# merged: concatenated by default (2h features), or summed, averaged,
# multiplied, or returned as a list (`merge_mode=None`). With
# `return_sequences=True` the backward layer's outputs are flipped back, so
# step t of the output has seen $x_1..x_t$ forwards and $x_T..x_t$ backwards.
#
# Expect the output shapes (3, 5, 8) for concat, (3, 5, 4) for sum, mul and
# ave, and two arrays of (3, 5, 4) for None; the weights are the forward
# layer's three, then the backward layer's (Keras's order): 2 x 84 = 168 parameters.

# %%
for merge_mode in ("concat", "sum", "mul", "ave", None):
    layer = Bidirectional(GRU(4, return_sequences=True), merge_mode=merge_mode)
    y = layer(x)
    print(f"{merge_mode!s:>6}:", [a.shape for a in y] if isinstance(y, list) else y.shape)
print([w.shape for w in layer.get_weights()], layer.count_params())

# %% [markdown]
# ## Its gradient
#
# The merge has its own backward (for `mul`, the product rule:
# $dy_f = dy \odot y_r$, $dy_r = dy \odot y_f$), then each direction runs its
# own BPTT, and the input gradient is the sum of the two paths, the backward
# one flipped back. A gradient check in float64 with random biases, with the
# mask of a right-padded batch: expect every error **below 1e-7** (about
# 1e-9).

# %%
class FixedMask:
    """The layer with the batch's mask held fixed, for gradcheck. (Perturbing a padded zero would
    turn padding into data: the mask would change, a step in the function, not a slope.)"""

    def __init__(self, layer, mask):
        self.layers, self.built, self.mask = [layer], True, mask

    def forward(self, x, training=False):
        return self.layers[0].forward(x, training=training, mask=self.mask)

    def backward(self, dy):
        return self.layers[0].backward(dy)


mask = numpy.array([[True] * 5, [True, True, True, False, False]])           # lengths 5 and 3
x64 = numpy.random.default_rng(2).normal(size=(2, 5, 3)) * mask[..., None]  # B=2, T=5, D=3
with backend.float_precision("float64"):
    layer = Bidirectional(LSTM(4, return_sequences=True), merge_mode="mul")
    layer.build(x64.shape)
rng = numpy.random.default_rng(3)
for direction in (layer.forward_layer, layer.backward_layer):
    direction.params["bias"][...] = rng.normal(scale=0.5, size=direction.params["bias"].shape)
report = gradcheck(FixedMask(layer, mask), x64)
print(report)
report.assert_ok()

# %% [markdown]
# A bidirectional layer's first output step has seen the whole sequence
# backwards. That is why it helps here: predict the **first** value of a
# sequence from the whole sequence. A forward GRU must carry $x_1$ through
# every later step; the backward GRU reads it last. Expect, after the same 30
# epochs, a loss about ten times lower with the bidirectional layer (about
# 0.01 against 0.17).

# %%
rng = numpy.random.default_rng(0)
x_first = rng.normal(size=(64, 5, 1)).astype("float32")
for name, layer in (("GRU(8)", GRU(8, input_shape=[None, 1])),
                    ("Bidirectional(GRU(8))", Bidirectional(GRU(8), input_shape=[None, 1]))):
    tinyrnn.set_random_seed(42)
    model = Sequential([layer, Dense(1)])
    model.compile(loss="mse", optimizer=tinyrnn.optimizers.Adam(learning_rate=0.01))
    loss = model.fit(x_first, x_first[:, 0], epochs=2 if QUICK else 30, verbose=0).history["loss"]
    print(f"{name:>22}: loss {loss[0]:.3f} -> {loss[-1]:.4f}")

# %% [markdown]
# ## What masking buys: the experiment
#
# `tinyrnn.padding_experiment` trains the same GRU(16) on sequences of 5 to
# 50 random values, right-padded to 50 steps; the target is the sum of the
# last 5 values. Three variants: masked, unmasked, and unmasked with the
# padding in front ("pre", Keras's `pad_sequences` default, the workaround
# when a layer cannot mask). About 20 to 40 seconds on 2 cores.
#
# Expect the masked model to fit the target to about 0.1 % of its variance,
# the unmasked right-padded one to stall near 14 %, and the left-padded one
# to do about as well as the masked one. Then the same validation sequences
# padded longer than in training (as when a batch holds a longer neighbour):
# the masked model's error does not move at all (it never reads the padding);
# the unmasked right-padded model's grows with every extra padded step.

# %%
experiment = padding_experiment.run(quick=QUICK)
print(padding_experiment.summary_table(experiment))
show(padding_experiment.plot(experiment), "14_padding_experiment")
