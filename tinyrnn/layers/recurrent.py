"""Recurrent layers: the ``RNN`` wrapper and the cells it unrolls.

A cell owns the math of one time step, forward and backward side by side.
The ``RNN`` wrapper owns the unrolling, in four phases:

1. project the inputs of all time steps at once: XW = X W + b, one matrix
   product over B*T (``cell.project_inputs``);
2. the forward recurrence, one ``cell.step_forward`` per time step;
3. BPTT, one ``cell.step_backward`` per step in reverse, each giving the
   gradient of that step's pre-activations dz_t;
4. the weight and input gradients of all steps at once, from the stacked
   dZ (``cell.accumulate_grads``, ``cell.input_grad``).

Shapes: B batch, T time, D input features, H units, G = gates * H columns of
the kernels. Inside the wrapper arrays are time-major: X (T, B, D), XW (T, B, G).

Writing your own cell: subclass ``RNNCell``, set ``gates`` (and ``state_size``
for more than one state), and write ``step_forward`` / ``step_backward`` (see
their docstrings for the contract). ``RNN(YourCell(units))`` then unrolls it,
with dropout, ``return_sequences`` and ``return_state`` for free.
"""

from __future__ import annotations

from tinyrnn import activations, backend, initializers
from tinyrnn.layers.base import Layer, unique_name
from tinyrnn.layers.core import _positive_int, _rate, dropout_mask
from tinyrnn.layers.normalization import layer_norm_backward, layer_norm_forward


class RNNCell:
    """Base cell: the standard kernel (D, G), recurrent kernel (H, G) and bias (G,).

    Subclasses write the step math. The phase-4 defaults below cover cells whose
    pre-activation is z_t = x_t W + h_{t-1} U + b, so that

        dW = sum_t x_t^T dz_t,   dU = sum_t h_{t-1}^T dz_t,   db = sum_t dz_t,
        dx_t = dz_t W^T.
    """

    gates = 1
    state_size = 1  # number of (B, H) states carried between steps; states[0] is h
    weight_names = ("kernel", "recurrent_kernel", "bias")

    def __init__(self, units, activation="tanh", use_bias=True, name=None):
        self.units = _positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.name = name or unique_name(type(self).__name__.lower())
        self.params: dict = {}
        self.grads: dict = {}
        self.input_dim = None

    # --- parameters -------------------------------------------------------
    def build(self, input_dim: int) -> None:
        H, G = self.units, self.gates * self.units
        self.input_dim = input_dim
        self.add_param("kernel", initializers.glorot_uniform((input_dim, G)))
        self.add_param("recurrent_kernel", self._recurrent_init(H, G))
        if self.use_bias:
            self.add_param("bias", self.bias_init())

    def _recurrent_init(self, H, G):
        # Keras draws one orthogonal (H, G) matrix for the recurrent kernel.
        return initializers.orthogonal((H, G))

    def bias_init(self):
        return initializers.zeros((self.gates * self.units,))

    def add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = backend.xp.zeros_like(value)

    # --- phase 1 ------------------------------------------------------------
    def project_inputs(self, X):
        """XW = X W + b for all steps at once: X (T, B, D) -> XW (T, B, G)."""
        XW = X @ self.params["kernel"]
        if self.use_bias:
            XW += self.params["bias"]
        return XW

    # --- phases 2 and 3 -------------------------------------------------------
    def step_forward(self, xw_t, states):
        """One step: xw_t (B, G), states list of (B, H) -> (new states, cache).

        ``new_states[0]`` is the step's output h_t. The cache holds what
        ``step_backward`` needs; the wrapper keeps one per step.
        """
        raise NotImplementedError

    def step_backward(self, dstates, cache):
        """Reverse of one step: dstates (gradients of the new states, each (B, H))
        -> (dz_t, gradients of the previous states).

        dz_t is the gradient of the step's pre-activations, stacked by the
        wrapper into dZ (T, B, G) for phase 4.
        """
        raise NotImplementedError

    # --- phase 4 --------------------------------------------------------------
    def accumulate_grads(self, X, H_prev, dZ, caches):
        """Add the weight gradients of all steps: X (T, B, D), H_prev (T, B, H)
        (h_{t-1} as the recurrent product saw it), dZ (T, B, G)."""
        G = dZ.shape[-1]
        dZ2 = dZ.reshape(-1, G)                                           # (T*B, G)
        self.grads["kernel"] += X.reshape(-1, X.shape[-1]).T @ dZ2        # (D, G)
        self.grads["recurrent_kernel"] += H_prev.reshape(-1, self.units).T @ dZ2  # (H, G)
        if self.use_bias:
            self.grads["bias"] += dZ2.sum(axis=0)                         # (G,)

    def input_grad(self, dZ):
        """dX = dZ W^T for all steps at once: (T, B, G) -> (T, B, D)."""
        return dZ @ self.params["kernel"].T

    def get_config(self) -> dict:
        return {"units": self.units, "activation": self.activation.name, "use_bias": self.use_bias}


