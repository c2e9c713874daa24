"""Recurrent layers: the ``RNN`` wrapper and the cells it unrolls.

A cell owns the math of one time step, forward and backward side by side.
The ``RNN`` wrapper owns the unrolling, in four phases:

1. project the inputs of all time steps at once: XW = W^T X + b, one matrix
   product over all T*B columns (``cell.project_inputs``);
2. the forward recurrence, one ``cell.step_forward`` per time step;
3. BPTT, one ``cell.step_backward`` per step in reverse, each writing the
   gradient of that step's pre-activations into ``tape.dZ[t]``;
4. the weight and input gradients of all steps at once, from the stacked
   dZ (``cell.accumulate_grads``, ``cell.input_grad``): each is one sum over
   time and batch of outer products, i.e. one matrix product.

Layout. The layer takes (B, T, D) and returns (B, T, H) as Keras does. Inside
the recurrence arrays are time-major and *feature-major*, as in the textbook
equations written with column vectors: x_t is (D, B) and h_t is (H, B), one
column per sequence, and

    z_t = W^T x_t + U^T h_{t-1} + b          (G, B),  G = gates * H

with Keras's kernel W (D, G) and recurrent kernel U (H, G). Each gate is then
a contiguous block of H rows of z_t, which is what makes a step cheap in
NumPy: every operation of a step works on whole contiguous arrays.

The tape. ``cell.prepare(tape, T, B, dtype)`` allocates, once per forward
pass, the arrays a cell fills step by step (gate activations, cell states)
and reads in backward; the wrapper adds ``tape.H`` (T+1, H, B), where the cell
writes h_t into ``tape.H[t + 1]`` (h_0 = 0), ``tape.rec_mask`` (the
recurrent-dropout mask or None), and ``tape.H_prev`` (h_{t-1} as
the recurrent products read it, times the mask under recurrent dropout). Before BPTT, ``prepare_backward``
may compute, for all steps at once, the factors of each step's backward that
depend only on the forward pass (derivatives read from cached outputs), so
the reverse loop keeps only what truly depends on the gradient flowing back.

Writing your own cell: subclass ``RNNCell``, set ``gates`` (and
``n_states`` for more than one state), write ``step_forward`` and
``step_backward`` (see their docstrings), and ``RNN(YourCell(units))``
unrolls it with ``return_sequences``, ``return_state`` and input dropout.
For recurrent dropout, read h_{t-1} through ``self.recurrent_input(h, tape)``
where U multiplies it, and pass the gradient of that product back through
``self.recurrent_input_grad``.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

from tinyrnn import activations, backend, graph, initializers, ops, validation
from tinyrnn.layers.base import Layer, constructor_arguments, unexpected_arguments_error, unique_name
from tinyrnn.layers.core import _rate, dropout_mask
from tinyrnn.layers.normalization import layer_norm_backward, layer_norm_forward


def sum_over_time_and_batch(inputs, dZ, ones_row=False, slice_size=None, kernel=None, dX_out=None):
    """sum over t and b of v dz^T, with v the inputs stacked (and a row of ones).

    inputs: (T, k, B) arrays, stacked into v_t = [a_t; b_t; ...; 1] (K, B);
    dZ (T, G, B). Returns sum_t v_t dz_t^T, a (K, G) matrix: mathematically
    one matrix product V Z^T over all T*B columns, with V (K, TB) and Z (G, TB).
    Stacking the inputs makes one product of what would be one per input, and
    the row of ones makes its last row the bias gradient sum_t dz_t 1.

    Both operands are copied into that matrix layout (features, time, batch),
    in slices of time of at most ``slice_size`` entries of dZ, so that for a
    large layer the copies never become the peak of training memory (the
    course's small layers take one slice). The default, 2^20 entries shared by
    the ``backend.threads()`` that may run this at once, keeps that true when a
    layer's batch is split over threads.

    With ``kernel`` W (D, G) and ``dX_out`` (T, D, B), also writes the input
    gradient dx_t = W dz_t of every step into ``dX_out``, from the same copy of
    dZ: one product per slice (W Z, (D, nB)) instead of one per step, which is
    what makes it faster for a large layer (see ``one_product``).
    """
    xp = backend.xp
    T, G, B = dZ.shape
    K = sum(a.shape[1] for a in inputs) + int(ones_row)
    slice_size = slice_size or 2**20 // backend.threads()
    step = max(1, slice_size // (G * B))
    total = xp.zeros((K, G), dZ.dtype)
    for s in range(0, T, step):
        n = min(step, T - s)
        V = xp.empty((K, n, B), dZ.dtype)
        row = 0
        for a in inputs:                                                 # V rows: the stacked inputs
            V[row:row + a.shape[1]] = a[s:s + n].transpose(1, 0, 2)
            row += a.shape[1]
        if ones_row:
            V[-1] = 1
        Z = dZ[s:s + n].transpose(1, 0, 2).reshape(G, n * B)             # (G, nB): copied by reshape
        total += xp.dot(V.reshape(K, n * B), Z.T)                        # dot: less overhead than @ here
        if dX_out is not None:                                  # dx_t = W dz_t: (D, n, B) -> (n, D, B)
            dX_out[s:s + n] = xp.dot(kernel, Z).reshape(-1, n, B).transpose(1, 0, 2)
    return total


ONE_PRODUCT_MACS = 2**20
"""Multiply-adds of one step's input product (G x D x B) from which phase 1 and the input
gradient run as one matrix product over all T x B columns instead of one per step."""


def one_product(G, D, B) -> bool:
    """Whether W^T x_t (and W dz_t) for all T steps should be one matrix product.

    A step's product W^T x_t is (G, D) x (D, B). Numpy's stacked matmul makes one BLAS
    call per step, and with B = 32 columns BLAS runs well below its speed on wide
    matrices (measured on W3's (1024, 256) x (256, 32): about 100 GFLOP/s against 140
    for the same work as one (1024, 256) x (256, 3200) product). One product needs its
    operand copied into (D, T x B) layout, which costs more than it saves on the
    course's small layers ((80, 20) x (20, 32): 69 us against 39 us over 50 steps), so
    it is used from ``ONE_PRODUCT_MACS`` multiply-adds per step (W3's layers: 1-8 M).
    """
    return G * D * B >= ONE_PRODUCT_MACS


CACHE_SLICE = 2**15
"""Entries (steps x H x B) of one (n, H, B) slice in ``cache_slices``: 128 KiB of float32."""


def cache_slices(T, entries_per_step) -> list:
    """slice objects covering range(T), each of at most ``CACHE_SLICE`` entries (at least one
    step): element-wise passes over a slice find its arrays still in the core's cache. The
    course's layers (50 steps of (20, 32)) take one slice."""
    step = max(1, CACHE_SLICE // entries_per_step)
    return [slice(s, min(s + step, T)) for s in range(0, T, step)]


def columns(a, part):
    """a[..., part]: the columns (sequences) of one batch part, or None for None."""
    return None if a is None else a[..., part]


def join(arrays):
    """The batch parts' arrays side by side again (along the last axis, the batch)."""
    return arrays[0] if len(arrays) == 1 else backend.xp.concatenate(arrays, axis=-1)


def project(W, X):
    """W^T x_t for every step at once: W (D, G), X (T, D, B) -> (T, G, B).

    T matrix products (``W.T @ X`` broadcasts over t). With one input feature
    (D = 1, the course's series) each product is an outer product w x_t, and
    one broadcast multiply does all T of them: one operation instead of T.
    A large layer (``one_product``) makes them one matrix product
    W^T [x_1 ... x_T] over all T x B columns; its result, (G, T, B) in memory,
    is returned as its (T, G, B) view (step t reads G rows of B numbers).
    """
    T, D, B = X.shape
    if D == 1:
        return W.T * X
    if not one_product(W.shape[1], D, B):
        return W.T @ X
    columns_of_steps = X.transpose(1, 0, 2).reshape(D, T * B)                  # (D, TB): copied by reshape
    return backend.xp.dot(W.T, columns_of_steps).reshape(-1, T, B).transpose(1, 0, 2)


class RNNCell:
    """Base cell: kernel W (D, G), recurrent kernel U (H, G), bias b (G,).

    The phase-4 defaults below serve every cell whose pre-activation is
    z_t = W^T x_t + U^T h_{t-1} + b, so that, with dz_t = dL/dz_t (G, B),

        dW = sum_t x_t dz_t^T,   dU = sum_t h_{t-1} dz_t^T,   db = sum_t dz_t 1,
        dx_t = W dz_t,

    or, the three at once, [dW; dU; db] = sum_t [x_t; h_{t-1}; 1] dz_t^T.
    """

    gates = 1
    n_states = 1  # number of (H, B) states carried between steps; states[0] is h
    supports_recurrent_dropout = False  # True once U reads h_{t-1} through recurrent_input
    weight_names = ("kernel", "recurrent_kernel", "bias")

    def __new__(cls, *args, **kwargs):
        """Refuse a misspelled keyword as a layer does (Layer's error: the class, the closest valid one),
        before ``__init__``, so every cell, a user's included, needs no ``**kwargs`` of its own."""
        valid = constructor_arguments(cls)
        unexpected = [key for key in kwargs if key not in valid]
        if unexpected:
            layer_arguments = [n for n in RNN.argument_names() if n != "cell"]
            raise unexpected_arguments_error(cls, unexpected, valid, ("RNN", layer_arguments))
        return super().__new__(cls)

    def __init__(self, units, activation="tanh", use_bias=True, name=None, dropout=0.0,
                 recurrent_dropout=0.0):
        self.units = validation.positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.dropout = _rate(dropout)                      # Keras 3 gives the rates to the cell;
        self.recurrent_dropout = _rate(recurrent_dropout)  # its RNN draws the masks (RNN.__init__)
        self.name = name or unique_name(type(self).__name__.lower())
        self.params: dict = {}
        self.grads: dict = {}
        self.input_dim = None
        self.pool = backend.ArrayPool()  # the tape's large arrays, kept from batch to batch

    # --- parameters -------------------------------------------------------
    def build(self, input_dim: int) -> None:
        H, G = self.units, self.gates * self.units
        self.input_dim = input_dim
        self.add_param("kernel", initializers.glorot_uniform((input_dim, G)))
        self.add_param("recurrent_kernel", initializers.orthogonal((H, G)))
        if self.use_bias:
            self.add_param("bias", self.bias_init())

    def bias_init(self):
        return initializers.zeros((self.gates * self.units,))

    def add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = backend.xp.zeros_like(value)

    def part_copy(self):
        """A copy sharing this cell's parameters, with gradients of its own (zeros):
        one per batch part when a layer's batch runs on several threads."""
        twin = copy.copy(self)
        twin.grads = {name: backend.xp.zeros_like(grad) for name, grad in self.grads.items()}
        return twin

    # --- the order of z's rows ---------------------------------------------------
    def to_rows(self, a):
        """A (..., G) weight array with its columns in the order of z's rows inside the
        recurrence (``LSTMCell`` reorders its gates; the other cells keep Keras's order)."""
        return a

    def to_keras(self, a):
        """The inverse of ``to_rows``: a (..., G) gradient back in Keras's column order."""
        return a

    # --- phase 1 ------------------------------------------------------------
    def project_inputs(self, X, k=1.0):
        """XW = k (W^T X + b) for all steps at once: X (T, D, B) -> XW (T, G, B).

        k (G,) scales each row of z (``LSTMCell.row_scale``); 1 for the other cells."""
        XW = project(self.to_rows(self.params["kernel"]) * k, X)
        if self.use_bias:
            XW += (self.to_rows(self.params["bias"]) * k)[:, None]
        return XW

    # --- phases 2 and 3 -------------------------------------------------------
    def tape_array(self, tape, shape, dtype):
        """An uninitialised array for ``tape``, from the cell's pool (``backend.ArrayPool``):
        the one the last batch gave back when its backward was done (``release``)."""
        array = self.pool.empty(shape, dtype)
        tape.__dict__.setdefault("pooled", []).append(array)
        return array

    def release(self, tape) -> None:
        """Give ``tape``'s arrays (``tape_array``) back to the pool: the wrapper calls it once
        phase 4 is done with the tape."""
        self.pool.give(*tape.__dict__.pop("pooled", ()))

    def prepare(self, tape, T, B, dtype) -> None:
        """Allocate this sequence batch's buffers on ``tape`` (default: dZ only)."""
        tape.dZ = self.tape_array(tape, (T, self.gates * self.units, B), dtype)

    def step_forward(self, t, xw_t, states, tape):
        """Step t: xw_t (G, B), states list of (H, B) -> the new states.

        Writes h_t into ``tape.H[t + 1]`` (and returns it as new_states[0]);
        keeps on ``tape`` whatever ``step_backward`` will need. The new states are
        arrays of their own, never the given ones changed in place: under a mask the
        wrapper blends them with the given ones (``blend_states``).
        """
        raise NotImplementedError

    def prepare_backward(self, tape) -> None:
        """Optional: factors of every step's backward that need only the forward pass."""

    @staticmethod
    def recurrent_input(h_prev, tape):
        """h_{t-1} as the recurrent products read it: times the recurrent-dropout
        mask (``tape.rec_mask``, (H, B)) when one was drawn, as Keras applies it."""
        return h_prev if tape.rec_mask is None else h_prev * tape.rec_mask

    @staticmethod
    def recurrent_input_grad(d_input, tape):
        """The gradient through ``recurrent_input``: times the same mask."""
        return d_input if tape.rec_mask is None else d_input * tape.rec_mask

    def step_backward(self, t, dstates, tape):
        """Reverse of step t: dstates (gradients reaching the new states, each
        (H, B)) -> gradients of the previous states. Writes dL/dz_t into ``tape.dZ[t]``."""
        raise NotImplementedError

    # --- phase 4 --------------------------------------------------------------
    def accumulate_grads(self, X, tape):
        """Weight gradients of all steps at once from X (T, D, B), tape.H_prev
        (T, H, B) and tape.dZ (T, G, B)."""
        D, H = self.input_dim, self.units
        (T, G, B), W = tape.dZ.shape, self.to_rows(self.params["kernel"])
        tape.dX = backend.xp.empty((T, D, B), X.dtype) if one_product(G, D, B) else None  # see input_grad
        dWUb = self.to_keras(sum_over_time_and_batch([X, tape.H_prev], tape.dZ, ones_row=self.use_bias,
                                                     kernel=W, dX_out=tape.dX))  # (D + H [+ 1], G)
        self.grads["kernel"] += dWUb[:D]
        self.grads["recurrent_kernel"] += dWUb[D:D + H]
        if self.use_bias:
            self.grads["bias"] += dWUb[D + H]

    def input_grad(self, tape):
        """dX = W dZ for all steps at once: (T, G, B) -> (T, D, B).

        For a large layer (``one_product``) ``accumulate_grads`` has already made it,
        from its copy of dZ, into ``tape.dX``."""
        dX = getattr(tape, "dX", None)
        return self.to_rows(self.params["kernel"]) @ tape.dZ if dX is None else dX

    def get_config(self) -> dict:
        return {"units": self.units, "activation": self.activation.name, "use_bias": self.use_bias,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}

    def start_states(self, tape, states) -> list:
        """Given states (each (B, H)) as the step-0 states of ``tape`` (each (H, B)):
        h_0 goes into ``tape.H[0]``, where the backward reads h_{t-1} (``tape.H_prev``).
        (``RNN.unroll`` starts from zeros and needs none of this.)"""
        tape.H[0] = states[0].T
        return [tape.H[0], *(s.T for s in states[1:])]

    # --- Keras's cell protocol: one step as a function -------------------------
    @property
    def output_size(self) -> int:
        return self.units

    @property
    def state_size(self):
        """Keras's ``state_size``: the units of each state (an int for one state, a list for
        several), so a custom cell can say ``self.state_size = self.inner_cell.state_size``."""
        return self.units if self.n_states == 1 else [self.units] * self.n_states

    def __call__(self, inputs, states, training=None):
        """``output, new_states = cell(inputs, states)`` as in Keras: inputs (B, D),
        states a list of (B, H) -> output (B, H) and the list of new states.

        On ``Value``s (inside a custom cell's ``call()``) the step is recorded; its
        backward is this cell's own ``step_backward`` and phase 4 on one step."""
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != self.n_states:
            raise ValueError(f"{self.name}: expected {self.n_states} state(s) "
                             f"(h{', c' * (self.n_states > 1)}), got {len(states)}")
        out = graph.apply(CellStep(self), inputs, *states)
        return out[0], list(out[1:])


class CellStep:
    """One step of a built-in cell as an operation of ``tinyrnn.graph``: the four
    phases on T = 1, with the given states instead of zeros.

    forward(x (B, D), h (B, H)[, c]) -> (output, h_t[, c_t]) (the output is h_t);
    backward sums the gradients reaching the output and h_t, runs ``step_backward``,
    then the weight gradients (``accumulate_grads``) and dx (``input_grad``)."""

    def __init__(self, cell):
        self.cell = cell

    def forward(self, x, *states):
        cell, xp = self.cell, backend.xp
        if cell.input_dim is None:
            cell.build(x.shape[-1])
        B = x.shape[0]
        tape = SimpleNamespace(H=xp.empty((2, cell.units, B), x.dtype), rec_mask=None)
        cell.prepare(tape, 1, B, x.dtype)
        X = x.T[None]                                                   # (1, D, B)
        new = cell.step_forward(0, cell.project_inputs(X)[0], cell.start_states(tape, states), tape)
        outputs = [new[0].T.copy(), *(s.T.copy() for s in new)]         # output = h_t, then the states
        return tuple(outputs), (X, tape)

    def backward(self, douts, cache):
        X, tape = cache
        cell, xp = self.cell, backend.xp
        d_out, *d_states = [xp.zeros((X.shape[2], cell.units), X.dtype) if d is None else d for d in douts]
        tape.H_prev = tape.H[:-1]
        cell.prepare_backward(tape)
        dh = xp.ascontiguousarray((d_out + d_states[0]).T)              # the output is h_t: both paths
        d_prev = cell.step_backward(0, [dh, *(xp.ascontiguousarray(d.T) for d in d_states[1:])], tape)
        cell.accumulate_grads(X, tape)                                  # phase 4 on one step
        return (cell.input_grad(tape)[0].T, *(d.T for d in d_prev))

    def __repr__(self):
        return f"{self.cell.name} step"


class SimpleRNNCell(RNNCell):
    """Elman cell.

    Forward:   z_t = W^T x_t + U^T h_{t-1} + b,    h_t = f(z_t)        (f = tanh)
    Backward:  dz_t = dh_t * f'(z_t)                (f' read from h_t, for all t at once)
               dh_{t-1} = U dz_t
    """

    supports_recurrent_dropout = True

    def step_forward(self, t, xw_t, states, tape):
        h_in = self.recurrent_input(states[0], tape)                  # h_{t-1}, after recurrent dropout
        z = xw_t + self.params["recurrent_kernel"].T @ h_in           # (H, B)
        return [self.activation.forward(z, out=tape.H[t + 1])]       # h_t = f(z_t)

    def prepare_backward(self, tape):
        tape.dh_dz = self.activation.derivative(tape.H[1:])          # f'(z_t), (T, H, B)

    def step_backward(self, t, dstates, tape):
        dz = backend.xp.multiply(dstates[0], tape.dh_dz[t], out=tape.dZ[t])  # dL/dz = dL/dh f'(z)
        return [self.recurrent_input_grad(self.params["recurrent_kernel"] @ dz, tape)]  # dz/dh = U^T


class LSTMCell(RNNCell):
    """Long short-term memory cell; its weights in Keras's gate order i, f, c, o.

    Forward (s = sigmoid, the recurrent activation; g_act = tanh):
        z = W^T x_t + U^T h_{t-1} + b                (4H, B): row blocks z_o z_i z_f z_c
        o = s(z_o)   i = s(z_i)   f = s(z_f)   g = g_act(z_c)
        c_t = f * c_{t-1} + i * g
        h_t = o * g_act(c_t)
    Backward (dh, dc: the gradients reaching h_t and c_t from above and from later steps):
        dc   = dc + dh * o * g_act'(c_t)
        dz_o = dh * g_act(c_t) * s'(z_o)
        dz_i = dc * g * s'(z_i)      dz_f = dc * c_{t-1} * s'(z_f)      dz_c = dc * i * g_act'(z_c)
        dc_{t-1} = dc * f            dh_{t-1} = U dz
    Inside the recurrence z's rows are in the order o, i, f, g (``ROW_BLOCKS``), not
    Keras's i, f, c, o: the three sigmoid gates side by side, so one operation serves
    all three, and the three blocks that backward multiplies by dc (i, f, g) side by
    side too. ``to_rows`` puts W, U and b in that order for a pass and ``to_keras`` the
    gradients back in Keras's.

    Every factor that multiplies dc or dh above depends only on the forward
    pass: ``prepare_backward`` computes them for all steps at once, in place of
    the gate activations they come from (tape.S becomes tape.dZ), and a reverse
    step multiplies step t's factors by dc and dh, again in place, giving dz_t.
    The tape so holds 7H numbers per step and sequence: o, i, f, g, c_t,
    g_act(c_t), h_t, which is what BPTT through an LSTM must keep.
    """

    supports_recurrent_dropout = True

    gates = 4
    n_states = 2
    ROW_BLOCKS = (3, 0, 1, 2)  # z's row blocks o, i, f, g are Keras's gate blocks 3, 0, 1, 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, unit_forget_bias=True, name=None, dropout=0.0, recurrent_dropout=0.0):
        super().__init__(units, activation=activation, use_bias=use_bias, name=name, dropout=dropout,
                         recurrent_dropout=recurrent_dropout)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        H = self.units
        self._rows = [k for block in self.ROW_BLOCKS for k in range(block * H, (block + 1) * H)]
        self._keras = sorted(range(4 * H), key=self._rows.__getitem__)  # the inverse permutation

    def bias_init(self):
        b = initializers.zeros((4 * self.units,))
        if self.unit_forget_bias:
            b[self.units:2 * self.units] = 1.0  # forget gate open at the start
        return b

    def to_rows(self, a):
        return a[..., self._rows]

    def to_keras(self, a):
        return a[..., self._keras]

    def blocks(self, A):
        """The row blocks o, i, f, g of A (..., 4H, B), as views."""
        H = self.units
        return A[..., :H, :], A[..., H:2 * H, :], A[..., 2 * H:3 * H, :], A[..., 3 * H:, :]

    @property
    def tanh_gates(self):
        """True for the default activations (sigmoid gates, tanh candidate): one tanh gives all four."""
        return (self.recurrent_activation.name, self.activation.name) == ("sigmoid", "tanh")

    def row_scale(self, dtype):
        """k (4H,): how ``tanh_gates`` scales each row of z (1 everywhere otherwise).

        s(z) = (1 + tanh(z / 2)) / 2, so with k = 1/2 on the rows of o, i, f and 1 on
        the candidate's rows, one tanh of k z gives every gate: g, and on the other
        rows tanh(z / 2), from which s(z) is one multiply and one add away.
        """
        k = backend.xp.ones(4 * self.units, dtype)
        if self.tanh_gates:
            k[:3 * self.units] = 0.5
        return k

    def project_inputs(self, X):
        """Phase 1 with the rows scaled by k (``row_scale``): k (W^T X + b), (T, 4H, B)."""
        return super().project_inputs(X, self.row_scale(X.dtype))

    def prepare(self, tape, T, B, dtype):
        xp, H = backend.xp, self.units
        tape.S = self.tape_array(tape, (T, 4 * H, B), dtype)   # row blocks o, i, f, g of every step
        tape.C = self.tape_array(tape, (T + 1, H, B), dtype)   # C[t + 1] = c_t, C[0] = c_0 = 0
        tape.C[0] = 0
        tape.TC = self.tape_array(tape, (T, H, B), dtype)      # g_act(c_t)
        tape.kU_T = (self.to_rows(self.params["recurrent_kernel"]) * self.row_scale(dtype)).T  # (4H, H)
        tape.half = xp.full((), 0.5, dtype)           # 1/2 as an array: NumPy takes it faster than 0.5
        tape.ig = xp.empty((H, B), dtype)             # i g, and in backward dc and dc_{t-1}:
        tape.dc, tape.dc_prev = xp.empty((2, H, B), dtype)  # buffers reused by every step

    def step_forward(self, t, xw_t, states, tape):
        h_prev, c_prev = states
        xp = backend.xp
        S = xp.dot(tape.kU_T, self.recurrent_input(h_prev, tape), out=tape.S[t])     # k U^T h_{t-1}
        S += xw_t                                                    # k z, (4H, B)
        o, i, f, g = self.gate_activations(S, tape.half)             # in place: S holds o, i, f, g
        c = xp.multiply(f, c_prev, out=tape.C[t + 1])                # c_t = f c_{t-1} + i g
        c += xp.multiply(i, g, out=tape.ig)
        tanh_c = self.activation.forward(c, out=tape.TC[t])
        return [xp.multiply(o, tanh_c, out=tape.H[t + 1]), c]        # h_t = o g_act(c_t)

    def start_states(self, tape, states):
        """h_0 into tape.H[0] and c_0 into tape.C[0]: the backward reads c_{t-1} there (dz_f)."""
        tape.H[0], tape.C[0] = states[0].T, states[1].T
        return [tape.H[0], tape.C[0]]

    def gate_activations(self, S, half):
        """k z (4H, B) -> the gate blocks o, i, f, g, computed in place in S.

        ``half`` is 1/2 as a 0-d array of S's dtype (``tape.half``)."""
        H, xp = self.units, backend.xp
        sigmoid_rows = S[:3 * H]                                     # o, i, f
        if self.tanh_gates:
            xp.tanh(S, out=S)                                        # g, and tanh(z / 2) on o, i, f
            sigmoid_rows *= half
            sigmoid_rows += half                                     # s(z) = (1 + tanh(z / 2)) / 2
        else:                                                        # k = 1: S holds z
            self.recurrent_activation.forward(sigmoid_rows, out=sigmoid_rows)
            self.activation.forward(S[3 * H:], out=S[3 * H:])
        return self.blocks(S)

    def prepare_backward(self, tape):
        """The factors of every reverse step, in place of the gates (see the class).

        Computed in slices of time (``cache_slices``): a large layer's whole arrays
        (W3: 100 steps of (256, 32) blocks, 3.2 MB each) do not fit in a core's
        cache, and each of the dozen passes below would read and write memory again.
        """
        T, H = tape.S.shape[0], self.units
        tape.f = self.tape_array(tape, tape.TC.shape, tape.TC.dtype)      # dc_{t-1} = dc * f, every step
        tape.dc_dh = self.tape_array(tape, tape.TC.shape, tape.TC.dtype)
        for s in cache_slices(T, tape.TC[0].size):
            self._backward_factors(tape.S[s], tape.TC[s], tape.C[s], tape.f[s], tape.dc_dh[s])
        tape.dZ, tape.TC = tape.S, None               # step t's factors become dz_t in place
        tape.dZ_o, tape.dZ_ifg = tape.dZ[:, :H], tape.dZ[:, H:].reshape(T, 3, H, -1)  # blocks o; i, f, g
        tape.U = self.to_rows(self.params["recurrent_kernel"])  # (H, 4H), its columns in z's row order

    def _backward_factors(self, S, tanh_c, c_prev, f_out, dc_dh):
        """prepare_backward on some steps: S (n, 4H, B) the gates -> the factors, in place;
        tanh_c, c_prev (n, H, B) g_act(c_t) and c_{t-1}; writes f and dc/dh into f_out, dc_dh."""
        xp = backend.xp
        o, i, f, g = self.blocks(S)
        ds, dact = self.recurrent_activation.derivative, self.activation.derivative
        f_out[...] = f
        xp.multiply(dact(tanh_c), o, out=dc_dh)      # dc += dh * o g_act'(c_t)
        xp.multiply(ds(o), tanh_c, out=o)             # dz_o = dh * g_act(c_t) s'(z_o)
        dz_c_dc = dact(g)
        dz_c_dc *= i                                  # dz_c = dc * i g_act'(z_c)
        xp.multiply(ds(i), g, out=i)                  # dz_i = dc * g s'(z_i)
        g[...] = dz_c_dc
        xp.multiply(ds(f), c_prev, out=f)             # dz_f = dc * c_{t-1} s'(z_f)

    def step_backward(self, t, dstates, tape):
        dh, dc_next = dstates
        xp = backend.xp
        dc = xp.multiply(dh, tape.dc_dh[t], out=tape.dc)             # all paths into c_t
        dc += dc_next
        tape.dZ_o[t] *= dh                                            # dz_o: step t's factor times dh
        dz_ifg = tape.dZ_ifg[t]                                       # (3, H, B): the factors of i, f, g
        xp.multiply(dz_ifg, dc, out=dz_ifg)                           # dz_i, dz_f, dz_c
        dz = tape.dZ[t]                                               # (4H, B)
        dh_prev = self.recurrent_input_grad(tape.U.dot(dz), tape)    # U dz, (H, B)
        return [dh_prev, xp.multiply(dc, tape.f[t], out=tape.dc_prev)]  # dc_t/dc_{t-1} = f

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation.name,
                "unit_forget_bias": self.unit_forget_bias}


class PeepholeLSTMCell(LSTMCell):
    """LSTM whose gates also look at the cell state (Gers and Schmidhuber).

    Forward, with diagonal peephole weights p_i, p_f, p_o (each (H,)):
        z = W^T x_t + U^T h_{t-1} + b
        i = s(z_i + p_i * c_{t-1})   f = s(z_f + p_f * c_{t-1})   g = tanh(z_c)
        c_t = f * c_{t-1} + i * g
        o = s(z_o + p_o * c_t)       h_t = o * tanh(c_t)
    Backward: as LSTM, plus the peephole paths
        dc_t     += dz_o * p_o
        dc_{t-1}  = dc_t * f + dz_i * p_i + dz_f * p_f
        dp_i = sum dz_i * c_{t-1}   dp_f = sum dz_f * c_{t-1}   dp_o = sum dz_o * c_t
    (the peephole gradients are summed over all steps at once, in phase 4).
    """

    tanh_gates = False  # the peepholes add to z after the projection: z stays unscaled (k = 1)
    weight_names = ("kernel", "recurrent_kernel", "bias", "input_gate_peephole_weights",
                    "forget_gate_peephole_weights", "output_gate_peephole_weights")

    def build(self, input_dim):
        super().build(input_dim)
        for name in self.weight_names[3:]:
            self.add_param(name, initializers.glorot_uniform((1, self.units))[0])

    def _peepholes(self):
        p = self.params
        return (p["input_gate_peephole_weights"][:, None], p["forget_gate_peephole_weights"][:, None],
                p["output_gate_peephole_weights"][:, None])                  # each (H, 1)

    def step_forward(self, t, xw_t, states, tape):
        h_prev, c_prev = states
        xp, sig = backend.xp, self.recurrent_activation
        p_i, p_f, p_o = self._peepholes()
        z_o, z_i, z_f, z_c = self.blocks(xw_t + tape.kU_T @ self.recurrent_input(h_prev, tape))  # (4H, B)
        o, i, f, g = self.blocks(tape.S[t])
        sig.forward(z_i + p_i * c_prev, out=i)
        sig.forward(z_f + p_f * c_prev, out=f)
        self.activation.forward(z_c, out=g)
        c = xp.multiply(f, c_prev, out=tape.C[t + 1])
        c += i * g
        sig.forward(z_o + p_o * c, out=o)
        tanh_c = self.activation.forward(c, out=tape.TC[t])
        return [xp.multiply(o, tanh_c, out=tape.H[t + 1]), c]

    def step_backward(self, t, dstates, tape):
        dh, dc_next = dstates
        p_i, p_f, p_o = self._peepholes()
        dz = tape.dZ[t]                                                       # the factors of step t
        dz_o, dz_i, dz_f, _ = self.blocks(dz)
        dz_o *= dh
        dc = dc_next + dh * tape.dc_dh[t] + dz_o * p_o                        # + the o peephole
        tape.dZ_ifg[t] *= dc                                                  # dz_i, dz_f, dz_c
        dc_prev = dc * tape.f[t] + dz_i * p_i + dz_f * p_f                    # + the i, f peepholes
        return [self.recurrent_input_grad(tape.U @ dz, tape), dc_prev]

    def accumulate_grads(self, X, tape):
        super().accumulate_grads(X, tape)
        C = tape.C
        dz_o, dz_i, dz_f, _ = self.blocks(tape.dZ)
        self.grads["input_gate_peephole_weights"] += (dz_i * C[:-1]).sum(axis=(0, 2))
        self.grads["forget_gate_peephole_weights"] += (dz_f * C[:-1]).sum(axis=(0, 2))
        self.grads["output_gate_peephole_weights"] += (dz_o * C[1:]).sum(axis=(0, 2))


class GRUCell(RNNCell):
    """Gated recurrent unit, Keras gate order z (update), r (reset), h (candidate).

    reset_after=True (Keras's default, cuDNN's and PyTorch's form); bias (2, 3H)
    holds the input bias b_x and the recurrent bias b_h:
        xw = W^T x_t + b_x         rec = U^T h_{t-1} + b_h           (each (3H, B))
        z = s(xw_z + rec_z)   r = s(xw_r + rec_r)
        n = tanh(xw_h + r * rec_h)
        h_t = z * h_{t-1} + (1 - z) * n
    reset_after=False (the original GRU); bias (3H,):
        z = s(xw_z + U_z^T h_{t-1})   r = s(xw_r + U_r^T h_{t-1})
        n = tanh(xw_h + U_h^T (r * h_{t-1}))
        h_t = z * h_{t-1} + (1 - z) * n
    Backward (s' and tanh' read from z, r, n):
        dz_z = dh (h_{t-1} - n) s'(z)          dz_h = dh (1 - z) tanh'(n)
        after:  dz_r = dz_h rec_h s'(r)        d rec_h = dz_h r
                dh_{t-1} = dh z + U [dz_z; dz_r; d rec_h]
        before: d(r h) = U_h dz_h              dz_r = d(r h) h_{t-1} s'(r)
                dh_{t-1} = dh z + d(r h) r + U_zr [dz_z; dz_r]
    With reset_after every row of dz_t is dh times a forward-only factor, so a
    reverse step is one product, one matrix product and two updates. tape.dZ
    rows are [z, r, rec_h, h] (reset_after) or [z, r, h].
    """

    supports_recurrent_dropout = True

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, reset_after=True, name=None, dropout=0.0, recurrent_dropout=0.0):
        super().__init__(units, activation=activation, use_bias=use_bias, name=name, dropout=dropout,
                         recurrent_dropout=recurrent_dropout)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after

    def bias_init(self):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return initializers.zeros(shape)

    def project_inputs(self, X):
        """XW = W^T x_t + b_x for every step (T, G, B), with (reset_after) the recurrent
        biases of z and r added too: they sit outside r's product, so adding b_h[z, r]
        once here spares a step one addition. Only b_h[h] stays with U^T h_{t-1}."""
        XW = project(self.params["kernel"], X)
        if self.use_bias:
            bias = self.params["bias"]
            if self.reset_after:
                H = self.units
                XW[:, :2 * H] += (bias[0, :2 * H] + bias[1, :2 * H])[:, None]
                XW[:, 2 * H:] += bias[0, 2 * H:][:, None]
            else:
                XW += bias[:, None]
        return XW

    def prepare(self, tape, T, B, dtype):
        xp, H = backend.xp, self.units
        tape.dZ = self.tape_array(tape, (T, (4 if self.reset_after else 3) * H, B), dtype)
        tape.S = self.tape_array(tape, (T, 2 * H, B), dtype)   # [z; r]
        tape.N = self.tape_array(tape, (T, H, B), dtype)       # candidate n
        tape.R = self.tape_array(tape, (T, H, B), dtype)       # rec_h (after) or r * h_{t-1} (before)
        tape.rec = xp.empty((3 * H, B), dtype)        # a step's U^T h_{t-1}, overwritten every step
        tape.U_T = xp.ascontiguousarray(self.params["recurrent_kernel"].T)  # (3H, H): BLAS reads it faster
        if self.reset_after and self.use_bias:
            tape.b_rec_h = self.params["bias"][1, 2 * H:, None]             # (H, 1)

    def step_forward(self, t, xw_t, states, tape):
        """One step, every operation in place into the tape (no temporary arrays):
        xw_t already holds b_x and (reset_after) b_h[z, r]."""
        h_prev, H, xp = states[0], self.units, backend.xp
        U_T, sig, rec = tape.U_T, self.recurrent_activation, tape.rec
        h_in = self.recurrent_input(h_prev, tape)                           # what U multiplies
        if self.reset_after:
            xp.matmul(U_T, h_in, out=rec)                                   # U^T h_{t-1}, (3H, B)
            zr = sig.forward(xp.add(xw_t[:2 * H], rec[:2 * H], out=tape.S[t]), out=tape.S[t])  # [z; r]
            rec_h = tape.R[t]                                               # U_h^T h_{t-1} + b_h[h]
            if self.use_bias:
                xp.add(rec[2 * H:], tape.b_rec_h, out=rec_h)
            else:
                rec_h[...] = rec[2 * H:]
            n_pre = xp.multiply(zr[H:], rec_h, out=rec[2 * H:])            # r * rec_h (rec's rows reused)
        else:
            xp.matmul(U_T[:2 * H], h_in, out=rec[:2 * H])
            zr = sig.forward(xp.add(xw_t[:2 * H], rec[:2 * H], out=tape.S[t]), out=tape.S[t])
            rh = xp.multiply(zr[H:], h_in, out=tape.R[t])                   # r * h_{t-1}
            n_pre = xp.matmul(U_T[2 * H:], rh, out=rec[2 * H:])
        n_pre += xw_t[2 * H:]
        n = self.activation.forward(n_pre, out=tape.N[t])
        z = zr[:H]
        h = xp.subtract(h_prev, n, out=tape.H[t + 1])                       # h_t = n + z (h_{t-1} - n)
        h *= z
        h += n
        return [h]

    def prepare_backward(self, tape):
        H, xp, S, n, h_prev = self.units, backend.xp, tape.S, tape.N, tape.H[:-1]  # the carry's h_{t-1}
        z, r = S[:, :H], S[:, H:]
        ds = self.recurrent_activation.derivative
        T, B = n.shape[0], n.shape[2]
        tape.z = z
        if self.reset_after and self._standard_activations():
            # the same factors, written in place (s' = s (1 - s), tanh' = 1 - n^2):
            #   rows z: (h_{t-1} - n) z (1 - z)   r: dn rec_h r (1 - r)   rec_h: dn r   h: dn,
            # with dn = (1 - z)(1 - n^2); one temporary, 1 - z
            tape.dZ_dh = F = self.tape_array(tape, (T, 4, H, B), n.dtype)   # rows z, r, rec_h, h
            one_minus_z = xp.subtract(1.0, z)
            dn = xp.multiply(n, n, out=F[:, 3])
            xp.subtract(1.0, dn, out=dn)
            dn *= one_minus_z                                                # dz_h = dh * dn
            xp.subtract(h_prev, n, out=F[:, 0])
            F[:, 0] *= z
            F[:, 0] *= one_minus_z
            xp.multiply(dn, r, out=F[:, 2])
            xp.subtract(1.0, r, out=F[:, 1])
            F[:, 1] *= F[:, 2]
            F[:, 1] *= tape.R
            return
        dn = (1.0 - z) * self.activation.derivative(n)                      # dz_h = dh * dn
        if self.reset_after:
            tape.dZ_dh = xp.empty((T, 4, H, B), n.dtype)                    # rows z, r, rec_h, h
            tape.dZ_dh[:, 0] = (h_prev - n) * ds(z)
            tape.dZ_dh[:, 1] = dn * tape.R * ds(r)
            tape.dZ_dh[:, 2] = dn * r
            tape.dZ_dh[:, 3] = dn
        else:
            tape.dz_z_dh = (h_prev - n) * ds(z)
            tape.dn = dn
            tape.dr_drh = tape.H_prev * ds(r)                               # h_{t-1} as U read it
            tape.r = r

    def _standard_activations(self):
        """True for tanh and sigmoid, whose derivatives ``prepare_backward`` writes in place."""
        return (isinstance(self.activation, activations.Tanh)
                and isinstance(self.recurrent_activation, activations.Sigmoid))

    def step_backward(self, t, dstates, tape):
        dh, H, xp = dstates[0], self.units, backend.xp
        U, dz = self.params["recurrent_kernel"], tape.dZ[t]
        if self.reset_after:
            xp.multiply(tape.dZ_dh[t], dh, out=dz.reshape(4, H, -1))        # every row: dh * factor
            dh_prev = self.recurrent_input_grad(U @ dz[:3 * H], tape)        # through rec = U^T h
        else:
            xp.multiply(tape.dz_z_dh[t], dh, out=dz[:H])                    # dz_z
            xp.multiply(tape.dn[t], dh, out=dz[2 * H:])                      # dz_h
            d_rh = U[:, 2 * H:] @ dz[2 * H:]                                 # grad of r * h_{t-1}
            xp.multiply(d_rh, tape.dr_drh[t], out=dz[H:2 * H])               # dz_r
            dh_prev = self.recurrent_input_grad(U[:, :2 * H] @ dz[:2 * H] + d_rh * tape.r[t], tape)
        dh_prev += dh * tape.z[t]                                            # direct path: dh/dh_{t-1} = z
        return [dh_prev]

    def accumulate_grads(self, X, tape):
        D, H, grads = self.input_dim, self.units, self.grads
        g_kernel, g_rec = grads["kernel"], grads["recurrent_kernel"]
        if self.reset_after:                  # dZ rows z, r, rec_h, h: x feeds z, r, h; h feeds z, r, rec_h
            # two products, each over only the rows its input feeds (h_{t-1} never meets the h
            # rows): measured about twice as fast here as one product of the stacked [x; h; 1]
            M = sum_over_time_and_batch([X], tape.dZ, ones_row=self.use_bias)          # (D [+ 1], 4H)
            g_kernel[:, :2 * H] += M[:D, :2 * H]
            g_kernel[:, 2 * H:] += M[:D, 3 * H:]
            g_rec += sum_over_time_and_batch([tape.H_prev], tape.dZ[:, :3 * H])        # (H, 3H)
            if self.use_bias:
                grads["bias"][0, :2 * H] += M[-1, :2 * H]
                grads["bias"][0, 2 * H:] += M[-1, 3 * H:]
                grads["bias"][1] += M[-1, :3 * H]
        else:                                 # dZ rows z, r, h: U_z, U_r see h_{t-1}, U_h sees r * h
            M = sum_over_time_and_batch([X, tape.H_prev, tape.R], tape.dZ, ones_row=self.use_bias)
            g_kernel += M[:D]
            g_rec[:, :2 * H] += M[D:D + H, :2 * H]
            g_rec[:, 2 * H:] += M[D + H:D + 2 * H, 2 * H:]
            if self.use_bias:
                grads["bias"] += M[-1]

    def input_grad(self, tape):
        W, dZ, H = self.params["kernel"], tape.dZ, self.units
        if not self.reset_after:
            return W @ dZ
        return W[:, :2 * H] @ dZ[:, :2 * H] + W[:, 2 * H:] @ dZ[:, 3 * H:]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation.name,
                "reset_after": self.reset_after}


