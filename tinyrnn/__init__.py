"""tinyrnn: a from-scratch recurrent-network engine for teaching.

Every layer has a hand-written forward and backward pass in array code
(NumPy, or CuPy on a GPU), the time loop is unrolled in plain Python, and
``gradcheck`` proves every gradient against finite differences. The API
follows Keras, so the course's code ports with the import changed::

    from tinyrnn import Sequential
    from tinyrnn.layers import SimpleRNN, Dense
"""

from tinyrnn import (
    activations,
    callbacks,
    data,
    graph,
    layers,
    losses,
    metrics,
    ops,
    optimizers,
    text,
    utils,
)
from tinyrnn.backend import (
    float_precision,
    get_backend,
    set_backend,
    set_blas_threads,
    set_floatx,
    set_threads,
    to_numpy,
)
from tinyrnn.gradcheck import gradcheck
from tinyrnn.layers import Bidirectional, Input
from tinyrnn.models import History, Model, Sequential, TrainingError
from tinyrnn.saving import load_model
from tinyrnn.seeding import set_random_seed

__version__ = "0.1.0"

__all__ = [
    "Bidirectional",
    "History", "Input", "Model", "Sequential", "TrainingError", "activations", "data", "float_precision",
    "get_backend", "gradcheck", "graph", "layers", "load_model", "losses", "metrics", "ops", "optimizers",
    "set_backend", "set_blas_threads", "set_floatx", "set_random_seed", "set_threads", "text", "to_numpy",
    "utils",
]
__all__ += ["callbacks"]  # tinyrnn.callbacks: EarlyStopping, ModelCheckpoint, ... (as keras.callbacks)
