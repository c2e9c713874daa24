"""Take weights between tinyrnn, Keras and PyTorch.

Keras: tinyrnn's layout *is* Keras's (same ``get_weights()`` order, shapes and
gate order), so ``load_from_keras(ours, keras_layer)`` is just
``ours.set_weights(keras_layer.get_weights())``.

PyTorch stores the same numbers in a different layout. Shapes use B batch,
T time, D input features, H units, K kernel width, F filters; G is the number
of gates (1 SimpleRNN, 4 LSTM, 3 GRU).

=================  ==================================  ======================================
layer              tinyrnn / Keras                      PyTorch (``module.state_dict()``)
=================  ==================================  ======================================
SimpleRNN          kernel (D, H)                        weight_ih_l0 (H, D)     = kernel.T
(nn.RNN)           recurrent_kernel (H, H)              weight_hh_l0 (H, H)     = recurrent_kernel.T
                   bias (H,)                            bias_ih_l0 (H,), bias_hh_l0 (H,)
LSTM               kernel (D, 4H), gates i f c o        weight_ih_l0 (4H, D), gates i f g o
(nn.LSTM)          recurrent_kernel (H, 4H)             weight_hh_l0 (4H, H)
                   bias (4H,)                           bias_ih_l0 (4H,), bias_hh_l0 (4H,)
GRU                kernel (D, 3H), gates z r h          weight_ih_l0 (3H, D), gates r z n
(nn.GRU)           recurrent_kernel (H, 3H)             weight_hh_l0 (3H, H)
reset_after=True   bias (2, 3H): [input, recurrent]     bias_ih_l0 (3H,), bias_hh_l0 (3H,)
Dense (nn.Linear)  kernel (D, H), bias (H,)             weight (H, D) = kernel.T, bias (H,)
Conv1D (nn.Conv1d) kernel (K, D, F), bias (F,)          weight (F, D, K), bias (F,)
=================  ==================================  ======================================

The three rules behind the table:

1. **Transpose.** Keras multiplies ``x @ kernel`` (row vectors); PyTorch
   multiplies ``W @ x`` (column vectors), so every weight matrix is transposed.
   A Conv1d weight reverses all three axes: ``weight[f, d, k] = kernel[k, d, f]``
   (both frameworks compute a cross-correlation, so no kernel is flipped).
2. **Reorder the gates.** The gate blocks are stacked along the kernel's
   columns (Keras) or the weight's rows (PyTorch). LSTM uses the same order in
   both (Keras calls the candidate c, PyTorch g). GRU does not: Keras stacks
   z (update), r (reset), h (candidate); PyTorch stacks r, z, n. The blocks
   are swapped, never their contents.
3. **Split or merge the biases.** PyTorch has two biases per layer, both added
   to the pre-activation. SimpleRNN and LSTM have one in Keras, so exporting
   puts it in ``bias_ih`` and zeros in ``bias_hh``, and importing adds them:
   ``bias = bias_ih + bias_hh`` (the same function, different numbers).
   A GRU with ``reset_after=True`` really has two (the recurrent one sits
   inside ``r * (h U_h + b_h)``), stored as the rows of Keras's (2, 3H) bias.
   The original GRU (``reset_after=False``) resets h *before* the recurrent
   product; PyTorch has no such layer, so converting it raises ValueError.

PyTorch's recurrent modules have ``_l0`` in their names because they can
stack layers; only single-layer, unidirectional modules map onto one tinyrnn
layer. Their output is a tuple ``(all h_t, final states)``.

The functions, from the most to the least convenient:

- ``to_torch_module(layer)``: a new nn.RNN / nn.LSTM / nn.GRU / nn.Linear /
  nn.Conv1d holding the layer's weights; ``load_from_torch(layer, module)``
  the way back (building ``layer`` from the module's shapes if needed).
- ``to_torch_state_dict(layer)`` / ``load_torch_state_dict(layer, sd)``: the
  weights alone, keyed like the module's ``state_dict()``;
  ``to_torch_state_dicts(model)`` does every layer of a Sequential model.
- ``keras_to_torch_weights`` / ``torch_to_keras_weights`` and
  ``reorder_gates``: the same rules on plain NumPy arrays.
- ``load_from_keras(ours, keras_obj)``: copy from Keras (no conversion).

PyTorch is imported only inside the functions that return or read torch
objects, so ``import tinyrnn.interop`` works without it.

Examples
--------
>>> lstm = LSTM(4, return_sequences=True); lstm.build((None, None, 3))
>>> torch_lstm = to_torch_module(lstm)          # nn.LSTM(3, 4, batch_first=True)
>>> y_torch, (h_n, c_n) = torch_lstm(torch.from_numpy(x))
>>> load_from_torch(LSTM(4), torch_lstm)        # and back
"""

