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
# # 12. Hand-derived vs recorded backward: the LSTM cell twice
#
# Every built-in cell of tinyrnn has a backward pass derived by hand (the
# [BPTT page](../docs/pages/bptt.md) and the cell pages). A cell can also be
# written the Keras way, as a `Layer` whose `call(inputs, states)` composes
# operations of `tinyrnn.ops`: then nobody derives its backward. Each operation
# the step uses is *recorded*, with its own small hand-written backward, and
# BPTT walks the record in reverse (`tinyrnn.graph`). The chain rule is the
# same either way, so both must give the same numbers.
#
# Here the LSTM cell is written in Keras's cell protocol, equation by equation,
#
# $$z = x_t W + h_{t-1} U + b \quad\text{(B, 4H): the blocks } z_i, z_f, z_c, z_o$$
# $$i = \sigma(z_i),\ f = \sigma(z_f),\ g = \tanh(z_c),\ o = \sigma(z_o)$$
# $$c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)$$
#
# and compared with the built-in `LSTMCell`: outputs and gradients, training,
# the graph of one recorded step, and the time each takes.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean little).

# %%
import math
import os
import time

import numpy
from matplotlib.figure import Figure

import tinyrnn
from tinyrnn import Sequential, graph, ops
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.data import load_course_data
from tinyrnn.layers import LSTM, RNN, Dense, Layer
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
N_SERIES = 300 if QUICK else 10000                    # the course: 10000 series
EPOCHS = 2 if QUICK else 5
REPEATS = 5 if QUICK else 20                          # timed forward + backward passes, best kept
numpy.set_printoptions(precision=3, suppress=True)


# %% [markdown]
# ## The cell, in Keras's cell protocol
#
# A `Layer` subclass with `state_size` (two states, $h$ and $c$, of H units
# each), `output_size`, a `build` that creates Keras's three weights with
# `add_weight`, and `call(inputs, states) -> (output, new_states)`. The weights
# have the built-in cell's names, shapes and gate order (i, f, c, o), so
# `get_weights()` of one loads into the other. Inside `call` the weights are
# `Variable`s and the inputs `Value`s: `@`, `+`, `*`, slicing and the activations
# are recorded operations. There is no `backward` to write.

