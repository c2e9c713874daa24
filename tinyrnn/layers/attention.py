"""Attention: every query position reads a weighted average of the values.

Shapes: B batch, Tq query steps, Tv value (key) steps, D features
(Dq query, Dv value, Dk key), N heads.

Every attention layer here is the same three steps, with the backward of
each written beside it:

1. scores ``S = score(Q, K)``                      (B, Tq, Tv), one per (query, key) pair;
2. weights ``A = softmax(S)`` over the keys          (B, Tq, Tv), each row sums to 1,
   with masked keys pushed to a large negative score (-1e9, as Keras), so
   ``exp`` gives them weight 0 (and, through ``A``, gradient 0);
3. output ``O = A V``                                 (B, Tq, Dv), a weighted sum of the values.

The backward runs the steps in reverse:

3'. ``dA = dO V^T``,  ``dV = A^T dO``;
2'. softmax's Jacobian-vector product, row by row,
    ``dS = A * (dA - sum_j A_j dA_j)`` (a masked key has A = 0, so dS = 0 there);
1'. the score's own backward gives dQ and dK (and its weights' gradients).

``Attention`` scores by a dot product (Luong), ``AdditiveAttention`` by
``sum tanh(q + k)`` (Bahdanau), ``MultiHeadAttention`` projects Q, K, V into
N heads of scaled dot-product attention and projects their concatenation back
(the Transformer's layer). Call signatures, masks and weight layouts are
Keras 3's, so Keras code and weights carry over.
"""

from __future__ import annotations

import math

import numpy

from tinyrnn import backend, initializers, validation
from tinyrnn.graph import Value
from tinyrnn.layers.base import Layer
from tinyrnn.layers.core import _rate, dropout_mask

LARGE_NEGATIVE = 1e9
"""How far below the others a masked score is pushed (Keras's value): exp(-1e9) is exactly 0."""


# --- the pieces every attention layer shares, forward and backward side by side ----------------
def softmax_forward(s):
    """A = softmax(S) over the last axis (the keys): A_j = exp(S_j - max S) / sum_k exp(S_k - max S)."""
    e = backend.xp.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(a, da):
    """dS = J^T dA for A = softmax(S), J_jk = A_j (delta_jk - A_k):  dS_j = A_j (dA_j - sum_k A_k dA_k)."""
    return a * (da - (a * da).sum(axis=-1, keepdims=True))


def causal_mask(tq: int, tv: int):
    """(1, Tq, Tv) bool: query step i may attend to key step j only when j <= i (Keras's)."""
    return backend.xp.tril(backend.xp.ones((tq, tv), dtype=bool))[None]