from __future__ import annotations

import numpy

from tinyrnn import backend
from tinyrnn.layers.core import Dense, TimeDistributed
from tinyrnn.layers.recurrent import RNN, GRUCell, LSTMCell, SimpleRNNCell

KERAS_GATES = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}
"""Gate blocks along the kernel's last axis, in Keras (and tinyrnn) order."""

TORCH_GATES = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("r", "z", "h")}
"""The same gates in PyTorch's order, in Keras's names (PyTorch's g is c, n is h)."""

_TORCH_CLASS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "dense": "Linear", "conv1d": "Conv1d"}
_RECURRENT = ("rnn", "lstm", "gru")


# --- the layout rules, in NumPy ------------------------------------------------------
def reorder_gates(a, source, target, axis=-1):
    """Permute the gate blocks of ``a`` along ``axis`` from ``source`` order to ``target``.

    ``a`` has len(source) equal blocks of H along ``axis``, e.g. a GRU kernel
    (D, 3H) with source ("z", "r", "h") and target ("r", "z", "h") swaps its
    first two H-column blocks. Returns a new array.
    """
    a = numpy.asarray(a)
    blocks = dict(zip(source, numpy.split(a, len(source), axis=axis), strict=True))
    return numpy.concatenate([blocks[g] for g in target], axis=axis)


def keras_to_torch_weights(layer) -> dict:
    """The layer's weights in PyTorch's layout, as NumPy arrays keyed like the
    matching module's ``state_dict()`` (see the module docstring's table)."""
    kind, layer = _kind(layer), _unwrap(layer)
    _require_built(layer)
    w = {k: numpy.array(backend.to_numpy(v)) for k, v in layer.params.items()}
    if kind == "dense":
        out = {"weight": w["kernel"].T}                                      # (D, H) -> (H, D)
        if "bias" in w:
            out["bias"] = w["bias"]
    elif kind == "conv1d":
        out = {"weight": w["kernel"].transpose(2, 1, 0)}                     # (K, D, F) -> (F, D, K)
        if "bias" in w:
            out["bias"] = w["bias"]
    else:
        ours, theirs = KERAS_GATES[kind], TORCH_GATES[kind]
        out = {"weight_ih_l0": reorder_gates(w["kernel"], ours, theirs).T,            # (G*H, D)
               "weight_hh_l0": reorder_gates(w["recurrent_kernel"], ours, theirs).T}  # (G*H, H)
        if "bias" in w and kind == "gru":   # reset_after: rows [input bias, recurrent bias]
            out["bias_ih_l0"] = reorder_gates(w["bias"][0], ours, theirs)
            out["bias_hh_l0"] = reorder_gates(w["bias"][1], ours, theirs)
        elif "bias" in w:                   # one bias: all of it on the input side
            out["bias_ih_l0"] = reorder_gates(w["bias"], ours, theirs)
            out["bias_hh_l0"] = numpy.zeros_like(w["bias"])
    return {k: numpy.ascontiguousarray(v) for k, v in out.items()}