class SimpleRNNCell(RNNCell):
    """Elman cell.

    Forward:   z_t = x_t W + h_{t-1} U + b,    h_t = f(z_t)        (f = tanh)
    Backward:  dz_t = dh_t * f'(z_t)           (f' read from h_t)
               dh_{t-1} = dz_t U^T
    """

    def step_forward(self, xw_t, states):
        h_prev = states[0]                                  # (B, H)
        z = xw_t + h_prev @ self.params["recurrent_kernel"]  # (B, H)
        h = self.activation.forward(z)                      # (B, H)
        return [h], h

    def step_backward(self, dstates, h):
        dz = self.activation.backward(h, dstates[0])           # dL/dz = dL/dh * f'(z), (B, H)
        dh_prev = dz @ self.params["recurrent_kernel"].T       # dz/dh_{t-1} = U, (B, H)
        return dz, [dh_prev]


class LSTMCell(RNNCell):
    """Long short-term memory cell, Keras gate order i, f, c, o.

    Forward (s = sigmoid, the recurrent activation; g_act = tanh):
        z = x_t W + h_{t-1} U + b                    (B, 4H), split z_i z_f z_c z_o
        i = s(z_i)   f = s(z_f)   g = g_act(z_c)   o = s(z_o)
        c_t = f * c_{t-1} + i * g
        h_t = o * g_act(c_t)
    Backward (dh, dc: gradients reaching h_t and c_t from above and later steps):
        dc   = dc + dh * o * g_act'(c_t)
        dz_i = dc * g * s'(z_i)      dz_f = dc * c_{t-1} * s'(z_f)
        dz_c = dc * i * g_act'(z_c)  dz_o = dh * g_act(c_t) * s'(z_o)
        dc_{t-1} = dc * f            dh_{t-1} = dz U^T
    """

    gates = 4
    state_size = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, unit_forget_bias=True, name=None):
        super().__init__(units, activation=activation, use_bias=use_bias, name=name)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    def bias_init(self):
        b = initializers.zeros((4 * self.units,))
        if self.unit_forget_bias:
            b[self.units:2 * self.units] = 1.0  # forget gate open at the start
        return b

    def gate_activations(self, z):
        """(i, f, g, o) from the pre-activations z (B, 4H)."""
        H, sig = self.units, self.recurrent_activation
        i, f, o = sig.forward(z[:, :H]), sig.forward(z[:, H:2 * H]), sig.forward(z[:, 3 * H:])
        g = self.activation.forward(z[:, 2 * H:3 * H])
        return i, f, g, o

    def step_forward(self, xw_t, states):
        h_prev, c_prev = states
        z = xw_t + h_prev @ self.params["recurrent_kernel"]   # (B, 4H)
        i, f, g, o = self.gate_activations(z)                # each (B, H)
        c = f * c_prev + i * g                               # (B, H)
        tanh_c = self.activation.forward(c)                  # (B, H)
        h = o * tanh_c
        return [h, c], (c_prev, i, f, g, o, tanh_c)

    def step_backward(self, dstates, cache):
        dh, dc_next = dstates
        c_prev, i, f, g, o, tanh_c = cache
        xp, sig = backend.xp, self.recurrent_activation
        dc = dc_next + self.activation.backward(tanh_c, dh * o)       # h = o g_act(c): dh/dc
        dz = xp.concatenate([
            sig.backward(i, dc * g),                                  # dc/di = g
            sig.backward(f, dc * c_prev),                             # dc/df = c_{t-1}
            self.activation.backward(g, dc * i),                      # dc/dg = i
            sig.backward(o, dh * tanh_c),                             # dh/do = g_act(c)
        ], axis=1)                                                    # (B, 4H)
        dh_prev = dz @ self.params["recurrent_kernel"].T              # (B, H)
        return dz, [dh_prev, dc * f]                                  # dc_t/dc_{t-1} = f

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation.name,
                "unit_forget_bias": self.unit_forget_bias}


