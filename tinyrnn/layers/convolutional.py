"""Convolutional layers for long sequences: Conv1D (WaveNet's causal, dilated building block).

A 1-D convolution slides K kernel taps along the time axis. With stride s,
dilation rate r and the input zero-padded on the time axis (``x_pad``),

    y[b, t, f] = act( sum_{k, d} x_pad[b, t*s + k*r, d] W[k, d, f] + bias[f] )

    x (B, T, D) -> y (B, T_out, F);  W (K, D, F) (Keras's kernel layout), bias (F,)

The taps of one output step span the *effective* kernel width K_eff = (K - 1) r + 1
input steps. Padding and output length, as in Keras (TensorFlow):

========  ==================================  ===================================
padding   zeros added (left, right)            T_out
========  ==================================  ===================================
valid     (0, 0)                               floor((T - K_eff) / s) + 1, T >= K_eff
same      P = max((T_out - 1) s + K_eff - T,   ceil(T / s)
          0), split (P // 2, P - P // 2):
          the extra zero goes on the right
causal    (K_eff - 1, 0): only past steps      ceil(T / s)
========  ==================================  ===================================

With ``padding="causal"`` output step t reads input steps t*s, t*s - r, ...,
never a later one, so a stack of causal layers can forecast without peeking.

Two implementations live here. ``conv1d_forward`` / ``conv1d_backward`` are the
vectorised ones the layer uses: copy the sliding windows (B, T_out, K, D) in, one
strided slice of x per tap (``tap_steps``), then one matrix product. ``conv1d_forward_naive`` /
``conv1d_backward_naive`` loop over b, t, k exactly as the equation reads; the
tests prove the two agree.
"""

from __future__ import annotations

from tinyrnn import activations, backend, initializers, validation
from tinyrnn.layers.base import Layer

PADDINGS = ("valid", "same", "causal")


# --- lengths and padding ---------------------------------------------------------
def effective_kernel_size(kernel_size: int, dilation_rate: int = 1) -> int:
    """K_eff = (K - 1) r + 1: how many input steps one output step spans."""
    return (kernel_size - 1) * dilation_rate + 1