def torch_to_keras_weights(layer, state_dict) -> list:
    """Arrays in PyTorch's layout -> the layer's ``get_weights()`` list (Keras layout).

    ``state_dict`` maps the torch names to tensors or arrays. Torch modules
    built with ``bias=False`` have no bias keys: a layer with a bias then gets
    zeros, and a layer with ``use_bias=False`` accepts only zero torch biases.
    """
    kind, layer = _kind(layer), _unwrap(layer)
    sd = {k: _numpy(v) for k, v in state_dict.items()}
    flat = kind in ("dense", "conv1d")
    weight_keys = ("weight",) if flat else ("weight_ih_l0", "weight_hh_l0")
    bias_keys = ("bias",) if flat else ("bias_ih_l0", "bias_hh_l0")
    extra = sorted(set(sd) - set(weight_keys) - set(bias_keys))
    if extra:
        raise ValueError(
            f"{layer.name}: unexpected PyTorch weights {extra} for an nn.{_TORCH_CLASS[kind]}; a tinyrnn "
            f"layer maps one single-layer, unidirectional torch layer (keys {list(weight_keys + bias_keys)})"
        )
    missing = [k for k in weight_keys if k not in sd]
    if missing:
        raise ValueError(f"{layer.name}: the state dict has no {missing} (keys given: {sorted(sd)})")
    biases = [sd[k] for k in bias_keys if k in sd]
    if len(biases) not in (0, len(bias_keys)):
        raise ValueError(f"{layer.name}: give all of {list(bias_keys)} or none (bias=False)")

    if kind == "dense":
        named = {"kernel": sd["weight"].T}                                   # (H, D) -> (D, H)
        bias = biases[0] if biases else None
    elif kind == "conv1d":
        named = {"kernel": sd["weight"].transpose(2, 1, 0)}                  # (F, D, K) -> (K, D, F)
        bias = biases[0] if biases else None
    else:
        ours, theirs = KERAS_GATES[kind], TORCH_GATES[kind]
        named = {"kernel": reorder_gates(sd["weight_ih_l0"].T, theirs, ours),            # (D, G*H)
                 "recurrent_kernel": reorder_gates(sd["weight_hh_l0"].T, theirs, ours)}  # (H, G*H)
        if not biases:
            bias = None
        elif kind == "gru":   # two real biases: rows [input bias, recurrent bias], (2, 3H)
            bias = numpy.stack([reorder_gates(b, theirs, ours) for b in biases])
        else:                 # both are added to the same pre-activation: merge them, (G*H,)
            bias = reorder_gates(biases[0] + biases[1], theirs, ours)

    if _uses_bias(layer):
        named["bias"] = bias if bias is not None else numpy.zeros(_bias_shape(kind, named))
    elif bias is not None and numpy.any(bias != 0):
        raise ValueError(f"{layer.name} has use_bias=False, but the PyTorch biases are not zero")
    return [named[k] for k in layer.weight_names if k in named]


# --- PyTorch objects -------------------------------------------------------------------
def to_torch_state_dict(layer) -> dict:
    """``{name: torch.Tensor}`` in the matching PyTorch module's layout and names.

    Recurrent layers give ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0``;
    Dense gives ``weight, bias`` (nn.Linear); Conv1D ``weight, bias`` (nn.Conv1d).
    Tensors keep the layer's dtype (float32 or float64) and live on the CPU.
    """
    weights = keras_to_torch_weights(layer)          # raises for what PyTorch has no layer for, torch or not
    import torch

    return {k: torch.from_numpy(v) for k, v in weights.items()}


def to_torch_state_dicts(model) -> list:
    """One ``to_torch_state_dict`` per layer of a Sequential model, in order;
    layers without weights (Flatten, Dropout, ...) give ``{}``."""
    return [to_torch_state_dict(layer) if layer.params else {} for layer in model.layers]


def load_torch_state_dict(layer, state_dict) -> None:
    """Load PyTorch-layout weights (tensors or arrays) into ``layer``, in place.

    The keys are those of ``to_torch_state_dict``. An unbuilt layer is built
    from the weight shapes (D from ``weight_ih_l0`` / ``weight``).
    """
    kind, inner = _kind(layer), _unwrap(layer)
    if not layer.built:
        weight = _numpy(state_dict["weight" if kind in ("dense", "conv1d") else "weight_ih_l0"])
        D = weight.shape[1]
        layer.build((None, D) if layer is inner and kind == "dense" else (None, None, D))
    inner.set_weights(torch_to_keras_weights(inner, state_dict))


