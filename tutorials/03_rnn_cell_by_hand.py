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
# # 3. One RNN cell by hand
#
# A recurrent layer is a loop over time around one *cell*. In this tutorial we
# take one `SimpleRNNCell` and run the loop ourselves:
#
# 1. project the inputs of all time steps at once (phase 1);
# 2. the forward recurrence, one `step_forward` per time step (phase 2);
# 3. backpropagation through time, one `step_backward` per step in reverse (phase 3);
# 4. the weight gradients of all steps at once (phase 4);
#
# then prove our gradients with `tinyrnn.gradcheck`, break one line of the
# backward pass, and watch the check fail.
#
# The cell's equations, with B batch, T time, D input features, H units:
#
# $$z_t = W^\top x_t + U^\top h_{t-1} + b, \qquad h_t = \tanh(z_t)$$
#
# with Keras's kernel $W$ of shape (D, H), recurrent kernel $U$ (H, H), bias
# $b$ (H,), column vectors $x_t$ (D,) and $h_t$ (H,), and $h_0 = 0$.

# %%
import os
from types import SimpleNamespace

import numpy

import tinyrnn
from tinyrnn import gradcheck
from tinyrnn.layers import RNN, SimpleRNN, SimpleRNNCell

QUICK = os.environ.get("TINYRNN_QUICK") == "1"  # nothing to shrink here: every size is tiny
tinyrnn.set_random_seed(42)
numpy.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# Small, *distinct* sizes: B=2, T=5, D=3, H=4. If a weight were used
# transposed somewhere, shapes like (3, 4) vs (4, 3) would crash instead of
# silently passing.
#
# We compute in float64 (rounding in float32 is ~1e-7, too coarse to compare
# gradients): the layers are built inside `with tinyrnn.float_precision("float64"):`,
# so their weights are float64 while float32, the training default, stays on
# everywhere else. Stop half-way and nothing is left changed.

# %%
B, T, D, H = 2, 5, 3, 4
rng = numpy.random.default_rng(0)
x = rng.normal(size=(B, T, D))  # (B, T, D)

layer = SimpleRNN(H, return_sequences=True)
with tinyrnn.float_precision("float64"):  # float64 weights; float32 is back after the block
    layer.build(x.shape)
cell = layer.cell
cell.params["bias"][...] = rng.normal(scale=0.5, size=H)  # a random bias: a zero bias can hide bugs
W, U, b = cell.params["kernel"], cell.params["recurrent_kernel"], cell.params["bias"]
print("W (kernel)          ", W.shape)
print("U (recurrent_kernel)", U.shape)
print("b (bias)            ", b.shape)

# %% [markdown]
# ## Phase 1: project every input at once
#
# $W^\top x_t + b$ does not depend on the recurrence, so one matrix product does
# it for all T*B (step, sample) pairs. Inside the loop the arrays are
# *time-major* and *feature-major*, as the equations read with column vectors:
# `X[t]` is x_t of shape (D, B), one column per sequence, and a hidden state
# h_t is (H, B).
#
# Expect: X (5, 3, 2) and XW (5, 4, 2).

# %%
X = x.transpose(1, 2, 0)        # (T, D, B)
XW = cell.project_inputs(X)     # (T, H, B): W^T x_t + b for every t
print("X ", X.shape)
print("XW", XW.shape)

# %% [markdown]
# ## Phase 2: the recurrence, one step at a time
#
# What a step's backward will need is kept on a *tape*, allocated once per
# sequence batch: `tape.H[t + 1]` holds h_t (with h_0 = 0 in `tape.H[0]`) and
# `tape.dZ` will receive the pre-activation gradients. A SimpleRNN cell needs
# nothing else, because $\tanh'(z_t) = 1 - h_t^2$ can be read from the output:
# backward never recomputes the forward. The layer also puts its
# recurrent-dropout mask on the tape, `tape.rec_mask`: the cell multiplies
# $h_{t-1}$ by it where $U$ reads it (`self.recurrent_input`). Here there is
# no dropout, so it is `None`.
#
# `step_forward(t, xw_t, states, tape)` adds $U^\top h_{t-1}$, applies tanh,
# writes h_t into the tape and returns the new states.
#
# Expect the tape to hold H (6, 4, 2), rec_mask None and dZ (5, 4, 2), and
# `pooled`, the list of the arrays the cell took from its pool
# (`cell.tape_array`; printed as their shapes): the layer gives them back once
# the backward pass is done with them, so that its next batch reuses the
# memory. Here the list holds dZ only. Then five lines, each h_t (4, 2) with
# values in (-1, 1).

# %%
tape = SimpleNamespace(H=numpy.zeros((T + 1, H, B)),   # H[t + 1] = h_t; H[0] = h_0 = 0
                       rec_mask=None)                  # no recurrent dropout
cell.prepare(tape, T, B, x.dtype)                      # the cell's own buffers: here dZ only
def shapes(tape):
    """The tape's arrays as their shapes (a list of arrays as a list of shapes)."""
    return {name: [a.shape for a in value] if isinstance(value, list) else getattr(value, "shape", value)
            for name, value in vars(tape).items()}


