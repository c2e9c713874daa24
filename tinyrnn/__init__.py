"""tinyrnn: a from-scratch recurrent-network engine for teaching.

Every layer has a hand-written forward and backward pass in array code
(NumPy, or CuPy on a GPU), the time loop is unrolled in plain Python, and
``gradcheck`` proves every gradient against finite differences. The API
follows Keras, so the course's code ports with the import changed::

    from tinyrnn import Sequential
    from tinyrnn.layers import SimpleRNN, Dense
"""

from tinyrnn import data, layers, losses, metrics, optimizers
from tinyrnn.backend import get_backend, set_backend, set_blas_threads, set_floatx, set_threads, to_numpy
from tinyrnn.gradcheck import gradcheck
from tinyrnn.models import History, Sequential, TrainingError
from tinyrnn.saving import load_model
from tinyrnn.seeding import set_random_seed

__version__ = "0.1.0"

__all__ = [
    "History", "Sequential", "TrainingError", "data", "get_backend", "gradcheck", "layers", "load_model",
    "losses", "metrics", "optimizers", "set_backend", "set_blas_threads", "set_floatx", "set_random_seed",
    "set_threads", "to_numpy",
]