def load_from_torch(layer, module) -> None:
    """Copy the weights of a PyTorch module into ``layer`` (built from it if needed).

    ``module`` is an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (one layer, one
    direction; ``batch_first`` does not matter), an ``nn.Linear``, an
    ``nn.Conv1d``, or an ``nn.Sequential`` holding exactly one of them (what
    ``to_torch_module`` returns for layers with an activation or causal padding).
    Raises ValueError when the module is of another kind, has other sizes or
    activations, or stacks layers / directions.
    """
    kind, inner = _kind(layer), _unwrap(layer)
    module = _weighted_module(module)
    expected = _TORCH_CLASS[kind]
    if type(module).__name__ != expected:
        raise ValueError(f"{inner.name} ({type(inner).__name__}) loads from a torch nn.{expected}, "
                         f"got nn.{type(module).__name__}")
    if kind in _RECURRENT:
        if module.num_layers != 1:
            raise ValueError(
                f"nn.{expected} has num_layers={module.num_layers}; a tinyrnn layer is one layer: build one "
                f"tinyrnn layer per torch layer and load each from a single-layer nn.{expected}"
            )
        if module.bidirectional:
            raise ValueError(f"nn.{expected} is bidirectional; tinyrnn has no bidirectional layers")
        if getattr(module, "proj_size", 0):
            raise ValueError(f"nn.LSTM has proj_size={module.proj_size}; tinyrnn's LSTM has no projection")
        if module.hidden_size != inner.units:
            raise ValueError(f"{inner.name} has {inner.units} units, the nn.{expected} has "
                             f"hidden_size={module.hidden_size}")
        if kind == "rnn" and module.nonlinearity != inner.cell.activation.name:
            raise ValueError(f"{inner.name} uses activation {inner.cell.activation.name!r}, the nn.RNN "
                             f"uses nonlinearity={module.nonlinearity!r}")
        _check_torch_math(inner, kind)
    load_torch_state_dict(layer, module.state_dict())