class PeepholeLSTMCell(LSTMCell):
    """LSTM whose gates also look at the cell state (Gers and Schmidhuber).

    Forward, with diagonal peephole weights p_i, p_f, p_o (each (H,)):
        z = x_t W + h_{t-1} U + b
        i = s(z_i + p_i * c_{t-1})   f = s(z_f + p_f * c_{t-1})   g = tanh(z_c)
        c_t = f * c_{t-1} + i * g
        o = s(z_o + p_o * c_t)       h_t = o * tanh(c_t)
    Backward: as LSTM, plus the peephole paths
        dc_t     += dz_o * p_o
        dc_{t-1}  = dc_t * f + dz_i * p_i + dz_f * p_f
        dp_i = sum_B dz_i * c_{t-1}   dp_f = sum_B dz_f * c_{t-1}   dp_o = sum_B dz_o * c_t
    """

    weight_names = ("kernel", "recurrent_kernel", "bias", "input_gate_peephole_weights",
                    "forget_gate_peephole_weights", "output_gate_peephole_weights")
    _peepholes = weight_names[3:]

    def build(self, input_dim):
        super().build(input_dim)
        for name in self._peepholes:
            self.add_param(name, initializers.glorot_uniform((1, self.units))[0])

    def step_forward(self, xw_t, states):
        h_prev, c_prev = states
        H, sig, p = self.units, self.recurrent_activation, self.params
        z = xw_t + h_prev @ p["recurrent_kernel"]                                 # (B, 4H)
        i = sig.forward(z[:, :H] + p["input_gate_peephole_weights"] * c_prev)
        f = sig.forward(z[:, H:2 * H] + p["forget_gate_peephole_weights"] * c_prev)
        g = self.activation.forward(z[:, 2 * H:3 * H])
        c = f * c_prev + i * g
        o = sig.forward(z[:, 3 * H:] + p["output_gate_peephole_weights"] * c)
        tanh_c = self.activation.forward(c)
        return [o * tanh_c, c], (c_prev, i, f, g, o, c, tanh_c)

    def step_backward(self, dstates, cache):
        dh, dc_next = dstates
        c_prev, i, f, g, o, c, tanh_c = cache
        xp, sig, p, grads = backend.xp, self.recurrent_activation, self.params, self.grads
        dz_o = sig.backward(o, dh * tanh_c)                                    # dh/do = tanh(c)
        dc = (dc_next + self.activation.backward(tanh_c, dh * o)               # through tanh(c_t)
              + dz_o * p["output_gate_peephole_weights"])                      # through o's peephole
        dz_i = sig.backward(i, dc * g)
        dz_f = sig.backward(f, dc * c_prev)
        dz_c = self.activation.backward(g, dc * i)
        dc_prev = (dc * f + dz_i * p["input_gate_peephole_weights"]
                   + dz_f * p["forget_gate_peephole_weights"])
        grads["input_gate_peephole_weights"] += (dz_i * c_prev).sum(axis=0)     # (H,)
        grads["forget_gate_peephole_weights"] += (dz_f * c_prev).sum(axis=0)
        grads["output_gate_peephole_weights"] += (dz_o * c).sum(axis=0)
        dz = xp.concatenate([dz_i, dz_f, dz_c, dz_o], axis=1)                  # (B, 4H)
        return dz, [dz @ p["recurrent_kernel"].T, dc_prev]