def conv1d_output_length(T, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """T_out for T input steps (None stays None); see the module docstring's table.

    Returns 0 or less for a valid-padded input shorter than the effective kernel;
    ``conv1d_padding`` and the layer turn that into a ValueError.
    """
    if T is None:
        return None
    if padding == "valid":
        return (T - effective_kernel_size(kernel_size, dilation_rate)) // strides + 1
    return -(-T // strides)  # same and causal: ceil(T / s)


def conv1d_padding(T, kernel_size, strides=1, padding="valid", dilation_rate=1) -> tuple:
    """Zeros to add on the time axis, (left, right), for T input steps."""
    k_eff = effective_kernel_size(kernel_size, dilation_rate)
    if padding == "valid":
        if T < k_eff:
            raise ValueError(
                f"Conv1D: kernel_size={kernel_size} with dilation_rate={dilation_rate} spans {k_eff} time "
                f"steps, but the input has only T={T} (padding='valid' needs T >= {k_eff}). Use longer "
                "inputs, a smaller kernel_size or dilation_rate, or padding='same' or padding='causal'."
            )
        return 0, 0
    if padding == "causal":
        return k_eff - 1, 0
    T_out = conv1d_output_length(T, kernel_size, strides, padding, dilation_rate)
    total = max((T_out - 1) * strides + k_eff - T, 0)
    return total // 2, total - total // 2  # TensorFlow's "SAME": the extra zero on the right


def tap_steps(T, T_out, kernel_size, strides=1, dilation_rate=1, left=0) -> list:
    """For each tap k, the output steps that read a real input step, as (k, t0, t1, p0).

    Output step t's tap k reads x[t*s + k*r - left] (the unpadded input); for
    t in [t0, t1) that index lies in [0, T) and starts at p0 = t0*s + k*r - left.
    The other output steps read the padding's zeros. Taps that read only zeros
    (a causal layer whose dilation exceeds the sequence) are left out: they
    contribute nothing forward and get a zero gradient.
    """
    steps = []
    for k in range(kernel_size):
        offset = k * dilation_rate - left                               # input index read at t = 0
        t0 = max(0, -(offset // strides))                               # first t with t*s + offset >= 0
        t1 = min(T_out, (T - 1 - offset) // strides + 1) if offset <= T - 1 else 0
        if t0 < t1:
            steps.append((k, t0, t1, t0 * strides + offset))
    return steps


# --- vectorised forward and backward ----------------------------------------------
def conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """Pre-activations z of a 1-D convolution, vectorised.

    z[b, t, f] = sum_{k, d} x_pad[b, t*s + k*r, d] W[k, d, f] + bias[f]

    1. the windows (B, T_out, K', D): for each live tap k (``tap_steps``), one
       strided slice of x copied in, x[:, p0 : ... : s]; where a tap reads the
       padding the windows keep zeros, so x_pad is never built;
    2. one product: windows (B*T_out, K'*D) @ W[live taps] (K'*D, F) -> (B*T_out, F).

    Parameters: x (B, T, D), kernel (K, D, F), bias (F,) or None.
    Returns z (B, T_out, F) and the cache (windows, x.shape, tap steps) for
    ``conv1d_backward``.
    """
    xp = backend.xp
    B, T, D = x.shape
    K, _, F = kernel.shape
    left, _ = conv1d_padding(T, K, strides, padding, dilation_rate)
    T_out = conv1d_output_length(T, K, strides, padding, dilation_rate)
    steps = tap_steps(T, T_out, K, strides, dilation_rate, left)
    windows = xp.zeros((B, T_out, len(steps), D), x.dtype)                 # (B, T_out, K', D)
    for j, (_, t0, t1, p0) in enumerate(steps):
        windows[:, t0:t1, j] = x[:, p0:p0 + (t1 - t0 - 1) * strides + 1:strides]
    live = kernel[[k for k, *_ in steps]]                                   # (K', D, F)
    z = windows.reshape(B * T_out, -1) @ live.reshape(-1, F)              # (B*T_out, F)
    if bias is not None:
        z += bias
    return z.reshape(B, T_out, F), (windows, x.shape, steps)


def conv1d_backward(dz, cache, kernel, strides=1, dilation_rate=1):
    """Gradients of ``conv1d_forward`` given dz = dL/dz (B, T_out, F).

    dW[k, d, f] = sum_{b, t} x_pad[b, t*s + k*r, d] dz[b, t, f]   (windows^T dz, one product)
    dbias[f]    = sum_{b, t} dz[b, t, f]
    dx[b, t*s + k*r - left, d] += sum_f dz[b, t, f] W[k, d, f]     (scattered back, one slice per tap)

    Returns (dx (B, T, D), dkernel (K, D, F), dbias (F,)); the padding's
    gradient is never formed, and a tap that read only padding gets zeros.
    """
    xp = backend.xp
    windows, (B, T, D), steps = cache
    K, _, F = kernel.shape
    T_out = dz.shape[1]
    taps = [k for k, *_ in steps]
    dz2 = dz.reshape(B * T_out, F)                                          # (B*T_out, F)
    dkernel = xp.zeros_like(kernel)
    dkernel[taps] = (windows.reshape(B * T_out, -1).T @ dz2).reshape(-1, D, F)  # (K', D, F)
    dbias = dz2.sum(axis=0)                                                 # (F,)
    dwindows = (dz2 @ kernel[taps].reshape(-1, F).T).reshape(B, T_out, -1, D)  # (B, T_out, K', D)
    # Tap k of output steps t0..t1 read x[p0], x[p0 + s], ...: one strided
    # slice, so one slice-add per tap scatters the gradient back (K is small;
    # overlapping taps of different k add up correctly).
    dx = xp.zeros((B, T, D), dtype=dwindows.dtype)
    for j, (_, t0, t1, p0) in enumerate(steps):
        dx[:, p0:p0 + (t1 - t0 - 1) * strides + 1:strides] += dwindows[:, t0:t1, j]
    return dx, dkernel, dbias


# --- the naive twin ------------------------------------------------------------------
def conv1d_forward_naive(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """The same z as ``conv1d_forward``, one (b, t, k) at a time, for reading and testing.

    Padding is implicit: a tap that falls outside 0 <= t*s + k*r - left < T reads zero.
    """
    xp = backend.xp
    B, T, D = x.shape
    K, _, F = kernel.shape
    left, _ = conv1d_padding(T, K, strides, padding, dilation_rate)
    T_out = conv1d_output_length(T, K, strides, padding, dilation_rate)
    z = xp.zeros((B, T_out, F), dtype=xp.result_type(x, kernel))
    for b in range(B):
        for t in range(T_out):
            for k in range(K):
                i = t * strides + k * dilation_rate - left  # input step read by tap k
                if 0 <= i < T:
                    z[b, t] += x[b, i] @ kernel[k]           # (D,) @ (D, F) -> (F,)
            if bias is not None:
                z[b, t] += bias
    return z


def conv1d_backward_naive(x, kernel, dz, strides=1, padding="valid", dilation_rate=1):
    """The same (dx, dkernel, dbias) as ``conv1d_backward``, one (b, t, k) at a time."""
    xp = backend.xp
    B, T, D = x.shape
    K, _, F = kernel.shape
    left, _ = conv1d_padding(T, K, strides, padding, dilation_rate)
    dx, dkernel = xp.zeros(x.shape, dtype=dz.dtype), xp.zeros(kernel.shape, dtype=dz.dtype)
    for b in range(B):
        for t in range(dz.shape[1]):
            for k in range(K):
                i = t * strides + k * dilation_rate - left
                if 0 <= i < T:
                    dkernel[k] += xp.outer(x[b, i], dz[b, t])  # (D, F)
                    dx[b, i] += kernel[k] @ dz[b, t]           # (D, F) @ (F,) -> (D,)
    return dx, dkernel, dz.sum(axis=(0, 1))


# --- the layer -----------------------------------------------------------------------
class Conv1D(Layer):
    """1-D convolution over time, as Keras's ``Conv1D``: (B, T, D) -> (B, T_out, F).

    y[b, t, f] = act( sum_{k, d} x_pad[b, t*s + k*r, d] W[k, d, f] + bias[f] )

    Keras weights: kernel (K, D, F) (glorot_uniform, fans K*D and K*F), bias (F,) (zeros).
    ``padding`` is "valid", "same" or "causal"; output lengths and padding are in
    the module docstring. Backward, with dz = dy * act'(z) read from the cached y,
    is ``conv1d_backward``.

    Unlike Keras (whose TensorFlow kernels refuse it), strides > 1 together with
    dilation_rate > 1 is allowed: the equation above covers it.

    Examples
    --------
    >>> wavenet = [Conv1D(20, 2, padding="causal", activation="relu", dilation_rate=r)
    ...            for r in (1, 2, 4, 8) * 2] + [Conv1D(10, 1)]
    """

    weight_names = ("kernel", "bias")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = validation.positive_int(filters, "Conv1D filters")
        self.kernel_size = validation.positive_int(_single(kernel_size), "Conv1D kernel_size")
        self.strides = validation.positive_int(_single(strides), "Conv1D strides")
        self.dilation_rate = validation.positive_int(_single(dilation_rate), "Conv1D dilation_rate")
        if not isinstance(padding, str) or padding.lower() not in PADDINGS:
            raise ValueError(f"padding must be one of 'valid', 'same', 'causal', got {padding!r}")
        self.padding = padding.lower()
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        self._check_shape(input_shape)
        D = input_shape[-1]
        if D is None:
            raise ValueError(f"{self.name}: Conv1D needs the number of input features D; got shape "
                             f"(B, T, D) = {tuple(input_shape)}")
        self.add_param("kernel", initializers.glorot_uniform((self.kernel_size, D, self.filters)))
        if self.use_bias:
            self.add_param("bias", initializers.zeros((self.filters,)))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        self._check_shape(input_shape)
        T = input_shape[1]
        if T is not None:
            self._check_length(input_shape)
        T_out = conv1d_output_length(T, self.kernel_size, self.strides, self.padding, self.dilation_rate)
        return (input_shape[0], T_out, self.filters)

    def forward(self, x, training=False):
        self._check_shape(x.shape)
        D = self.params["kernel"].shape[1]
        if x.shape[-1] != D:
            raise ValueError(
                f"{self.name}: built for inputs (B, T, D) with D={D} features, got shape "
                f"{tuple(x.shape)} with D={x.shape[-1]}"
            )
        self._check_length(x.shape)
        z, conv_cache = conv1d_forward(x, self.params["kernel"], self.params.get("bias"),
                                       self.strides, self.padding, self.dilation_rate)
        y = self.activation.forward(z)
        self._remember((conv_cache, y))
        return y

    def backward(self, dy):
        conv_cache, y = self._recall()
        dz = self.activation.backward(y, dy)                        # (B, T_out, F)
        dx, dkernel, dbias = conv1d_backward(dz, conv_cache, self.params["kernel"],
                                             self.strides, self.dilation_rate)
        self.grads["kernel"] += dkernel                             # (K, D, F)
        if self.use_bias:
            self.grads["bias"] += dbias                             # (F,)
        return dx                                                   # (B, T, D)

    def _check_length(self, shape):
        """A valid-padded T shorter than the kernel's span is a ValueError naming layer and shape."""
        try:
            conv1d_padding(shape[1], self.kernel_size, self.strides, self.padding, self.dilation_rate)
        except ValueError as err:
            raise ValueError(f"{self.name}: inputs (B, T, D) = {tuple(shape)}: {err}") from None

    def _check_shape(self, shape):
        if len(shape) == 3 and shape[1] == 0:
            raise ValueError(f"{self.name}: the input has zero time steps (shape {tuple(shape)})")
        if len(shape) != 3:
            hint = (" For one feature per step add an axis: x[..., None] (shape (B, T, 1))."
                    if len(shape) == 2 else "")
            raise ValueError(
                f"{self.name}: Conv1D expects 3-D inputs (B, T, D) (batch, time steps, features), "
                f"got {len(shape)}-D shape {tuple(shape)}.{hint}"
            )

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "activation": self.activation.name, "use_bias": self.use_bias}


def _single(value):
    """Keras also accepts a 1-tuple, e.g. kernel_size=(3,)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        return value[0]
    return value