# %%
class OpsLSTMCell(Layer):
    """The LSTM step written with tinyrnn.ops; its backward is recorded, not derived."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]                     # h and c, (B, H) each
        self.output_size = units

    def build(self, input_shape):                            # input_shape: (B, D)
        D, H = input_shape[-1], self.units
        self.kernel = self.add_weight(shape=(D, 4 * H), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(H, 4 * H), initializer="orthogonal",
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * H,), initializer=forget_bias_one, name="bias")

    def call(self, inputs, states):
        h_prev, c_prev = states                              # (B, H) each
        H = self.units
        z = inputs @ self.kernel + h_prev @ self.recurrent_kernel + self.bias    # (B, 4H)
        i = ops.sigmoid(z[:, :H])                            # input gate
        f = ops.sigmoid(z[:, H:2 * H])                       # forget gate
        g = ops.tanh(z[:, 2 * H:3 * H])                      # candidate
        o = ops.sigmoid(z[:, 3 * H:])                        # output gate
        c = f * c_prev + i * g                               # c_t = f c_{t-1} + i g
        h = o * ops.tanh(c)                                  # h_t = o tanh(c_t)
        return h, [h, c]


def forget_bias_one(shape):
    """Keras's unit_forget_bias: zeros, with 1 on the forget gate's block."""
    b = numpy.zeros(shape)
    H = shape[0] // 4
    b[H:2 * H] = 1.0
    return b


# %% [markdown]
# ## Same weights, same numbers (float64)
#
# Both layers get the same random weights (random biases included) and the
# same batch of the course's series; then one forward pass and one backward
# pass with a random upstream gradient. The built-in layer runs its four
# phases (feature-major arrays, one tanh for all four gates, in-place buffers),
# the recorded one 17 small operations per step and their backward passes in
# reverse: the order of the floating-point operations differs, the
# mathematics does not.
#
# Expect every difference at float64 rounding, **below 1e-12** (between 1e-16
# and 1e-13): outputs, the input's gradient and the three weight gradients.

# %%
tinyrnn.set_floatx("float64")
rng = numpy.random.default_rng(0)
series = load_course_data("one_step", n_series=N_SERIES)
x = series["valid"][0][:32].astype("float64")                          # B=32, T=50, D=1
H = 20

recorded = RNN(OpsLSTMCell(H), return_sequences=True)
built_in = LSTM(H, return_sequences=True)
recorded.build(x.shape)
built_in.build(x.shape)
weights = [rng.normal(scale=0.5, size=w.shape) for w in built_in.get_weights()]
recorded.set_weights(weights)
built_in.set_weights(weights)

dy = rng.normal(size=(32, 50, H))                                       # dL/dy, random
y_rec, y_ref = recorded.forward(x), built_in.forward(x)
dx_rec, dx_ref = recorded.backward(dy), built_in.backward(dy)
differences = {"outputs": numpy.abs(y_rec - y_ref).max(), "dL/dx": numpy.abs(dx_rec - dx_ref).max()}
for name in built_in.weight_names:
    differences[f"dL/d{name}"] = numpy.abs(recorded.cell.grads[name] - built_in.grads[name]).max()
for name, difference in differences.items():
    print(f"{name:22s} max |recorded - built-in| = {difference:.1e}")
assert max(differences.values()) < 1e-12, differences

# %% [markdown]
# A gradient check of the recorded cell on tiny sizes (B=2, T=5, D=3, H=4)
# confirms it against finite differences, not only against the built-in cell.
# Expect a worst relative error **below 1e-7**.

# %%
report = tinyrnn.gradcheck(RNN(OpsLSTMCell(4), return_sequences=True), rng.normal(size=(2, 5, 3)))
print(report)
report.assert_ok()

# %% [markdown]
# ## Trained side by side (float32)
#
# The model of the chapter's one-step task with an LSTM: `LSTM(20)` and
# `Dense(1)`, Adam, mean squared error. The two models start from the same
# weights and see the batches in the same order (the same seed before each
# `fit`). In float32 the two orders of operations round differently, so the
# curves are not bit for bit equal; the differences are far below what
# training changes from one epoch to the next.
#
# Expect the two curves of each kind (training, validation) on top of each
# other, their largest relative difference **below 1e-4** (about 1e-7 to
# 1e-6), and the recorded model's fit several times slower (times are the CPU
# time of this process, `time.process_time`: on a busy machine other programs
# do not count, and with one BLAS thread it is the wall time of an idle one).

# %%
tinyrnn.set_floatx("float32")


def one_step_model(recurrent_layer):
    model = Sequential([recurrent_layer, Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    return model


tinyrnn.set_random_seed(42)
models = {"built-in LSTM": one_step_model(LSTM(20, input_shape=[None, 1])),
          "RNN(OpsLSTMCell)": one_step_model(RNN(OpsLSTMCell(20), input_shape=[None, 1]))}
for model in models.values():
    model.build()
models["RNN(OpsLSTMCell)"].set_weights(models["built-in LSTM"].get_weights())

histories, fit_seconds = {}, {}
for name, model in models.items():
    tinyrnn.set_random_seed(7)                                          # the same batch order for both
    start = time.process_time()
    histories[name] = model.fit(*series["train"], epochs=EPOCHS, validation_data=series["valid"], verbose=0)
    fit_seconds[name] = time.process_time() - start
    print(f"{name:18s} loss {numpy.array(histories[name].history['loss'])}  "
          f"val_loss {numpy.array(histories[name].history['val_loss'])}  fit {fit_seconds[name]:.1f} s")

curves = [numpy.array(h.history[k]) for k in ("loss", "val_loss") for h in histories.values()]
relative = max(numpy.abs(curves[0] - curves[1]).max() / curves[0].min(),
               numpy.abs(curves[2] - curves[3]).max() / curves[2].min())
print(f"largest relative difference between the curves: {relative:.1e}")
print(f"fit time, recorded / built-in: {fit_seconds['RNN(OpsLSTMCell)'] / fit_seconds['built-in LSTM']:.1f}x")
assert relative < 1e-4, relative

fig = Figure(figsize=(7, 4))
ax = fig.subplots()
epochs = numpy.arange(1, EPOCHS + 1)
for (name, history), style in zip(histories.items(), ({"lw": 5, "alpha": 0.35}, {"marker": "x", "lw": 1})):
    for key, dash, colour in (("loss", "--", "C0"), ("val_loss", "-", "C1")):
        ax.plot(epochs, history.history[key], dash, color=colour, label=f"{name} {key}", **style)
ax.set_yscale("log")
ax.set_xticks(epochs)
ax.set_xlabel("epoch")
ax.set_ylabel("MSE")
ax.set_title("The same training, hand-derived and recorded backward")
ax.legend(fontsize="small")
fig.tight_layout()
show(fig, "12_learning_curves")

# %% [markdown]
# ## One recorded time step, drawn
#
# Calling the cell on `Value`s records one node per operation. Walking the
# record from the step's outputs with `graph.topological_order` lists every
# node after the nodes of its inputs: the order of the forward pass, which
# the backward pass walks in reverse. The drawing puts each node in the column
# of its longest path from the step's inputs (left) and weights; an arrow goes
# from each input to the operation that used it.
#
# Expect 17 operations: 2 matrix products and 2 additions for $z$, 4 slices of
# $z$, 4 gate activations, 3 products and 1 sum for $c_t$, then $\tanh(c_t)$
# and the last product, $h_t$. Several values fan out: $z$ is read by four
# slices, $c_t$ is both a state and the input of $\tanh$, and $h_t$ is both the
# output and a state; backward sums their gradients.

# %%
cell = recorded.cell
x_t = graph.Value(numpy.zeros((1, 1)), name="x_t")
h_prev = graph.Value(numpy.zeros((1, H)), name="h_{t-1}")
c_prev = graph.Value(numpy.zeros((1, H)), name="c_{t-1}")
h_t, (_, c_t) = cell(x_t, [h_prev, c_prev])
nodes = graph.topological_order([h_t, c_t])
print(len(nodes), "recorded operations:", ", ".join(repr(node.op) for node in nodes))
assert len(nodes) == 17


GATE_NAMES = "ifgo"                                     # the blocks of z, in Keras's order i, f, c, o


def gate_of(node):
    """0..3 for the slice z[:, kH:(k+1)H] of gate k, None for another operation."""
    return (node.op.index[1].start or 0) // H if isinstance(node.op, ops.GetItem) else None


def label(node):
    """What a recorded operation shows in the drawing: the code of a slice, or the operator."""
    if gate_of(node) is not None:
        return ["z[:, :H]", "z[:, H:2H]", "z[:, 2H:3H]", "z[:, 3H:]"][gate_of(node)]
    return {"MatMul": "@", "Add": "+", "Multiply": "*", "sigmoid": "σ", "tanh": "tanh"}.get(repr(node.op))


def value_names(nodes, outputs):
    """The names of the equations for the values the drawing labels: z, i, f, g, o, c_t, h_t."""
    names = {id(nodes[3]): "$z$"}                            # the second addition makes z
    for node in nodes:
        source = node.inputs[0].node
        if source is not None and gate_of(source) is not None:
            names[id(node)] = f"${GATE_NAMES[gate_of(source)]}$"
    names.update({id(value.node): name for value, name in outputs})
    return names


def leaf_label(value):
    if isinstance(value, graph.Variable):
        return {"kernel": "$W$", "recurrent_kernel": "$U$", "bias": "$b$"}[value.key]
    return "$" + value.name + "$"


def layout(nodes):
    """Columns: leaves in 0, each node one right of its deepest input. Rows: each column sorted by
    the mean row of its inputs (the slices of z by gate), then centred."""
    leaves, column = [], {}
    for node in nodes:
        for value in node.inputs:
            if value.node is None and all(value is not known for known in leaves):
                leaves.append(value)
        column[id(node)] = 1 + max((column[id(v.node)] for v in node.inputs if v.node is not None), default=0)
    leaves.sort(key=lambda v: ["h_{t-1}", "recurrent_kernel", "x_t", "kernel", "bias", "c_{t-1}"].index(
        v.key if isinstance(v, graph.Variable) else v.name))
    position = {id(v): (0, -r) for r, v in enumerate(leaves)}
    for c in range(1, max(column.values()) + 1):
        members = [n for n in nodes if column[id(n)] == c]

        def row(node):
            if gate_of(node) is not None:
                return (0, 2, 1, 3)[gate_of(node)]      # rows i, g, f, o: i g and f c_{t-1} do not cross
            ys = [position[id(v.node) if v.node is not None else id(v)][1] for v in node.inputs]
            return -sum(ys) / len(ys)

        members.sort(key=row)
        centre = -(len(leaves) - 1) / 2
        for r, node in enumerate(members):
            position[id(node)] = (c, centre + (len(members) - 1) / 2 - r)
    return leaves, position


def draw_step(nodes, outputs):
    """Nodes = recorded operations, arrows = their inputs, in a layered layout."""
    leaves, position = layout(nodes)
    names = value_names(nodes, outputs)
    fig = Figure(figsize=(12, 5))
    ax = fig.subplots()
    colours = {"@": "#9ecae1", "+": "#d9d9d9", "*": "#d9d9d9", "σ": "#fdae6b", "tanh": "#fdae6b"}
    boxes = {}
    for value in leaves:
        weight = isinstance(value, graph.Variable)
        boxes[id(value)] = ax.text(*position[id(value)], leaf_label(value), ha="center", va="center",
                                   fontsize=12, bbox={"boxstyle": "round", "ec": "0.3",
                                                      "fc": "#a1d99b" if weight else "white"})
    for node in nodes:
        text = label(node)
        boxes[id(node)] = ax.text(*position[id(node)], text, ha="center", va="center", fontsize=11,
                                  bbox={"boxstyle": "round", "fc": colours.get(text, "#fee391"), "ec": "0.3"})
        if id(node) in names:
            x0, y0 = position[id(node)]
            ax.text(x0, y0 - 0.3, names[id(node)], ha="center", va="top", fontsize=12, color="C3", zorder=5,
                    bbox={"fc": "white", "ec": "none", "pad": 0.5})
    for node in nodes:
        for value in node.inputs:
            source = boxes[id(value.node) if value.node is not None else id(value)]
            ax.annotate("", xy=(0, 0.5), xycoords=boxes[id(node)], xytext=(1, 0.5), textcoords=source,
                        arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 1, "shrinkA": 3, "shrinkB": 3})
    xs = [x for x, _ in position.values()]
    ys = [y for _, y in position.values()]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.9)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.4)
    ax.axis("off")
    ax.set_title("One LSTM step as recorded: 17 operations, each with its own hand-written backward")
    fig.tight_layout()
    return fig


show(draw_step(nodes, [(h_t, "$h_t$ (output, state)"), (c_t, "$c_t$ (state)")]), "12_recorded_step")

# %% [markdown]
# Over a sequence of T = 50 steps the record holds 50 such graphs, chained by
# $h$ and $c$, plus one slice of the input per step, `x[:, t]`, and the final
# `stack` of the outputs: expect **901** recorded operations for one forward
# pass, each keeping its inputs and its cache until the backward pass
# consumes them.
#
# Counting the distinct arrays the record keeps alive (a slice of $z$ is a view
# of $z$: it costs nothing), expect about **26 H numbers per step and
# sequence**: $xW$, $hU$, their sum and $z$ (4H each), the four gates, the two
# products, $c_t$, $\tanh(c_t)$ and $h_t$ (the record keeps every value an
# operation read), and the stacked outputs. The built-in cell keeps 7H (its
# tape: $o, i, f, g, c_t, \tanh(c_t), h_t$; see the `LSTMCell` docstring), and
# reuses that memory for its backward pass.

# %%
def distinct_floats(arrays):
    """Entries of the memory behind the arrays, each buffer once (a view counts as its base)."""
    bases = {}
    for a in arrays:
        while isinstance(a.base, numpy.ndarray):
            a = a.base
        bases[id(a)] = a.size
    return sum(bases.values())


def arrays_kept(nodes, outputs):
    """The arrays the record holds: the data of every value an operation read, its cache, the outputs."""
    def walk(item):
        if isinstance(item, numpy.ndarray):
            yield item
        elif isinstance(item, graph.Value) and not isinstance(item, graph.Variable):
            yield item.data
        elif isinstance(item, (tuple, list)):
            for inner in item:
                yield from walk(inner)

    return [a for node in nodes for a in walk((node.inputs, node.cache))] + list(walk(outputs))


inputs = graph.Value(x.copy())                                          # B=32, T=50, D=1
outputs = recorded.call(inputs)
record = graph.topological_order([outputs])
print(len(record), "recorded operations for T = 50")
per_step = distinct_floats(arrays_kept(record, [outputs])) / (32 * 50 * H)
print(f"the record keeps {per_step:.1f} H numbers per step and sequence (the built-in tape: 7 H)")

# %% [markdown]
# ## The price of recording
#
# The built-in cell does in four phases what the record does in 17 T small
# steps: one matrix product projects the inputs of all T steps (phase 1),
# each forward step is one product $U^\top h_{t-1}$ and in-place gate arithmetic
# with a single `tanh` for all four gates (phase 2), the backward steps carry
# only $dh$ and $dc$ (phase 3), and one matrix product each gives the weight and
# input gradients of all steps (phase 4). The recorded cell makes a new array
# and a Python call for every operation of every step, twice (forward and
# backward), and accumulates the weight gradients one step at a time.
#
# The time of one forward and backward pass of a batch (B = 32 series of the
# course, T = 50, H = 20, float32), best of several, both measured here, now,
# in turns, in CPU time as above. Expect the recorded cell **several times
# slower** (about 8x on the project's 2-core machine; the ratio depends on
# the machine, so it is printed, not assumed).

# %%
x32 = series["train"][0][:32]                                           # float32, (32, 50, 1)
dy32 = numpy.ones((32, 50, 20), "float32")


def one_batch(layer):
    """CPU seconds for one forward and one backward pass of the batch."""
    start = time.process_time()
    layer.forward(x32, training=True)
    layer.backward(dy32)
    return time.process_time() - start


tinyrnn.set_random_seed(0)
layers = {"built-in": LSTM(20, return_sequences=True),
          "recorded": RNN(OpsLSTMCell(20), return_sequences=True)}
for layer in layers.values():
    layer.build(x32.shape)
best = dict.fromkeys(layers, math.inf)
for _ in range(REPEATS):                                  # taken in turns: a busy machine slows both alike
    for name, layer in layers.items():
        best[name] = min(best[name], one_batch(layer))
t_built_in, t_recorded = best["built-in"], best["recorded"]
print(f"built-in LSTM      {1e3 * t_built_in:7.2f} ms per batch (forward + backward)")
print(f"RNN(OpsLSTMCell)   {1e3 * t_recorded:7.2f} ms per batch")
print(f"recorded / built-in: {t_recorded / t_built_in:.1f}x")

# %% [markdown]
# ## What to remember
#
# - Recording applies the chain rule for you: each operation's backward is
#   written by hand next to its forward (`tinyrnn.ops`), and the walk in reverse
#   sums the gradients of every value used twice. The result equals the
#   hand-derived BPTT to float64 rounding.
# - Write a new idea the Keras way first: it is short, and it is right as soon
#   as its forward is. Derive it by hand when it is slow: the built-in cells
#   trade 17 T recorded calls for four phases of large matrix products.
# - A gradient check proves either kind; comparing the two proves both.