class GRUCell(RNNCell):
    """Gated recurrent unit, Keras gate order z (update), r (reset), h (candidate).

    reset_after=True (Keras's default, cuDNN's and PyTorch's form); bias (2, 3H)
    holds the input bias b_x and the recurrent bias b_h:
        xw = x_t W + b_x          rec = h_{t-1} U + b_h        (each (B, 3H))
        z = s(xw_z + rec_z)   r = s(xw_r + rec_r)
        n = tanh(xw_h + r * rec_h)
        h_t = z * h_{t-1} + (1 - z) * n
    reset_after=False (the original GRU); bias (3H,):
        z = s(xw_z + h_{t-1} U_z)   r = s(xw_r + h_{t-1} U_r)
        n = tanh(xw_h + (r * h_{t-1}) U_h)
        h_t = z * h_{t-1} + (1 - z) * n
    Backward:
        dn = dh (1 - z) ;  dz_z = dh (h_{t-1} - n) s'(z) ;  dz_h = dn tanh'(n)
        after:  dz_r = dz_h rec_h s'(r) ;  d rec_h = dz_h * r
        before: d(r h) = dz_h U_h^T ;  dz_r = d(r h) h_{t-1} s'(r)
        dh_{t-1} = dh z + (gradients through the recurrent products)
    For phase 4, dz_t stacks [dz_z, dz_r, dz_h, d rec_h] (B, 4H) when
    reset_after, else [dz_z, dz_r, dz_h] (B, 3H).
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, reset_after=True, name=None):
        super().__init__(units, activation=activation, use_bias=use_bias, name=name)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after

    def bias_init(self):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return initializers.zeros(shape)

    def project_inputs(self, X):
        XW = X @ self.params["kernel"]
        if self.use_bias:
            XW += self.params["bias"][0] if self.reset_after else self.params["bias"]
        return XW

    def step_forward(self, xw_t, states):
        h_prev = states[0]
        H, sig, U = self.units, self.recurrent_activation, self.params["recurrent_kernel"]
        if self.reset_after:
            rec = h_prev @ U                                             # (B, 3H)
            if self.use_bias:
                rec += self.params["bias"][1]
            z = sig.forward(xw_t[:, :H] + rec[:, :H])
            r = sig.forward(xw_t[:, H:2 * H] + rec[:, H:2 * H])
            rec_h = rec[:, 2 * H:]
            n = self.activation.forward(xw_t[:, 2 * H:] + r * rec_h)
        else:
            zr = sig.forward(xw_t[:, :2 * H] + h_prev @ U[:, :2 * H])    # (B, 2H)
            z, r = zr[:, :H], zr[:, H:]
            rec_h = r * h_prev                                           # what U_h multiplies
            n = self.activation.forward(xw_t[:, 2 * H:] + rec_h @ U[:, 2 * H:])
        h = z * h_prev + (1.0 - z) * n
        return [h], (h_prev, z, r, n, rec_h)

    def step_backward(self, dstates, cache):
        dh = dstates[0]
        h_prev, z, r, n, rec_h = cache
        xp, H, sig, U = backend.xp, self.units, self.recurrent_activation, self.params["recurrent_kernel"]
        dz_z = sig.backward(z, dh * (h_prev - n))                   # dh/dz = h_{t-1} - n
        dz_h = self.activation.backward(n, dh * (1.0 - z))          # dh/dn = 1 - z
        dh_prev = dh * z                                            # dh/dh_{t-1} directly = z
        if self.reset_after:
            drec_h = dz_h * r                                       # d(r * rec_h)/d rec_h = r
            dz_r = sig.backward(r, dz_h * rec_h)                    # d(r * rec_h)/dr = rec_h
            dz = xp.concatenate([dz_z, dz_r, dz_h, drec_h], axis=1)  # (B, 4H)
            drec = xp.concatenate([dz_z, dz_r, drec_h], axis=1)      # grad of rec, (B, 3H)
            dh_prev += drec @ U.T
        else:
            d_rh = dz_h @ U[:, 2 * H:].T                            # grad of r * h_{t-1}, (B, H)
            dz_r = sig.backward(r, d_rh * h_prev)
            dz = xp.concatenate([dz_z, dz_r, dz_h], axis=1)          # (B, 3H)
            dh_prev += d_rh * r + dz[:, :2 * H] @ U[:, :2 * H].T
        return dz, [dh_prev]

    def accumulate_grads(self, X, H_prev, dZ, caches):
        H, grads = self.units, self.grads
        X2, Hp2 = X.reshape(-1, X.shape[-1]), H_prev.reshape(-1, H)
        dZ2 = dZ.reshape(-1, dZ.shape[-1])
        grads["kernel"] += X2.T @ dZ2[:, :3 * H]                     # (D, 3H)
        grads["recurrent_kernel"][:, :2 * H] += Hp2.T @ dZ2[:, :2 * H]
        if self.reset_after:
            drec = dZ2[:, [*range(2 * H), *range(3 * H, 4 * H)]]     # [dz_z, dz_r, d rec_h]
            grads["recurrent_kernel"][:, 2 * H:] += Hp2.T @ drec[:, 2 * H:]
            if self.use_bias:
                grads["bias"][0] += dZ2[:, :3 * H].sum(axis=0)
                grads["bias"][1] += drec.sum(axis=0)
        else:
            RH = backend.xp.stack([c[4] for c in caches]).reshape(-1, H)  # r * h_{t-1} per step
            grads["recurrent_kernel"][:, 2 * H:] += RH.T @ dZ2[:, 2 * H:]
            if self.use_bias:
                grads["bias"] += dZ2.sum(axis=0)

    def input_grad(self, dZ):
        return dZ[..., :3 * self.units] @ self.params["kernel"].T

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation.name,
                "reset_after": self.reset_after}


class RNN(Layer):
    """Unroll a cell over time: (B, T, D) -> (B, T, H) or (B, H).

    Arguments as Keras: ``return_sequences`` (all h_t, else the last),
    ``return_state`` (also return the final states: [y, h_T] or [y, h_T, c_T]),
    ``dropout`` (a (B, D) mask on the inputs) and ``recurrent_dropout`` (a
    (B, H) mask on h_{t-1} where the cell reads it), one mask per sequence reused
    at every time step, inverted scaling, drawn only when ``training``.

    After ``backward``, ``hidden_grad_norms`` (T,) holds ||dL/dh_t|| at each
    step: the gradient reaching the hidden state, for vanishing-gradient plots.
    """

    def __init__(self, cell, return_sequences=False, return_state=False,
                 dropout=0.0, recurrent_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cell, RNNCell):
            raise TypeError(f"RNN needs an RNNCell (e.g. SimpleRNNCell(20)), got {type(cell).__name__}")
        self.cell = cell
        self.units = cell.units
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.dropout = _rate(dropout)
        self.recurrent_dropout = _rate(recurrent_dropout)
        self.params, self.grads = cell.params, cell.grads
        self.weight_names = cell.weight_names
        self._hidden_grad_norms = None

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.name}: recurrent layers expect inputs (B, T, D), got shape {tuple(input_shape)}; "
                "reshape a (B, T) series with x[..., None]"
            )
        self.cell.build(input_shape[-1])
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        y = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [y] + [(B, self.units)] * self.cell.state_size
        return y

    # --- forward: phases 1 and 2 -------------------------------------------------
    def forward(self, x, training=False):
        self._check_input(x)
        xp, cell = backend.xp, self.cell
        B, T, D = x.shape
        in_mask, rec_mask = self._dropout_masks(B, D, x.dtype, training)
        X = x.transpose(1, 0, 2)                          # (T, B, D), time-major view
        if in_mask is not None:
            X = X * in_mask
        XW = cell.project_inputs(X)                      # phase 1: (T, B, G)
        Hs = xp.zeros((T + 1, B, self.units), x.dtype)   # Hs[t + 1] = h_t, Hs[0] = h_0 = 0
        states = [Hs[0]] + [xp.zeros((B, self.units), x.dtype) for _ in range(cell.state_size - 1)]
        caches = []
        for t in range(T):                               # phase 2: the recurrence
            if rec_mask is not None:
                states[0] = states[0] * rec_mask
            states, cache = cell.step_forward(XW[t], states)
            Hs[t + 1] = states[0]
            caches.append(cache)
        self._remember((X, Hs, caches, in_mask, rec_mask))
        y = Hs[1:].transpose(1, 0, 2) if self.return_sequences else Hs[T]
        return [y, *states] if self.return_state else y

    # --- backward: phases 3 and 4 ---------------------------------------------------
    def backward(self, dy):
        X, Hs, caches, in_mask, rec_mask = self._recall()
        xp, cell = backend.xp, self.cell
        T, B = X.shape[:2]
        dy, dfinal = (dy[0], list(dy[1:])) if self.return_state else (dy, [])
        dstates = [xp.zeros((B, self.units), X.dtype) for _ in range(cell.state_size)]
        for k, ds in enumerate(dfinal):
            if ds is not None:
                dstates[k] = dstates[k] + ds
        dY = dy.transpose(1, 0, 2) if self.return_sequences else None
        dH = xp.empty((T, B, self.units), X.dtype)       # dL/dh_t, all paths
        dZ = None
        for t in reversed(range(T)):                     # phase 3: BPTT
            if self.return_sequences:
                xp.add(dstates[0], dY[t], out=dH[t])
            else:
                dH[t] = dstates[0] + dy if t == T - 1 else dstates[0]
            dz, dstates = cell.step_backward([dH[t], *dstates[1:]], caches[t])
            if rec_mask is not None:
                dstates[0] = dstates[0] * rec_mask       # h_{t-1} entered the step as h * m
            if dZ is None:
                dZ = xp.empty((T, *dz.shape), dz.dtype)
            dZ[t] = dz
        H_prev = Hs[:-1] if rec_mask is None else Hs[:-1] * rec_mask
        cell.accumulate_grads(X, H_prev, dZ, caches)     # phase 4: weights, all steps at once
        dX = cell.input_grad(dZ)                         # phase 4: inputs, (T, B, D)
        if in_mask is not None:
            dX *= in_mask
        self._hidden_grad_norms = xp.sqrt((dH * dH).sum(axis=(1, 2)))
        return dX.transpose(1, 0, 2)

    @property
    def hidden_grad_norms(self):
        """||dL/dh_t|| for t = 1..T from the last backward pass, as NumPy (T,)."""
        if self._hidden_grad_norms is None:
            raise RuntimeError(f"{self.name}: hidden_grad_norms exist after a backward pass")
        return backend.to_numpy(self._hidden_grad_norms)

    def _dropout_masks(self, B, D, dtype, training):
        in_mask = rec_mask = None
        if training and self.dropout > 0:
            in_mask = dropout_mask((B, D), self.dropout, dtype)
        if training and self.recurrent_dropout > 0:
            rec_mask = dropout_mask((B, self.units), self.recurrent_dropout, dtype)
        return in_mask, rec_mask

    def _check_input(self, x):
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
        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout}


class _CellLayer(RNN):
    """A Keras recurrent layer: ``RNN`` with its cell built from the arguments."""

    cell_class = RNNCell
    _rnn_args = ("return_sequences", "return_state", "dropout", "recurrent_dropout",
                 "input_shape", "input_dim", "name", "trainable")

    def __init__(self, units, **kwargs):
        rnn_kwargs = {k: kwargs.pop(k) for k in self._rnn_args if k in kwargs}
        super().__init__(self.cell_class(units, **kwargs), **rnn_kwargs)
        self._cell_kwargs = kwargs

    def get_config(self):
        config = {**super().get_config(), **self.cell.get_config()}
        return config


class SimpleRNN(_CellLayer):
    """``RNN(SimpleRNNCell(units, activation))`` with Keras's arguments."""

    cell_class = SimpleRNNCell