class LNSimpleRNNCell(RNNCell):
    """SimpleRNN cell with layer normalisation before the activation (the
    course's ``LNSimpleRNNCell``): a SimpleRNN cell with no activation, then
    LayerNormalization, then the activation.

    Forward:   z_t = W^T x_t + U^T h_{t-1} + b
               n_t = gamma * (z_t - mu_t) / sqrt(var_t + eps) + beta      (over the H units)
               h_t = f(n_t)
    Backward:  dn_t = dh_t * f'(n_t)                   (f' read from h_t)
               dz_t = layer-norm backward of dn_t      (see layers.normalization)
               dgamma += sum dn_t * n_hat_t,  dbeta += sum dn_t,  dh_{t-1} = U dz_t
    Weights (Keras order): kernel, recurrent_kernel, bias, gamma, beta.
    """

    supports_recurrent_dropout = True

    weight_names = ("kernel", "recurrent_kernel", "bias", "gamma", "beta")

    def __init__(self, units, activation="tanh", epsilon=1e-3, name=None, dropout=0.0, recurrent_dropout=0.0):
        super().__init__(units, activation=activation, name=name, dropout=dropout,
                         recurrent_dropout=recurrent_dropout)
        self.epsilon = float(epsilon)

    def build(self, input_dim):
        super().build(input_dim)
        self.add_param("gamma", initializers.ones((self.units,)))
        self.add_param("beta", initializers.zeros((self.units,)))

    def prepare(self, tape, T, B, dtype):
        super().prepare(tape, T, B, dtype)
        tape.ln = [None] * T

    def _gain_and_shift(self):
        return self.params["gamma"][:, None], self.params["beta"][:, None]       # (H, 1) each

    def step_forward(self, t, xw_t, states, tape):
        z = xw_t + self.params["recurrent_kernel"].T @ self.recurrent_input(states[0], tape)  # (H, B)
        gamma, beta = self._gain_and_shift()
        n, tape.ln[t] = layer_norm_forward(z, gamma, beta, self.epsilon, axis=0)  # over the H units
        return [self.activation.forward(n, out=tape.H[t + 1])]

    def step_backward(self, t, dstates, tape):
        dn = self.activation.backward(tape.H[t + 1], dstates[0])                   # through f
        dz, dgamma, dbeta = layer_norm_backward(dn, tape.ln[t], self._gain_and_shift()[0], axis=0)
        self.grads["gamma"] += dgamma
        self.grads["beta"] += dbeta
        tape.dZ[t] = dz
        return [self.recurrent_input_grad(self.params["recurrent_kernel"] @ dz, tape)]

    def get_config(self):
        return {"units": self.units, "activation": self.activation.name, "epsilon": self.epsilon,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}