print(shapes(tape))
states = [tape.H[0]]
for t in range(T):
    states = cell.step_forward(t, XW[t], states, tape)
    print(f"t={t}: xw_t {XW[t].shape} + U^T h_(t-1) {tape.H[t].shape} -> h_t {states[0].shape}, "
          f"h_t[:, 0] = {states[0][:, 0]}")

# %% [markdown]
# Our loop and the layer run the same code, so the difference should be
# exactly **0.0**. (The layer returns Keras's layout, (B, T, H).)

# %%
Y = layer.forward(x)           # (B, T, H): return_sequences=True gives every h_t
print("layer output", Y.shape)
print("max |our h_t - layer's h_t| =", numpy.abs(tape.H[1:].transpose(2, 0, 1) - Y).max())

# %% [markdown]
# Other cells keep more on their tape. An LSTM step keeps the activations of
# its four gate blocks o, i, f, g (S, (T, 4H, B)): inside the recurrence the
# LSTM puts the rows of z in that order, not in Keras's i, f, c, o, so that the
# three sigmoid gates are side by side. It also keeps its cell states
# (C, (T + 1, H, B), with c_0 = 0) and tanh(c_t) (TC, (T, H, B)), beside H.
# Expect H (6, 4, 2), rec_mask None, pooled [(5, 16, 2), (6, 4, 2),
# (5, 4, 2)] (S, C, TC), S (5, 16, 2), C (6, 4, 2), TC (5, 4, 2), and kU_T (16, 4): U^T with its rows
# in z's row order and scaled by k (1/2 on the rows of o, i, f, 1 on the
# candidate's), so that one tanh computes all four gates, since
# sigmoid(z) = (1 + tanh(z / 2)) / 2 (the LSTM page of the docs explains the
# trick; phase 1 scales W the same way). Then half (1/2 as a 0-d array,
# shape (), for those gates) and buffers that every step reuses (ig, dc,
# dc_prev):

# %%
from tinyrnn.layers import LSTMCell  # noqa: E402  (imported here, where it is first needed)

lstm_cell = LSTMCell(H)
with tinyrnn.float_precision("float64"):
    lstm_cell.build(D)
lstm_tape = SimpleNamespace(H=numpy.zeros((T + 1, H, B)), rec_mask=None)
lstm_cell.prepare(lstm_tape, T, B, x.dtype)
lstm_xw = lstm_cell.project_inputs(X)                      # (T, 4H, B): rows o, i, f, g, times k (one tanh)
lstm_cell.step_forward(0, lstm_xw[0], [lstm_tape.H[0], numpy.zeros((H, B))], lstm_tape)
print(shapes(lstm_tape))

# %% [markdown]
# ## Phase 3: backpropagation through time, step by step
#
# Take the loss $L = \sum_{b,t,j} Y_{b,t,j}\,G_{b,t,j}$ with a *random*
# upstream gradient $G = \partial L / \partial Y$ (with $G = 1$ some
# gradients cancel to zero and a bug can hide).
#
# The gradient reaching $h_t$ comes by two paths: from the output at step t
# ($G_t$) and from step t+1 through $U^\top h_t$. Walking backwards:
#
# $$\frac{\partial L}{\partial h_t} = G_t + U \frac{\partial L}{\partial z_{t+1}},
# \qquad \frac{\partial L}{\partial z_t} = \frac{\partial L}{\partial h_t} \odot (1 - h_t^2)$$
#
# Before the loop, `prepare_backward` computes $1 - h_t^2$ for all steps at
# once (it depends on the forward pass only). Then `step_backward(t, [dh_t],
# tape)` writes dz_t into `tape.dZ[t]` and returns the gradient for
# $h_{t-1}$, $U\,dz_t$ (passed through `self.recurrent_input_grad`, which
# multiplies it by the recurrent-dropout mask when there is one).
#
# Expect five lines, t = 4 down to 0, each dh_t and dz_t (4, 2).

# %%
G = rng.normal(size=(B, T, H))        # dL/dY, (B, T, H)
dY = G.transpose(1, 2, 0)             # (T, H, B)
tape.H_prev = tape.H[:-1]             # h_{t-1} as U read it (no recurrent dropout here)
cell.prepare_backward(tape)           # tape.dh_dz = 1 - h_t^2 for every t, (T, H, B)
dh_from_later = numpy.zeros((H, B))   # nothing comes back from after the last step
for t in reversed(range(T)):
    dh = dY[t] + dh_from_later        # both paths into h_t
    (dh_from_later,) = cell.step_backward(t, [dh], tape)
    print(f"t={t}: dh_t {dh.shape} -> dz_t {tape.dZ[t].shape}, dh_(t-1) {dh_from_later.shape}; "
          f"||dh_t|| = {numpy.linalg.norm(dh):.4f}")

# %% [markdown]
# ## Phase 4: the weight gradients, all steps at once
#
# Every step used the same $W$, $U$, $b$, so their gradients sum over time
# (and over the batch, the columns):
#
# $$dW = \sum_t x_t\, dz_t^\top, \quad dU = \sum_t h_{t-1}\, dz_t^\top, \quad
# db = \sum_t dz_t \mathbf{1}, \quad dx_t = W dz_t$$
#
# Written as a loop over t, then as the one product over time and batch the
# cell uses (`numpy.tensordot`). Expect dW (3, 4), dU (4, 4), db (4,),
# dx (2, 5, 3), and differences from the layer's own backward of about 1e-16
# (float64 rounding only).