class LSTM(_CellLayer):
    """``RNN(LSTMCell(units, ...))`` with Keras's arguments (``unit_forget_bias``)."""

    cell_class = LSTMCell


class GRU(_CellLayer):
    """``RNN(GRUCell(units, ..., reset_after))`` with Keras's arguments."""

    cell_class = GRUCell


class LNSimpleRNNCell(RNNCell):
    """SimpleRNN cell with layer normalisation before the activation (the
    course's ``LNSimpleRNNCell``): a SimpleRNN cell with no activation, then
    LayerNormalization, then the activation.

    Forward:   z_t = x_t W + h_{t-1} U + b
               n_t = gamma * (z_t - mu_t) / sqrt(var_t + eps) + beta      (over the H units)
               h_t = f(n_t)
    Backward:  dn_t = dh_t * f'(n_t)                   (f' read from h_t)
               dz_t = layer-norm backward of dn_t      (see layers.normalization)
               dgamma += sum_B dn_t * n_hat_t,  dbeta += sum_B dn_t,  dh_{t-1} = dz_t U^T
    Weights (Keras order): kernel, recurrent_kernel, bias, gamma, beta.
    """

    weight_names = ("kernel", "recurrent_kernel", "bias", "gamma", "beta")

    def __init__(self, units, activation="tanh", epsilon=1e-3, name=None):
        super().__init__(units, activation=activation, name=name)
        self.epsilon = float(epsilon)

    def build(self, input_dim):
        super().build(input_dim)
        self.add_param("gamma", initializers.ones((self.units,)))
        self.add_param("beta", initializers.zeros((self.units,)))

    def step_forward(self, xw_t, states):
        z = xw_t + states[0] @ self.params["recurrent_kernel"]                     # (B, H)
        n, ln_cache = layer_norm_forward(z, self.params["gamma"], self.params["beta"], self.epsilon)
        h = self.activation.forward(n)
        return [h], (h, ln_cache)

    def step_backward(self, dstates, cache):
        h, ln_cache = cache
        dn = self.activation.backward(h, dstates[0])                               # through f
        dz, dgamma, dbeta = layer_norm_backward(dn, ln_cache, self.params["gamma"])  # through LN
        self.grads["gamma"] += dgamma
        self.grads["beta"] += dbeta
        return dz, [dz @ self.params["recurrent_kernel"].T]

    def get_config(self):
        return {"units": self.units, "activation": self.activation.name, "epsilon": self.epsilon}
