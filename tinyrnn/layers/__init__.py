"""tinyrnn's layers, and the registry that saves and rebuilds them by name."""

from tinyrnn.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from tinyrnn.layers.base import Layer
from tinyrnn.layers.bidirectional import Bidirectional
from tinyrnn.layers.convolutional import Conv1D
from tinyrnn.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Lambda,
    Masking,
    Permute,
    RepeatVector,
    Reshape,
    TimeDistributed,
)
from tinyrnn.layers.embedding import Embedding
from tinyrnn.layers.merging import Add, Average, Concatenate, Maximum, Multiply, Subtract
from tinyrnn.layers.normalization import BatchNormalization, LayerNormalization
from tinyrnn.layers.recurrent import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    LNSimpleRNNCell,
    LSTMCell,
    PeepholeLSTMCell,
    RNNCell,
    SimpleRNN,
    SimpleRNNCell,
)

_REGISTRY = {
    cls.__name__: cls
    for cls in (Dense, Dropout, Flatten, InputLayer, RepeatVector, TimeDistributed, LayerNormalization,
                BatchNormalization, Conv1D, RNN, SimpleRNN, LSTM, GRU, SimpleRNNCell, LSTMCell, GRUCell,
                PeepholeLSTMCell, LNSimpleRNNCell, Activation, Lambda, Reshape, Permute, Add, Subtract,
                Multiply, Average, Maximum, Concatenate, Embedding, Attention, AdditiveAttention,
                MultiHeadAttention, Masking, Bidirectional)
}


def register(cls):
    """Make a user's layer or cell class known to ``load_model`` (usable as a decorator)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def serialize(obj) -> dict:
    """{"class_name": ..., "config": ...} for a layer or a cell."""
    config = dict(obj.get_config())
    if isinstance(obj, RNN) and type(obj) is RNN:
        config["cell"] = serialize(obj.cell)
    return {"class_name": type(obj).__name__, "config": config}


def deserialize(spec: dict):
    """Rebuild a layer or cell from ``serialize``'s output (weights not included)."""
    name = spec.get("class_name")
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown layer class {name!r}: register your own classes with tinyrnn.layers.register"
        )
    config = dict(spec.get("config", {}))
    for key in ("cell", "layer", "backward_layer"):
        if isinstance(config.get(key), dict) and "class_name" in config[key]:
            config[key] = deserialize(config[key])
    return _REGISTRY[name](**config)


__all__ = sorted(_REGISTRY) + ["Input", "Layer", "RNNCell", "register", "serialize",
                               "deserialize"]