def blend_states(new_states, states, skip_t) -> None:
    """A masked step carries every state unchanged: for each state s (H, B), in place,

        s_t = m_t s_new + (1 - m_t) s_{t-1}          (m_t = 1 where step t counts, else 0)

    ``skip_t`` (1, B) is 1 - m_t as bools, so the blend copies s_{t-1} into the masked
    columns of s_new. The cell's tape holds the blend (h_t in ``tape.H[t + 1]``, c_t in
    ``tape.C[t + 1]``), which is what the next step and the backward read as the state
    before step t + 1; the cell's own values of a masked step are never needed, since
    BPTT gives that step a zero gradient (``RNN.backprop``: m to the step, 1 - m past it).
    """
    for new, old in zip(new_states, states):
        backend.xp.copyto(new, old, where=skip_t)


class RNN(Layer):
    """Unroll a cell over time: (B, T, D) -> (B, T, H) or (B, H).

    Arguments as Keras: ``return_sequences`` (all h_t, else the last),
    ``return_state`` (also return the final states: [y, h_T] or [y, h_T, c_T]),
    ``dropout`` (a mask on the inputs) and ``recurrent_dropout`` (a mask on
    h_{t-1} where the recurrent products read it: ``RNNCell.recurrent_input``;
    a GRU's carry z * h_{t-1} keeps the unmasked state, as in Keras), one mask
    per sequence reused at every time step, inverted scaling, drawn only when
    ``training``.

    Initial states (encoder-decoder): ``layer(x, initial_state=[h_0, c_0])``
    (each (B, H); h, then c for an LSTM), on arrays or on functional ``Value``s,
    or ``forward([x, h_0, c_0])``; ``backward`` then returns
    ``[dx, dh_0, dc_0]``, the gradients BPTT carries past step 1.

    ``stateful=True``: the final states of a batch are the initial states of
    the next, row b continuing row b, so a long sequence can be fed as
    consecutive windows. They are kept as constants (copies): the gradient
    stops at the batch boundary, which is truncated BPTT. The batch size is
    then fixed, as in Keras: ``batch_size=B`` / ``batch_input_shape=[B, T, D]``
    on the layer, ``tinyrnn.Input(shape, batch_size=B)``, else the first
    batch's; another size is an error. Every forward pass carries the states,
    ``fit``, ``evaluate`` and ``predict`` alike (as in Keras);
    ``reset_states()`` (or ``model.reset_states()``) starts again from zeros.

    Masking (padded sequences): ``forward(x, mask=m)``, m (B, T) bool, True where a step
    counts. A masked step carries every state unchanged (``blend_states``); the output
    there repeats the last one (0 before any step counted), or is 0 with
    ``zero_output_for_mask=True``, as in Keras 3; BPTT splits the gradient of a blended
    state, m to the cell's step and 1 - m past it. ``compute_mask`` passes the mask on
    with ``return_sequences``. ``go_backwards=True`` reads the sequence (and the mask)
    from its end and returns the outputs in that order, as Keras.

    After ``backward``, ``hidden_grad_norms`` (T,) holds ||dL/dh_t|| at each
    step: the gradient reaching the hidden state, for vanishing-gradient plots.

    A cell written in Keras's cell protocol (a ``Layer`` with ``state_size``,
    ``output_size`` and ``call(inputs, states) -> (output, new_states)``) is
    unrolled by ``call``: every step is recorded and BPTT walks the record
    (``tinyrnn.graph``), calling the hand-written backward of each piece the
    cell used. The built-in cells take the four phases above.
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 dropout=0.0, recurrent_dropout=0.0, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.recorded = not isinstance(cell, RNNCell)
        if self.recorded:
            _check_keras_cell(cell, dropout, recurrent_dropout)
            self.units = _first_size(cell.output_size if hasattr(cell, "output_size") else cell.state_size)
        else:
            self.units = cell.units
            dropout, recurrent_dropout = dropout or cell.dropout, recurrent_dropout or cell.recurrent_dropout
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states = None              # stateful: the states the next batch starts from, each (B, H)
        self.dropout = _rate(dropout)
        self.recurrent_dropout = _rate(recurrent_dropout)
        if self.recurrent_dropout and not self.recorded and not cell.supports_recurrent_dropout:
            raise ValueError(
                f"{type(cell).__name__} does not support recurrent_dropout: read h_{{t-1}} through "
                "self.recurrent_input(h, tape) where U multiplies it, pass that product's gradient "
                "through self.recurrent_input_grad, and set supports_recurrent_dropout = True"
            )
        if not self.recorded:
            self.params, self.grads = cell.params, cell.grads
            self.weight_names = cell.weight_names
        self._hidden_grad_norms = None

    def __call__(self, inputs, *args, initial_state=None, training=None, **kwargs):
        """``layer(x)``, or ``layer(x, initial_state=[h_0, c_0])``: the layer then runs on
        ``[x, h_0, c_0]`` (so on functional ``Value``s the states are inputs of the graph)."""
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            inputs = [inputs, *states]
        return super().__call__(inputs, *args, training=training, **kwargs)

    def build(self, input_shape):
        input_shape, state_shapes = _split_shapes(input_shape)
        declared = self.input_shape                      # from input_shape= at construction, or None
        if declared is not None and len(declared) != 3:
            raise ValueError(
                f"{self.name}: the mistake is input_shape={list(declared[1:])}: "
                "a recurrent layer's input_shape is [T, D] (time steps, features per step; no batch axis), "
                "for example input_shape=[None, 1] for a univariate series of any length"
            )
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.name}: recurrent layers expect inputs (B, T, D), got shape {tuple(input_shape)}; "
                "reshape a (B, T) series with x[..., None]"
            )
        self._check_initial_states(input_shape, state_shapes)
        if not self.recorded:
            self.cell.build(input_shape[-1])
        elif not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
            self.cell.built = True
        if self.stateful and self.batch_size is None and input_shape[0] is not None:
            self.batch_size = int(input_shape[0])        # Input(shape, batch_size=B) fixes it
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        input_shape, state_shapes = _split_shapes(input_shape)
        self._check_initial_states(input_shape, state_shapes)
        B, T = input_shape[0], input_shape[1]
        y = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [y] + [(B, n) for n in self._state_sizes()]
        return y

    def compute_mask(self, inputs, mask=None):
        """Keras's: the mask goes on with the sequence (``return_sequences``), else stops;
        with ``return_state`` a list, None for every state."""
        mask = mask[0] if isinstance(mask, (list, tuple)) else mask      # x's, not the states'
        out = mask if self.return_sequences else None
        return [out] + [None] * len(self._state_sizes()) if self.return_state else out

    def _state_sizes(self) -> list:
        if not self.recorded:
            return [self.units] * self.cell.n_states
        sizes = self.cell.state_size
        return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]

    # --- initial states, given or carried (stateful) ---------------------------------
    def _split_inputs(self, inputs):
        """x, or [x, *initial_states] -> (x, the list of initial states or None)."""
        if not isinstance(inputs, (list, tuple)):
            return inputs, None
        x, *states = inputs
        self._check_initial_states(x.shape, [s.shape for s in states])
        return x, states

    def _check_initial_states(self, x_shape, state_shapes) -> None:
        """Initial states must be one (B, n) array per state of the cell (None: any size)."""
        if state_shapes is None:
            return
        sizes = self._state_sizes()
        expected = [(x_shape[0], n) for n in sizes]
        same = len(state_shapes) == len(expected) and all(
            len(s) == 2 and all(a is None or b is None or a == b for a, b in zip(s, e))
            for s, e in zip(state_shapes, expected))
        if not same:
            names = ["h", "c"] if len(sizes) == 2 else ["h"] if len(sizes) == 1 else \
                [f"state {k}" for k in range(len(sizes))]
            raise ValueError(
                f"{self.name}: initial_state must be {len(sizes)} array(s) ({', '.join(names)}) of shapes "
                f"{', '.join(str(e) for e in expected)} (B, H) for inputs of shape {tuple(x_shape)}, got "
                f"{len(state_shapes)} of shapes {', '.join(str(tuple(s)) for s in state_shapes) or 'none'}"
            )

    def _step0_states(self, B, dtype, given):
        """The states step 1 starts from, each (B, H): ``given`` (initial_state), else the
        carried ones of a stateful layer, else None (zeros)."""
        if self.stateful:
            self._check_batch_size(B)
            if given is None and self.states is not None:
                return [backend.xp.asarray(s, dtype=dtype) for s in self.states]
        return given

    def _check_batch_size(self, B) -> None:
        if self.batch_size is None:
            self.batch_size = B                          # fixed by the first batch
        elif B != self.batch_size:
            raise ValueError(
                f"{self.name}: a stateful layer runs on batches of one fixed size, {self.batch_size} (row b "
                f"of a batch continues row b of the one before), got a batch of {B}. Give fit, evaluate and "
                f"predict batch_size={self.batch_size} and a number of sequences divisible by it, or make "
                "the layer for another size (batch_size=B, batch_input_shape=[B, T, D], or "
                "tinyrnn.Input(shape, batch_size=B))"
            )

    def _carry(self, final_states) -> None:
        """Keep a stateful layer's final states for the next batch: copies, so constants
        (no gradient crosses the batch boundary: truncated BPTT)."""
        if self.stateful:
            self.states = [backend.xp.array(s, copy=True) for s in final_states]

    def reset_states(self, states=None) -> None:
        """Start the next batch from zeros, or from ``states`` (a list, each (B, H)).

        Keras's ``layer.reset_states()`` (Keras 3 also spells it ``reset_state()``);
        call it between independent sequences, e.g. at each epoch's start."""
        if states is None:
            self.states = None if not self.stateful or self.batch_size is None else \
                self._initial_states(self.batch_size, backend.floatx())
            return
        if not self.stateful:
            raise ValueError(f"{self.name}: reset_states(states) is for a stateful layer (stateful=True); "
                             "give a stateless one its states as layer(x, initial_state=states)")
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        states = [validation.float_dtype(backend.xp.asarray(s), "states") for s in states]
        B = self.batch_size or states[0].shape[0]
        self._check_initial_states((B, None, None), [s.shape for s in states])
        self._check_batch_size(states[0].shape[0])
        self.states = [s.copy() for s in states]

    def reset_state(self, states=None) -> None:
        """Keras 3's spelling of ``reset_states``."""
        self.reset_states(states)

    # --- a cell in Keras's protocol: recorded steps ------------------------------------
    def call(self, inputs, training=None, mask=None):
        """Unroll a Keras-protocol cell, recording every step (BPTT walks the record):

            states = initial states (given, carried, zeros, or cell.get_initial_state(batch_size))
            for t in 1..T:  output_t, states = cell(x_t, states)

        With a mask m (B, T), each step is blended with tinyrnn.ops as in ``blend_states``:
        states = m_t new + (1 - m_t) states, y_t = m_t output_t + (1 - m_t) y_{t-1} (y_0 = 0;
        0 in place of y_{t-1} with ``zero_output_for_mask``)."""
        x, given = self._split_inputs(inputs)
        B, T = x.shape[0], x.shape[1]
        keep = None if mask is None else self._time_mask(mask, B, T).T[..., None].astype(x.dtype)  # (T, B, 1)
        if self.go_backwards:
            x, keep = x[:, ::-1], None if keep is None else keep[::-1]
        states = self._step0_states(B, x.dtype, given) or self._initial_states(B, x.dtype)
        outputs, y_prev = [], 0.0
        for t in range(T):
            output, new_states = self.cell(x[:, t], states)
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            if keep is not None:                            # m new + (1 - m) old, recorded
                m = keep[t]
                new_states = [new * m + old * (1 - m) for new, old in zip(new_states, states)]
                output = output * m if self.zero_output_for_mask else output * m + y_prev * (1 - m)
                y_prev = output
            states = new_states
            outputs.append(output)
        self._carry([s.data if isinstance(s, graph.Value) else s for s in states])
        y = ops.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [y, *states] if self.return_state else y

    def records_call(self) -> bool:
        return self.recorded

    def _initial_states(self, B, dtype) -> list:
        if hasattr(self.cell, "get_initial_state"):
            states = self.cell.get_initial_state(batch_size=B)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        return [backend.xp.zeros((B, n), dtype) for n in self._state_sizes()]

    # --- forward: phases 1 and 2 -------------------------------------------------
    def forward(self, x, training=False, mask=None):
        """x (B, T, D), or [x, *initial_states]; mask (B, T) bool or None -> y (see the class)."""
        if self.recorded:
            return self._forward_recorded(x, training, mask)
        x, given = self._split_inputs(x)                     # x, or [x, *initial_states]
        self._check_input(x)
        B, T, D = x.shape
        start = self._step0_states(B, x.dtype, given)        # each (B, H), or None: zeros
        keep = None if mask is None else self._time_mask(mask, B, T).T[:, None, :]  # (T, 1, B)
        if self.go_backwards:                                # the sequence read from its end
            x, keep = x[:, ::-1], None if keep is None else keep[::-1]
        in_mask, rec_mask = self._dropout_masks(B, D, x.dtype, training)
        X = x.transpose(1, 2, 0)                          # (T, D, B): time-major, feature-major
        if in_mask is not None:
            X = X * in_mask
        parts = backend.batch_parts(B, self.cell.gates * self.units * B)  # [all of it], or one per thread
        H = backend.xp.zeros((T + 1, self.units, B), x.dtype)  # H[t + 1] = h_t, every part's columns
        runs = backend.parallel_map(
            lambda part: self.unroll(self.cell, X[:, :, part], columns(rec_mask, part), H[:, :, part],
                                     None if start is None else [s[part] for s in start],
                                     columns(keep, part)), parts, macs=self.step_macs(B))
        shown = None if keep is None else self._shown_outputs(keep, x.dtype)  # (T, 1, B) or None
        self._remember((X, [tape for tape, _ in runs], parts, in_mask, given is not None, keep, shown))
        Y = H[1:] if shown is None else H[1:] * shown     # (T, H, B): the outputs y_t
        y = Y.transpose(2, 0, 1) if self.return_sequences else Y[T - 1].T
        if not (self.return_state or self.stateful):
            return y
        final = [join(part_states).T.copy() for part_states in zip(*(states for _, states in runs))]  # (B, H)
        self._carry(final)
        return [y, *final] if self.return_state else y

    def step_macs(self, B) -> int:
        """Multiply-adds of one step's recurrent product U^T h_{t-1}, (G, H) x (H, B): from
        ``backend.SHARED_PRODUCT_MACS`` a batch not split gets every core's BLAS threads."""
        return self.cell.gates * self.units * self.units * B

    def unroll(self, cell, X, rec_mask, H, start=None, keep=None):
        """Phases 1 and 2 on a batch (or a part of one): X (T, D, B) -> (tape, final states).

        The cell writes h_t into ``H[t + 1]`` ((T + 1, H, B)) as ``tape.H``; the states
        start from ``start`` (each (B, H)) when given, else from zeros (H[0] = h_0 = 0).
        With ``keep`` (T, 1, B) (the mask), a masked step carries every state unchanged
        (``blend_states``)."""
        xp = backend.xp
        T, _, B = X.shape
        tape = SimpleNamespace(H=H, rec_mask=rec_mask)
        cell.prepare(tape, T, B, X.dtype)
        XW = cell.project_inputs(X)                      # phase 1: (T, G, B)
        if start is None:
            states = [tape.H[0]] + [xp.zeros((self.units, B), X.dtype) for _ in range(cell.n_states - 1)]
        else:
            states = cell.start_states(tape, start)      # h_0 into tape.H[0] (c_0 into tape.C[0])
        skip = None if keep is None else ~keep
        for t in range(T):                               # phase 2: the recurrence
            new_states = cell.step_forward(t, XW[t], states, tape)
            if skip is not None:
                blend_states(new_states, states, skip[t])
            states = new_states
        return tape, states

    def _forward_recorded(self, x, training, mask):
        """``Layer.forward`` (call() on Values, recorded) with the mask handed to call()."""
        inputs = graph.map_structure(lambda a: graph.Value(a), x)
        outputs = self._run_call(inputs, training, (), None if mask is None else {"mask": mask})
        self._check_outputs(inputs, outputs)
        self._remember((inputs, outputs))
        return graph.map_structure(lambda v: v.data, outputs)

    def _time_mask(self, mask, B, T):
        """The mask as a (B, T) bool array, checked: True where a step counts."""
        mask = mask[0] if isinstance(mask, (list, tuple)) else mask      # [x, *states]: x's (Keras's mask[0])
        mask = backend.xp.asarray(mask)
        if tuple(mask.shape) != (B, T):
            raise ValueError(
                f"{self.name}: the mask must be (B, T) = ({B}, {T}), one flag per sequence and time step "
                f"of inputs {(B, T)} + (D,), got shape {tuple(mask.shape)}; for (B, T, D) values give "
                "(x != pad).any(axis=-1), as Masking does"
            )
        return mask.astype(bool)

    def _shown_outputs(self, keep, dtype):
        """Which blended h_t are outputs, (T, 1, B) of 0/1 (Keras's masked outputs):
        y_t = h_t once a step has counted (before: y_{t-1} from y_0 = 0, so 0), or with
        ``zero_output_for_mask`` y_t = h_t at kept steps and 0 at masked ones."""
        if self.zero_output_for_mask:
            return keep.astype(dtype)
        return (backend.xp.cumsum(keep, axis=0) > 0).astype(dtype)

    # --- backward: phases 3 and 4 ---------------------------------------------------
    def backward(self, dy):
        if self.recorded:
            return super().backward(dy)                      # Layer.backward: the record, in reverse
        X, tapes, parts, in_mask, states_given, keep, shown = self._recall()
        xp, cell = backend.xp, self.cell
        T, B = X.shape[0], X.shape[2]
        dy, dfinal = (dy[0], list(dy[1:])) if self.return_state else (dy, [])
        dstates = [xp.zeros((self.units, B), X.dtype) for _ in range(cell.n_states)]
        for k, ds in enumerate(dfinal):
            if ds is not None:
                dstates[k] += ds.T
        dY = dy.transpose(1, 2, 0) if self.return_sequences else None  # (T, H, B)
        if dY is None:
            dstates[0] += dy.T if shown is None else dy.T * shown[T - 1]
        elif shown is not None:
            dY = dY * shown                              # y_t = shown_t h_t
        cells = [cell] if len(parts) == 1 else [cell.part_copy() for _ in parts]  # own grads per thread
        runs = backend.parallel_map(
            lambda part_cell, tape, part: self.backprop(part_cell, X[:, :, part], tape, columns(dY, part),
                                                        [columns(ds, part) for ds in dstates],
                                                        columns(keep, part)),
            cells, tapes, parts, macs=self.step_macs(B))
        if len(parts) > 1:                               # sum the parts' weight gradients
            for part_cell in cells:
                for name, grad in part_cell.grads.items():
                    cell.grads[name] += grad
        self._hidden_grad_norms = xp.sqrt(sum(squares for _, squares, _ in runs))
        del tapes                                        # the activations go before dX is joined
        dX = join([dX for dX, _, _ in runs])             # (T, D, B)
        if in_mask is not None:
            dX *= in_mask
        dx = dX.transpose(2, 0, 1)                       # (B, T, D)
        if self.go_backwards:
            dx = dx[:, ::-1]                             # back to the order of x
        if not states_given:                             # zeros, or carried (stateful): a constant
            return dx
        d_start = [join(part_ds).T for part_ds in zip(*(ds for _, _, ds in runs))]  # dL/dh_0 [, dL/dc_0]
        return [dx, *d_start]

    def backprop(self, cell, X, tape, dY, dstates, keep=None):
        """Phases 3 and 4 on a batch (or a part): dY (T, H, B) or None, dstates the
        gradients of the final states, keep (T, 1, B) the mask or None -> (dX (T, D, B),
        ||dL/dh_t||^2 per step (T,), the gradients of the step-0 states, each (H, B))."""
        T, B = X.shape[0], X.shape[2]
        tape.H_prev = tape.H[:-1] if tape.rec_mask is None else tape.H[:-1] * tape.rec_mask
        cell.prepare_backward(tape)
        dH = cell.tape_array(tape, (T, self.units, B), X.dtype)  # dL/dh_t from above, then all paths
        dH[...] = 0 if dY is None else dY
        m = None if keep is None else keep.astype(X.dtype)  # (T, 1, B): 1 where the step counts
        for t in reversed(range(T)):                     # phase 3: BPTT
            dH[t] += dstates[0]                          # dL/dh_t, all paths: from above and from t + 1
            if m is None:
                dstates = cell.step_backward(t, [dH[t], *dstates[1:]], tape)
            else:                                        # through the blend: m to the step, 1 - m past it
                d_new = [dH[t], *dstates[1:]]
                past = [d * (1 - m[t]) for d in d_new]
                d_prev = cell.step_backward(t, [d * m[t] for d in d_new], tape)
                dstates = [a + b for a, b in zip(d_prev, past)]
        squares = (dH * dH).sum(axis=(1, 2))
        del dH
        cell.accumulate_grads(X, tape)                   # phase 4: weights, all steps at once
        dX = cell.input_grad(tape)                       # phase 4: inputs, (T, D, B)
        cell.release(tape)                               # the tape's arrays, for the next batch
        return dX, squares, dstates

    @property
    def hidden_grad_norms(self):
        """||dL/dh_t|| for t = 1..T from the last backward pass, as NumPy (T,)."""
        if self._hidden_grad_norms is None:
            raise RuntimeError(f"{self.name}: hidden_grad_norms exist after a backward pass")
        return backend.to_numpy(self._hidden_grad_norms)

    def _dropout_masks(self, B, D, dtype, training):
        """One mask per sequence, feature-major like the arrays it multiplies."""
        in_mask = rec_mask = None
        if training and self.dropout > 0:
            in_mask = dropout_mask((B, D), self.dropout, dtype).T          # (D, B)
        if training and self.recurrent_dropout > 0:
            rec_mask = dropout_mask((B, self.units), self.recurrent_dropout, dtype).T  # (H, B)
        return in_mask, rec_mask

    def _check_input(self, x):
        validation.float_dtype(x, "x")
        if x.ndim != 3:
            raise ValueError(
                f"{self.name}: recurrent layers expect inputs (B, T, D), got shape {tuple(x.shape)}; "
                "reshape a (B, T) series with x[..., None]"
            )
        if x.shape[1] == 0:
            raise ValueError(f"{self.name}: the input has zero time steps (shape {tuple(x.shape)})")
        if x.shape[-1] != self.cell.input_dim:
            raise ValueError(
                f"{self.name}: built for D={self.cell.input_dim} input features, got D={x.shape[-1]} "
                f"(input shape {tuple(x.shape)})"
            )

    def get_config(self):
        config = {**super().get_config(), "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards,
                  "stateful": self.stateful, "zero_output_for_mask": self.zero_output_for_mask,
                  "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}
        if self.stateful:
            config["batch_size"] = self.batch_size          # the fixed batch size the states have
        return config


def _split_shapes(input_shape):
    """The shape of x, and those of the initial states (None when none are given)."""
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return tuple(input_shape[0]), [tuple(s) for s in input_shape[1:]]
    return input_shape, None


def _check_keras_cell(cell, dropout, recurrent_dropout) -> None:
    if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
        raise TypeError(
            f"RNN needs a cell: a built-in one (e.g. SimpleRNNCell(20)) or a Layer with state_size, "
            f"output_size and call(inputs, states) -> (output, new_states); got {type(cell).__name__}"
        )
    if dropout or recurrent_dropout:
        raise ValueError(f"RNN({type(cell).__name__}): dropout and recurrent_dropout are for the built-in "
                         "cells; apply Dropout to the inputs, or drop inside your cell's call()")


def _first_size(size) -> int:
    return size[0] if isinstance(size, (list, tuple)) else size


class _CellLayer(RNN):
    """A Keras recurrent layer: ``RNN`` with its cell built from the arguments."""

    cell_class = RNNCell

    def __init__(self, units, **kwargs):
        cell_args = self.cell_arguments()              # the rest go to RNN, and unknown ones to Layer's error
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in cell_args}
        super().__init__(self.cell_class(units, **cell_kwargs), **kwargs)

    @classmethod
    def cell_arguments(cls) -> list:
        """The cell's keywords (``name`` names the layer, not the cell)."""
        return [n for n in constructor_arguments(cls.cell_class) if n not in ("units", "name")]

    @classmethod
    def argument_names(cls) -> list:
        units, *rnn_args = [n for n in super().argument_names() if n not in ("cell", *cls.cell_arguments())]
        return [units, *cls.cell_arguments(), *rnn_args]

    def get_config(self):
        return {**super().get_config(), **self.cell.get_config()}


class SimpleRNN(_CellLayer):
    """``RNN(SimpleRNNCell(units, activation))`` with Keras's arguments."""

    cell_class = SimpleRNNCell


class LSTM(_CellLayer):
    """``RNN(LSTMCell(units, ...))`` with Keras's arguments (``unit_forget_bias``)."""

    cell_class = LSTMCell


class GRU(_CellLayer):
    """``RNN(GRUCell(units, ..., reset_after))`` with Keras's arguments."""

    cell_class = GRUCell