def _bool_mask(mask, shape, what: str, layer):
    """``mask`` (bool, or numbers where nonzero means kept) checked to be ``shape``, as bool."""
    if mask is None:
        return None
    mask = mask if backend.is_array(mask) else numpy.asarray(mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{layer.name}: {what} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    return backend.xp.asarray(mask) != 0


def _query_value_key(layer, inputs):
    """[query, value(, key)] checked as sequences with the same Tv for key and value:
    (the list, query, value, key), the key being the value when not given."""
    inputs = _input_list(layer, inputs)
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(inputs) == 3 else value
    _check_sequences(layer, inputs, ["query", "value", "key"][:len(inputs)])
    if key.shape[1] != value.shape[1]:
        raise ValueError(f"{layer.name}: key and value need the same number of steps Tv, got key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)}")
    return inputs, query, value, key


def _check_sequences(layer, inputs, names):
    """Each input (B, T, D), one batch size for all."""
    for x, name in zip(inputs, names):
        if x.ndim != 3:
            raise ValueError(f"{layer.name}: {name} must be a sequence (B, T, D), got shape {tuple(x.shape)}")
    if len({x.shape[0] for x in inputs}) != 1:
        raise ValueError(f"{layer.name}: {', '.join(names)} must have the same batch size B, got shapes "
                         f"{[tuple(x.shape) for x in inputs]}")


def _input_list(layer, inputs):
    """``[query, value]`` or ``[query, value, key]``, as Keras asks."""
    if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
        got = f"a list of {len(inputs)}" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
        raise ValueError(f"{layer.name}: {type(layer).__name__} takes a list [query, value] or "
                         f"[query, value, key], got {got}")
    return list(inputs)


MASK_INPUT = "<mask input>"
"""Marks, in a call's masks, a mask that travels as an extra input (see ``_masks_as_inputs``)."""


def _masks_as_inputs(inputs, masks):
    """Masks that are graph ``Value``s (an ``Input``, another layer's output) join the inputs after
    query, value (and key), so that a functional model records and replays them like any input; their
    places in ``masks`` keep the marker ``MASK_INPUT``. Returns (inputs, masks)."""
    travelling = [m for m in masks if isinstance(m, Value)]
    return [*inputs, *travelling], [MASK_INPUT if isinstance(m, Value) else m for m in masks]


def _masks_from_inputs(inputs, masks):
    """The inverse of ``_masks_as_inputs``: (the inputs without the masks, the masks in their places)."""
    marked = [isinstance(m, str) and m == MASK_INPUT for m in masks]
    if not any(marked):
        return list(inputs), list(masks)
    travelled = iter(inputs[-sum(marked):])
    return list(inputs[:-sum(marked)]), [next(travelled) if mark else m for m, mark in zip(masks, marked)]


class _CallOptions:
    """While a layer is called (and maybe built, or called on symbolic values), what ``build`` and
    ``compute_output_shape`` must know of the call: whether the scores are returned, and how many
    of the inputs are masks that travel with them."""

    def __init__(self, layer, returns_scores, n_mask_inputs):
        self.layer, self.options = layer, (bool(returns_scores), n_mask_inputs)

    def __enter__(self):
        self.layer._returns_scores, self.layer._n_mask_inputs = self.options

    def __exit__(self, *exc):
        self.layer._returns_scores, self.layer._n_mask_inputs = False, 0
        return False


def _data_shapes(layer, input_shape):
    """The shapes of query, value (and key), without those of masks travelling as inputs."""
    shapes = list(input_shape)
    return _input_list(layer, shapes[:len(shapes) - layer._n_mask_inputs])


# --- Luong and Bahdanau: one mechanism, two score functions ------------------------------------
class _DotAttentionBase(Layer):
    """Steps 2 and 3 (masked softmax, weighted sum) and the query mask; subclasses give the score.

    A subclass defines ``score_forward(q, k) -> (S, cache)`` and
    ``score_backward(dS, cache) -> (dq, dk)`` (adding its weights' gradients).
    """

    supports_masking = True
    _returns_scores, _n_mask_inputs = False, 0

    def __init__(self, use_scale=False, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)
        self.dropout = _rate(dropout)
        self.seed = seed   # kept for Keras's config; tinyrnn's seeded generator draws the dropout masks

    def __call__(self, inputs, mask=None, training=None, return_attention_scores=False,
                 use_causal_mask=False):
        """``layer([query, value(, key)], mask=[query_mask, value_mask], ...)``, Keras's call."""
        if isinstance(mask, (list, tuple)):
            inputs, mask = _masks_from_inputs(inputs, mask)     # a functional model replaying the call
        inputs = _input_list(self, inputs)
        n_data = len(inputs)
        options = {"return_attention_scores": return_attention_scores, "use_causal_mask": use_causal_mask}
        if mask is not None:
            if isinstance(mask, (list, tuple)):
                inputs, mask = _masks_as_inputs(inputs, mask)
            options["mask"] = mask
        with _CallOptions(self, return_attention_scores, len(inputs) - n_data):
            return super().__call__(inputs, training=training, **options)

    def build(self, input_shape):
        shapes = _data_shapes(self, input_shape)
        query, key = tuple(shapes[0]), tuple(shapes[-1])
        if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
            raise self._mismatch_error(query[-1], key[-1], len(shapes) == 3)
        self.build_scores(query[-1])
        super().build(shapes)

    def build_scores(self, dim) -> None:
        """Create the score's weights for query / key feature size ``dim``."""

    def compute_output_shape(self, input_shape):
        query, value = tuple(input_shape[0]), tuple(input_shape[1])
        output = (*query[:-1], value[-1])                  # (B, Tq, Dv)
        return [output, (*query[:-1], value[-2])] if self._returns_scores else output

    def compute_mask(self, inputs, mask=None):
        """The query mask: the output has one step per query step (Keras's)."""
        if isinstance(mask, (list, tuple)):
            inputs, mask = _masks_from_inputs(inputs, mask)     # masks that travelled as inputs
        return None if mask is None or mask[0] is None else backend.xp.asarray(mask[0]) != 0

    def _mismatch_error(self, dq, dk, key_given):
        key = "key" if key_given else "value (the key, since no key was given)"
        return ValueError(
            f"{self.name}: {type(self).__name__} compares each query with each key feature by feature, so "
            f"they need the same feature size D; the query has D={dq}, the {key} has D={dk}. Project one "
            f"to the other's size first (e.g. Dense({dq})(key), passed as [query, value, key]), or use "
            "MultiHeadAttention, which projects query and key itself")

    def forward(self, inputs, training=False, mask=None, return_attention_scores=False,
                use_causal_mask=False):
        """Attention of each query step over the value steps.

        Parameters
        ----------
        inputs : [query (B, Tq, D), value (B, Tv, Dv)] or [query, value, key (B, Tv, D)]
            Without a key, the value is the key too (the usual case).
        mask : [query_mask (B, Tq), value_mask (B, Tv)] or None
            bool (or 0/1). A False value step gets weight 0; a False query step gets output 0.
        return_attention_scores : also return the weights A (B, Tq, Tv) (after masking,
            softmax and dropout, as Keras).
        use_causal_mask : query step i attends only to value steps j <= i.

        Returns
        -------
        O (B, Tq, Dv), or [O, A] with ``return_attention_scores``.
        """
        n_given = len(inputs)
        if isinstance(mask, (list, tuple)):
            inputs, mask = _masks_from_inputs(inputs, mask)     # masks that travelled as inputs
        inputs, query, value, key = _query_value_key(self, inputs)
        if query.shape[-1] != key.shape[-1]:
            raise self._mismatch_error(query.shape[-1], key.shape[-1], len(inputs) == 3)
        query_mask, key_mask = self._masks(mask, query, value, use_causal_mask)

        s, score_cache = self.score_forward(query, key)                  # 1. S (B, Tq, Tv)
        if key_mask is not None:                                         #    masked keys: S - 1e9
            s = backend.xp.where(key_mask, s, s - s.dtype.type(LARGE_NEGATIVE))
        a = softmax_forward(s)                                           # 2. A (B, Tq, Tv)
        drop = dropout_mask(a.shape, self.dropout, a.dtype) if training and self.dropout > 0 else None
        a_used = a if drop is None else a * drop
        o = a_used @ value                                               # 3. O = A V (B, Tq, Dv)
        if query_mask is not None:
            o = o * query_mask[..., None]                                #    masked query steps: 0
        self._remember(((len(inputs), n_given), value, a, drop, a_used, query_mask, score_cache,
                        return_attention_scores))
        return [o, a_used] if return_attention_scores else o

    def backward(self, dy):
        """[dquery, dvalue] (or [dquery, dvalue, dkey]) from dO (and dA when the weights were returned)."""
        (n_inputs, n_given), value, a, drop, a_used, query_mask, score_cache, returned_scores = self._recall()
        do, da_used = (dy[0], dy[1]) if returned_scores else (dy, None)
        if query_mask is not None:
            do = do * query_mask[..., None]                              # O = m O': dO' = m dO
        da = do @ value.transpose(0, 2, 1)                               # 3'. dA = dO V^T   (B, Tq, Tv)
        dvalue = a_used.transpose(0, 2, 1) @ do                          #     dV = A^T dO   (B, Tv, Dv)
        if da_used is not None:
            da = da + da_used
        if drop is not None:
            da = da * drop                                               #     through dropout
        ds = softmax_backward(a, da)                                     # 2'. dS (B, Tq, Tv)
        dquery, dkey = self.score_backward(ds, score_cache)              # 1'. dQ, dK
        no_gradient = [None] * (n_given - n_inputs)                      # masks have none
        if n_inputs == 3:
            return [dquery, dvalue, dkey, *no_gradient]
        return [dquery, dvalue + dkey, *no_gradient]                     # the value was the key too

    def _masks(self, mask, query, value, use_causal_mask):
        """(query_mask (B, Tq) or None, key_mask (B, 1, Tv) or (B, Tq, Tv) or None), as bool."""
        query_mask = value_mask = None
        if mask is not None:
            if not isinstance(mask, (list, tuple)) or len(mask) not in (2, 3):
                raise ValueError(f"{self.name}: mask must be a list [query_mask, value_mask] (either may be "
                                 f"None), got {type(mask).__name__}")
            (batch, tq), tv = query.shape[:2], value.shape[1]
            query_mask = _bool_mask(mask[0], (batch, tq), "the query mask (B, Tq)", self)
            value_mask = _bool_mask(mask[1], (batch, tv), "the value mask (B, Tv)", self)
        key_mask = None if value_mask is None else value_mask[:, None, :]            # (B, 1, Tv)
        if use_causal_mask:
            causal = causal_mask(query.shape[1], value.shape[1])                    # (1, Tq, Tv)
            key_mask = causal if key_mask is None else key_mask & causal
        return (None if query_mask is None else query_mask.astype(query.dtype)), key_mask

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "dropout": self.dropout,
                "seed": self.seed}