# %%
dZ = tape.dZ                                             # (T, H, B)
dW_loop = sum(X[t] @ dZ[t].T for t in range(T))          # (D, H)
dW = numpy.tensordot(X, dZ, axes=([0, 2], [0, 2]))       # the same sum, one product
dU = numpy.tensordot(tape.H_prev, dZ, axes=([0, 2], [0, 2]))  # (H, H)
db = dZ.sum(axis=(0, 2))                                 # (H,)
dx = (W @ dZ).transpose(2, 0, 1)                         # (T, D, B) -> (B, T, D)
print(f"loop vs one product: {numpy.abs(dW_loop - dW).max():.1e}")

layer.zero_grads()
layer.forward(x)
dx_layer = layer.backward(G)
for name, ours, theirs in (("kernel", dW, layer.grads["kernel"]),
                           ("recurrent_kernel", dU, layer.grads["recurrent_kernel"]),
                           ("bias", db, layer.grads["bias"]), ("input", dx, dx_layer)):
    print(f"d{name:17s}{str(ours.shape):9s} max |ours - layer's| = {numpy.abs(ours - theirs).max():.1e}")

# %% [markdown]
# ## The gradient check
#
# Agreeing with the layer proves we copied it, not that it is right.
# `tinyrnn.gradcheck` compares the analytic gradients with central
# differences, $(L(p + h) - L(p - h)) / 2h$, for every entry of the input and
# of every parameter, and reports the worst relative error of each array.
#
# Expect every row **about 1e-10 or smaller** (between 1e-13 and 1e-9 for a
# correct float64 backward); anything above 1e-7 means a bug.

# %%
report = gradcheck(layer, x)
print(report)
print("worst:", report.worst.name, f"{report.worst.error:.1e}")
report.assert_ok()  # raises if any error exceeds 1e-7

# %% [markdown]
# ## Break it, and watch the check fail
#
# Now the student's mistake: a cell whose `step_backward` forgets the
# derivative of tanh, i.e. uses $dz_t = dh_t$ instead of
# $dz_t = dh_t (1 - h_t^2)$. Try it yourself: copy the class, break a
# different line, and rerun the check.
#
# Expect the check to **fail**: errors of **order 1** (about 0.5 to 2) in the
# kernel, recurrent kernel, bias and input rows (the wrong factor reaches them all).

# %%
class ForgetfulCell(SimpleRNNCell):
    """A SimpleRNN cell with a bug in its backward pass."""

    def step_backward(self, t, dstates, tape):
        dz = tape.dZ[t]
        dz[...] = dstates[0]                   # BUG: should be dstates[0] * tape.dh_dz[t], i.e. * (1 - h_t^2)
        return [self.recurrent_input_grad(self.params["recurrent_kernel"] @ dz, tape)]


def broken_layer(cell_class):
    """An RNN around ``cell_class(H)`` with the weights of our correct layer, so only the bug differs."""
    broken = RNN(cell_class(H), return_sequences=True)
    with tinyrnn.float_precision("float64"):
        broken.build(x.shape)
    broken.set_weights(layer.get_weights())
    return broken


report = gradcheck(broken_layer(ForgetfulCell), x)
print(report)
print("passed?", report.passed())
assert not report.passed(), "the broken cell should fail the check"

# %% [markdown]
# `assert_ok` names the worst entry, with the analytic and numeric values
# side by side (expect an AssertionError message, caught and printed here):

# %%
try:
    report.assert_ok()
except AssertionError as err:
    print(str(err).splitlines()[0])

# %% [markdown]
# A subtler bug: a transpose too many in $dh_{t-1} = U\,dz_t$. U is
# square (H, H), so nothing crashes and every shape is right; only the
# numbers are wrong. Expect the check to fail again, errors of **order 1**
# in every row (the bias and kernel rows too: the wrong gradient flows back
# through time into every earlier step).

# %%
class TransposeForgottenCell(SimpleRNNCell):
    """Another bug: U^T where U belongs."""

    def step_backward(self, t, dstates, tape):
        dz = tape.dZ[t]
        dz[...] = dstates[0] * tape.dh_dz[t]
        return [self.recurrent_input_grad(self.params["recurrent_kernel"].T @ dz, tape)]  # BUG: U^T, not U


report = gradcheck(broken_layer(TransposeForgottenCell), x)
print(report)
assert not report.passed(), "the transposed U should fail the check"

# %% [markdown]
# ## What to remember
#
# - A recurrent layer = phase 1 (one product), a loop of `step_forward`, a
#   reverse loop of `step_backward`, phase 4 (one product per weight).
# - The gradient reaching $h_t$ is the sum of two paths: the output at t and
#   the next step.
# - A gradient check with a random upstream gradient, in float64, scores about
#   1e-10 when the backward is right and about 1 when one line is wrong.