def to_torch_module(layer):
    """A new PyTorch module computing what ``layer`` computes, with its weights.

    - SimpleRNN / LSTM / GRU -> ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with
      ``batch_first=True``, so it takes the same (B, T, D) input; it returns
      ``(all h_t (B, T, H), final state)`` whatever ``return_sequences`` says.
    - Dense -> ``nn.Linear``, or ``nn.Sequential(nn.Linear, activation)``.
    - Conv1D -> ``nn.Conv1d`` (input channels first: ``x.transpose(1, 2)``,
      (B, D, T)), in an ``nn.Sequential`` with a left ``nn.ConstantPad1d`` for
      ``padding="causal"`` and with the activation module when there is one.

    The module has the layer's dtype. Raises ValueError for what PyTorch has no
    layer for: other activations, GRU(reset_after=False), peephole or
    layer-normalised cells, Conv1D ``padding="same"`` with strides > 1.
    """
    kind, inner = _kind(layer), _unwrap(layer)
    _require_built(inner)
    _check_torch_math(inner, kind)                   # what PyTorch cannot compute is known without it
    import torch
    from torch import nn

    dtype = torch.float64 if inner.params["kernel"].dtype == numpy.float64 else torch.float32
    bias = "bias" in inner.params
    kernel = inner.params["kernel"]
    if kind in _RECURRENT:
        D, H = kernel.shape[0], inner.units
        if kind == "rnn":
            core = nn.RNN(D, H, nonlinearity=inner.cell.activation.name, bias=bias, batch_first=True)
        else:
            core = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](D, H, bias=bias, batch_first=True)
        parts = [core]
    elif kind == "dense":
        core = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bias)
        parts = [core]
    else:
        K, D, F = kernel.shape
        rate, padding = inner.dilation_rate, inner.padding
        core = nn.Conv1d(D, F, K, stride=inner.strides, dilation=rate, bias=bias,
                         padding="same" if padding == "same" else 0)
        # Keras's causal padding: (K_eff - 1) zeros on the left only.
        parts = [nn.ConstantPad1d(((K - 1) * rate, 0), 0.0), core] if padding == "causal" else [core]
    if kind in ("dense", "conv1d") and inner.activation.name != "linear":
        parts.append({"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}[inner.activation.name]())
    core.to(dtype)
    core.load_state_dict(to_torch_state_dict(inner))
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


def load_from_keras(layer_or_model, keras_obj) -> None:
    """Copy weights from a Keras layer or model: ``ours.set_weights(keras_obj.get_weights())``.

    Nothing is converted because tinyrnn uses Keras's layout (order, shapes,
    gate order, GRU's (2, 3H) bias). Works with anything that has
    ``get_weights()``; our layer must be built (``input_shape=`` or one call).
    """
    layer_or_model.set_weights([numpy.asarray(w) for w in keras_obj.get_weights()])


# --- helpers ------------------------------------------------------------------------------
def _unwrap(layer):
    """TimeDistributed(Dense) has nn.Linear's weights: Linear acts on the last axis anyway."""
    return layer.layer if isinstance(layer, TimeDistributed) else layer


def _kind(layer) -> str:
    """"rnn", "lstm", "gru", "dense" or "conv1d"; ValueError for a layer PyTorch has no twin of."""
    inner = _unwrap(layer)
    if isinstance(inner, RNN):
        cell = type(inner.cell)  # exact type: a PeepholeLSTMCell is an LSTMCell, but not nn.LSTM's math
        kind = {SimpleRNNCell: "rnn", LSTMCell: "lstm", GRUCell: "gru"}.get(cell)
        if kind is None:
            raise ValueError(f"{inner.name}: PyTorch has no layer for {cell.__name__}; only SimpleRNNCell, "
                             "LSTMCell and GRUCell (reset_after=True) convert")
        if kind == "gru" and not inner.cell.reset_after:
            raise ValueError(
                f"{inner.name}: GRU(reset_after=False) applies the reset gate before the recurrent product; "
                "PyTorch's nn.GRU applies it after (reset_after=True), so there is no PyTorch equivalent"
            )
        return kind
    if isinstance(inner, Dense):
        return "dense"
    if any(c.__name__ == "Conv1D" for c in type(inner).__mro__):
        return "conv1d"
    raise ValueError(f"{getattr(inner, 'name', inner)}: no PyTorch layout for {type(inner).__name__}; "
                     "converters exist for SimpleRNN, LSTM, GRU, Dense and Conv1D")


def _check_torch_math(layer, kind) -> None:
    """PyTorch's modules fix their activations; refuse a layer that uses others."""
    if kind == "rnn":
        act = layer.cell.activation.name
        if act not in ("tanh", "relu"):
            raise ValueError(f"{layer.name}: nn.RNN supports nonlinearity 'tanh' or 'relu', not {act!r}")
    elif kind in ("lstm", "gru"):
        acts = (layer.cell.activation.name, layer.cell.recurrent_activation.name)
        if acts != ("tanh", "sigmoid"):
            raise ValueError(f"{layer.name}: nn.{_TORCH_CLASS[kind]} uses activation 'tanh' and "
                             f"recurrent_activation 'sigmoid', this layer uses {acts}")
    elif kind == "dense" and layer.activation.name not in ("linear", "tanh", "sigmoid", "relu"):
        raise ValueError(f"{layer.name}: no torch module for activation {layer.activation.name!r}")
    elif kind == "conv1d" and layer.padding == "same" and layer.strides > 1:
        raise ValueError(f"{layer.name}: nn.Conv1d supports padding='same' only with stride 1")


def _weighted_module(module):
    """The one nn.RNN/LSTM/GRU/Linear/Conv1d inside an nn.Sequential (or ``module`` itself)."""
    if type(module).__name__ != "Sequential":
        return module
    weighted = [m for m in module if type(m).__name__ in _TORCH_CLASS.values()]
    if len(weighted) != 1:
        raise ValueError(f"load_from_torch needs one weighted layer, the nn.Sequential has {len(weighted)}: "
                         "load each layer separately")
    return weighted[0]


def _require_built(layer) -> None:
    if not layer.built:
        raise RuntimeError(f"{layer.name}: build the layer first (input_shape= or one call on an input)")


def _uses_bias(layer) -> bool:
    cell = getattr(layer, "cell", layer)
    return bool(getattr(cell, "use_bias", True))


def _bias_shape(kind, named) -> tuple:
    G = named["kernel"].shape[-1]
    return (2, G) if kind == "gru" else (G,)


def _numpy(value) -> numpy.ndarray:
    """A tensor (any device, with or without grad), a CuPy array or array-like -> NumPy."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) not in ("torch.float32", "torch.float64"):
            value = value.double()
        return value.numpy()
    return numpy.asarray(backend.to_numpy(value))