class Attention(_DotAttentionBase):
    """Dot-product (Luong) attention, Keras's ``Attention``.

    Scores, for query q_i and key k_j (each D features):

    - ``score_mode="dot"``:     S_ij = s * (q_i . k_j)
    - ``score_mode="concat"``:  S_ij = c * sum_d tanh(s * (q_id + k_jd))

    with s the learned scalar ``scale`` when ``use_scale=True`` (else 1) and c the learned
    scalar ``concat_score_weight`` ("concat" only); both start at 1, as in Keras. Then
    A = softmax(S) over j (masked keys at -1e9) and O = A V (see the module docstring).

    Backward of the scores, from dS (B, Tq, Tv):

    - dot:    dQ = s dS K,  dK = s dS^T Q,  ds = sum dS * (Q K^T);
    - concat: with U = s (q_i + k_j) and T = tanh(U) (B, Tq, Tv, D):
      dc = sum dS * sum_d T,  dU = c dS (1 - T^2),  ds = sum dU (q_i + k_j),
      dq_i = s sum_j dU_ij,  dk_j = s sum_i dU_ij.

    Weights (Keras's order): ``scale`` () with ``use_scale``, then ``concat_score_weight`` ()
    with "concat". ``dropout`` drops attention weights in training (the returned scores are
    the dropped ones, as Keras's).
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"score_mode must be 'dot' or 'concat', got {score_mode!r}")
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)
        self.score_mode = score_mode

    def build_scores(self, dim):
        names = []
        if self.use_scale:
            self.add_param("scale", initializers.ones(()))
            names.append("scale")
        if self.score_mode == "concat":
            self.add_param("concat_score_weight", initializers.ones(()))
            names.append("concat_score_weight")
        self.weight_names = tuple(names)

    def score_forward(self, q, k):
        s = self.params["scale"] if self.use_scale else 1.0
        if self.score_mode == "dot":
            qk = q @ k.transpose(0, 2, 1)                                # Q K^T (B, Tq, Tv)
            return s * qk, (q, k, qk)
        pair = q[:, :, None, :] + k[:, None, :, :]                       # q_i + k_j (B, Tq, Tv, D)
        t = backend.xp.tanh(s * pair)                                    # T (B, Tq, Tv, D)
        return self.params["concat_score_weight"] * t.sum(axis=-1), (pair, t)

    def score_backward(self, ds, cache):
        s = self.params["scale"] if self.use_scale else 1.0
        if self.score_mode == "dot":
            q, k, qk = cache
            if self.use_scale:
                self.grads["scale"] += (ds * qk).sum()                   # dS/ds = Q K^T
            return s * ds @ k, s * ds.transpose(0, 2, 1) @ q             # (B, Tq, D), (B, Tv, D)
        pair, t = cache
        c = self.params["concat_score_weight"]
        self.grads["concat_score_weight"] += (ds * t.sum(axis=-1)).sum()  # dS/dc = sum_d T
        du = c * ds[..., None] * (1 - t * t)                             # dU = c dS tanh'(U)
        if self.use_scale:
            self.grads["scale"] += (du * pair).sum()                     # dU/ds = q_i + k_j
        return s * du.sum(axis=2), s * du.sum(axis=1)                    # sum over keys j, over queries i

    def get_config(self):
        return {**super().get_config(), "score_mode": self.score_mode}


class AdditiveAttention(_DotAttentionBase):
    """Additive (Bahdanau) attention, Keras's ``AdditiveAttention``.

    Scores, for query q_i and key k_j (each D features), with w the learned ``scale`` (D,)
    when ``use_scale=True`` (the default; Glorot-uniform, as Keras) and 1 otherwise:

        T_ijd = tanh(q_id + k_jd)           (B, Tq, Tv, D)
        S_ij  = sum_d w_d T_ijd             (B, Tq, Tv)

    then A = softmax(S) over j (masked keys at -1e9) and O = A V (see the module docstring).
    Keras leaves the query and key projections of Bahdanau's paper to Dense layers before it.

    Backward of the scores, from dS (B, Tq, Tv):

        dw = sum_{b,i,j} dS_ij T_ij,   dU_ijd = dS_ij w_d (1 - T_ijd^2),
        dq_i = sum_j dU_ij,            dk_j = sum_i dU_ij.
    """

    def __init__(self, use_scale=True, dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def build_scores(self, dim):
        if self.use_scale:
            self.add_param("scale", initializers.glorot_uniform((dim,)))
            self.weight_names = ("scale",)

    def score_forward(self, q, k):
        t = backend.xp.tanh(q[:, :, None, :] + k[:, None, :, :])        # T (B, Tq, Tv, D)
        w = self.params["scale"] if self.use_scale else 1.0
        return (w * t).sum(axis=-1), t                                   # S (B, Tq, Tv)

    def score_backward(self, ds, t):
        w = self.params["scale"] if self.use_scale else 1.0
        if self.use_scale:
            self.grads["scale"] += (ds[..., None] * t).sum(axis=(0, 1, 2))   # dS/dw_d = T_d   (D,)
        du = ds[..., None] * w * (1 - t * t)                             # dU = dS w tanh'(U)  (B, Tq, Tv, D)
        return du.sum(axis=2), du.sum(axis=1)                            # dq_i: sum over j; dk_j: over i


# --- multi-head attention: the Transformer's layer ----------------------------------------------
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention, Keras's ``MultiHeadAttention``.

    Shapes: query (B, Tq, Dq), value (B, Tv, Dv), key (B, Tv, Dk) (the value when not
    given); N = ``num_heads``, Hk = ``key_dim``, Hv = ``value_dim`` (default Hk), E the
    output features (``output_shape``, default Dq).

    Forward (n indexes heads, einsum letters as in the code):

        Q_n = query Wq_n + bq_n            (B, Tq, N, Hk)   Wq (Dq, N, Hk), bq (N, Hk)
        K_n = key   Wk_n + bk_n            (B, Tv, N, Hk)   Wk (Dk, N, Hk), bk (N, Hk)
        V_n = value Wv_n + bv_n            (B, Tv, N, Hv)   Wv (Dv, N, Hv), bv (N, Hv)
        S_n = (Q_n / sqrt(Hk)) K_n^T       (B, N, Tq, Tv)
        A_n = softmax(S_n) over the keys, masked entries set to -1e9 before and to 0 after
        C_n = A_n V_n                      (B, Tq, N, Hv)   (A_n after dropout in training)
        y   = sum_n C_n Wo_n + bo          (B, Tq, E)       Wo (N, Hv, E), bo (E,)

    Backward: dWo = C^T dy, dC = dy Wo^T; dA = dC V^T, dV = A^T dC; dS = softmax's
    Jacobian-vector product (0 at masked entries); dQ = dS K / sqrt(Hk), dK = dS^T Q / sqrt(Hk);
    then each projection as a Dense layer: dW = x^T dP, db = sum dP, dx = dP W^T.

    Call: ``mha(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False)``, as Keras; ``query_mask``, ``value_mask``,
    ``key_mask`` (B, T) join the attention mask as Keras joins the inputs' masks
    (query (B, Tq, 1), value and key (B, 1, Tv)), and ``attention_mask`` (B, Tq, Tv) or
    (Tq, Tv), True where query step i may attend to key step j. The scores returned are the
    weights A (B, N, Tq, Tv), before dropout (Keras's).

    Weights in Keras's order: query kernel, query bias, key kernel, key bias, value kernel,
    value bias, output kernel, output bias (no biases with ``use_bias=False``), so
    ``set_weights(keras_layer.get_weights())`` loads a Keras layer. Only sequences (rank 3)
    are taken (Keras's ``attention_axes`` for higher ranks is not implemented).
    """

    supports_masking = True
    _returns_scores, _n_mask_inputs = False, 0
    _PROJECTIONS = ("query", "key", "value")
    _MASKS = ("query_mask", "value_mask", "key_mask", "attention_mask")

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = validation.positive_int(num_heads, "num_heads")
        self.key_dim = validation.positive_int(key_dim, "key_dim")
        self.value_dim = key_dim if value_dim is None else validation.positive_int(value_dim, "value_dim")
        self.dropout = _rate(dropout)
        self.use_bias = bool(use_bias)
        if isinstance(output_shape, (int, numpy.integer)):
            output_shape = (output_shape,)
        self.output_shape = None if not output_shape else tuple(
            validation.positive_int(n, "output_shape") for n in output_shape)
        self.seed = seed

    def __call__(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
                 attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False):
        """``mha(query, value, key=None, ...)``: Keras's call, on arrays or on values.

        ``mha([query, value(, key)], ...)`` works too (a functional model replays the call so)."""
        if value is None:
            if not isinstance(query, (list, tuple)):
                raise TypeError(f"{self.name}: MultiHeadAttention needs a value: mha(query, value) "
                                "(self-attention: mha(x, x))")
            inputs = list(query)
        else:
            inputs = [query, value] if key is None else [query, value, key]
        masks = [query_mask, value_mask, key_mask, attention_mask]
        inputs, masks = _masks_from_inputs(inputs, masks)          # a functional model replaying the call
        n_data = len(_input_list(self, inputs))
        inputs, masks = _masks_as_inputs(inputs, masks)            # masks from the graph travel as inputs
        options = {name: m for name, m in zip(self._MASKS, masks) if m is not None}
        options.update(return_attention_scores=return_attention_scores, use_causal_mask=use_causal_mask)
        with _CallOptions(self, return_attention_scores, len(inputs) - n_data):
            return super().__call__(inputs, training=training, **options)

    def build(self, input_shape):
        shapes = [tuple(s) for s in _data_shapes(self, input_shape)]
        query, value = shapes[0], shapes[1]
        key = shapes[2] if len(shapes) == 3 else value
        for shape, name in zip((query, value, key), ("query", "value", "key")):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(f"{self.name}: MultiHeadAttention takes sequences (B, T, D) with D known, "
                                 f"got {name} of shape {shape}")
        n, hk, hv = self.num_heads, self.key_dim, self.value_dim
        out = self.output_shape or (query[-1],)
        sizes = {"query": (query[-1], hk), "key": (key[-1], hk), "value": (value[-1], hv)}
        names = []
        for proj in self._PROJECTIONS:
            d, h = sizes[proj]
            self.add_param(f"{proj}_kernel", initializers.glorot_uniform((d, n, h)))
            names.append(f"{proj}_kernel")
            if self.use_bias:
                self.add_param(f"{proj}_bias", initializers.zeros((n, h)))
                names.append(f"{proj}_bias")
        self.add_param("output_kernel", initializers.glorot_uniform((n, hv, *out)))
        names.append("output_kernel")
        if self.use_bias:
            self.add_param("output_bias", initializers.zeros(out))
            names.append("output_bias")
        self.weight_names = tuple(names)
        super().build(shapes)

    def compute_output_shape(self, input_shape):
        query, value = tuple(input_shape[0]), tuple(input_shape[1])
        output = (*query[:-1], *(self.output_shape or (query[-1],)))        # (B, Tq, E)
        scores = (query[0], self.num_heads, query[1], value[1])              # (B, N, Tq, Tv)
        return [output, scores] if self._returns_scores else output

    def compute_mask(self, inputs, mask=None):
        """The query's mask, if any (the output has the query's steps)."""
        return None if mask is None else mask[0]

    # the three projections and the output projection: Dense layers with a (N, H) output
    def _project(self, name, x):
        """P = x W + b: (B, T, D) x (D, N, H) -> (B, T, N, H)."""
        p = backend.xp.einsum("btd,dnh->btnh", x, self.params[f"{name}_kernel"])
        return p + self.params[f"{name}_bias"] if self.use_bias else p

    def _project_backward(self, name, x, dp):
        """dW = x^T dP (D, N, H), db = sum_{b,t} dP (N, H); returns dx = dP W^T (B, T, D)."""
        self.grads[f"{name}_kernel"] += backend.xp.einsum("btd,btnh->dnh", x, dp)
        if self.use_bias:
            self.grads[f"{name}_bias"] += dp.sum(axis=(0, 1))
        return backend.xp.einsum("btnh,dnh->btd", dp, self.params[f"{name}_kernel"])

    def forward(self, inputs, training=False, query_mask=None, value_mask=None, key_mask=None,
                attention_mask=None, return_attention_scores=False, use_causal_mask=False, mask=None):
        """y (B, Tq, E), or [y, A (B, N, Tq, Tv)] with ``return_attention_scores``.

        ``inputs`` [query, value] or [query, value, key]; ``mask`` [query_mask, value_mask(,
        key_mask)] is another way to give the inputs' masks (the mask flow's). See the class
        docstring for the masks.
        """
        n_given = len(inputs)
        inputs, (query_mask, value_mask, key_mask, attention_mask) = _masks_from_inputs(
            inputs, [query_mask, value_mask, key_mask, attention_mask])   # masks that travelled as inputs
        inputs, query, value, key = _query_value_key(self, inputs)
        if mask is not None:
            query_mask, value_mask, key_mask = (list(mask) + [None, None, None])[:3]
        allowed = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask,
                                       use_causal_mask)                  # (B or 1, 1, Tq, Tv) bool, or None
        q = self._project("query", query) / math.sqrt(self.key_dim)      # Q / sqrt(Hk) (B, Tq, N, Hk)
        k = self._project("key", key)                                    # K (B, Tv, N, Hk)
        v = self._project("value", value)                                # V (B, Tv, N, Hv)
        s = backend.xp.einsum("bsnh,btnh->bnts", k, q)                   # S (B, N, Tq, Tv)
        if allowed is not None:
            s = backend.xp.where(allowed, s, s.dtype.type(-LARGE_NEGATIVE))
        a = softmax_forward(s)                                           # A (B, N, Tq, Tv)
        if allowed is not None:
            a = backend.xp.where(allowed, a, a.dtype.type(0))            # a fully masked row gives 0
        drop = dropout_mask(a.shape, self.dropout, a.dtype) if training and self.dropout > 0 else None
        a_used = a if drop is None else a * drop
        c = backend.xp.einsum("bnts,bsnh->btnh", a_used, v)              # C (B, Tq, N, Hv)
        wo = self.params["output_kernel"]
        y = backend.xp.einsum("btnh,nhe->bte", c, wo.reshape(wo.shape[0], wo.shape[1], -1))
        if self.use_bias:
            y = y + self.params["output_bias"].reshape(-1)
        y = y.reshape(*y.shape[:2], *wo.shape[2:])                       # (B, Tq, E)
        self._remember(((len(inputs), n_given), query, key, value, q, k, v, a, allowed, drop, a_used, c,
                        return_attention_scores))
        return [y, a] if return_attention_scores else y

    def backward(self, dy):
        """[dquery, dvalue] (or [dquery, dvalue, dkey]) from dy (and dA when the scores were returned)."""
        ((n_inputs, n_given), query, key, value, q, k, v, a, allowed, drop, a_used, c,
         returned_scores) = self._recall()
        dy, da_returned = (dy[0], dy[1]) if returned_scores else (dy, None)
        wo = self.params["output_kernel"]
        wo3 = wo.reshape(wo.shape[0], wo.shape[1], -1)                   # (N, Hv, E)
        dy = dy.reshape(*dy.shape[:2], -1)                               # (B, Tq, E)
        self.grads["output_kernel"] += backend.xp.einsum("btnh,bte->nhe", c, dy).reshape(wo.shape)
        if self.use_bias:
            self.grads["output_bias"] += dy.sum(axis=(0, 1)).reshape(self.params["output_bias"].shape)
        dc = backend.xp.einsum("bte,nhe->btnh", dy, wo3)                 # dC (B, Tq, N, Hv)
        da = backend.xp.einsum("btnh,bsnh->bnts", dc, v)                 # dA = dC V^T (B, N, Tq, Tv)
        dv = backend.xp.einsum("bnts,btnh->bsnh", a_used, dc)            # dV = A^T dC (B, Tv, N, Hv)
        if drop is not None:
            da = da * drop
        if da_returned is not None:
            da = da + da_returned
        ds = softmax_backward(a, da)                                     # dS (0 where A = 0: masked)
        if allowed is not None:
            ds = backend.xp.where(allowed, ds, 0.0)
        dq = backend.xp.einsum("bnts,bsnh->btnh", ds, k) / math.sqrt(self.key_dim)   # dQ (B, Tq, N, Hk)
        dk = backend.xp.einsum("bnts,btnh->bsnh", ds, q)                 # dK (B, Tv, N, Hk)
        dquery = self._project_backward("query", query, dq)
        dkey = self._project_backward("key", key, dk)
        dvalue = self._project_backward("value", value, dv)
        no_gradient = [None] * (n_given - n_inputs)                      # masks have none
        if n_inputs == 3:
            return [dquery, dvalue, dkey, *no_gradient]
        return [dquery, dvalue + dkey, *no_gradient]                     # the value was the key too

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask, causal):
        """Every mask joined with AND into (B or 1, 1, Tq, Tv) bool (the 1 broadcasts over heads)."""
        (batch, tq), tv = query.shape[:2], value.shape[1]
        parts = []
        if query_mask is not None:
            parts.append(_bool_mask(query_mask, (batch, tq), "query_mask (B, Tq)", self)[:, :, None])
        for m, what in ((value_mask, "value_mask (B, Tv)"), (key_mask, "key_mask (B, Tv)")):
            if m is not None:
                parts.append(_bool_mask(m, (batch, tv), what, self)[:, None, :])
        if causal:
            parts.append(causal_mask(tq, tv))
        if attention_mask is not None:
            m = attention_mask if backend.is_array(attention_mask) else numpy.asarray(attention_mask)
            shape = tuple(m.shape)
            if shape not in ((batch, tq, tv), (tq, tv), (1, tq, tv)):
                raise ValueError(f"{self.name}: attention_mask must have shape (B, Tq, Tv) = "
                                 f"{(batch, tq, tv)} (or (Tq, Tv)), got {shape}")
            parts.append(_bool_mask(m, shape, "attention_mask", self).reshape(-1, tq, tv))
        if not parts:
            return None
        allowed = parts[0]
        for part in parts[1:]:
            allowed = allowed & part
        return allowed[:, None]                                          # (B or 1, 1, Tq, Tv)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": None if self.output_shape is None else list(self.output_shape),
                "seed": self.seed}
