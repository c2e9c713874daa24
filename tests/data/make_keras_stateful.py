"""Make ``keras_stateful_gru.npz``: a stateful Keras 3 GRU over three consecutive batches, for
``tests/test_stateful.py``.

The model is ``Input(batch_shape=(B, T, D)) -> GRU(H, return_sequences=True, stateful=True)``
(Keras's default reset_after=True) with B=2, T=5, D=3, H=4; its weights are drawn by Keras at a
seed and its bias then set to random values (zeros would hide a bias bug). Three batches of
random inputs go through ``model.predict_on_batch`` one after the other: each starts from the
states the one before left (row b continues row b).

Saved: ``w0``, ``w1``, ``w2`` (``get_weights()`` order: kernel, recurrent_kernel, bias, which is
tinyrnn's), ``x0``, ``x1``, ``x2`` (the batches) and ``y0``, ``y1``, ``y2`` (their outputs).

Run it from the repository root with Keras 3 and TensorFlow (CPU)::

    /work/tfvenv/bin/python tests/data/make_keras_stateful.py
"""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
B, T, D, H = 2, 5, 3, 4


def main() -> None:
    keras.utils.set_random_seed(3)
    rng = numpy.random.default_rng(5)
    layer = keras.layers.GRU(H, return_sequences=True, stateful=True)
    inputs = keras.Input(batch_shape=(B, T, D))
    model = keras.Model(inputs, layer(inputs))
    weights = layer.get_weights()
    weights[2] = rng.normal(scale=0.5, size=weights[2].shape).astype("float32")
    layer.set_weights(weights)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    for k in range(3):
        x = rng.normal(size=(B, T, D)).astype("float32")
        arrays[f"x{k}"], arrays[f"y{k}"] = x, numpy.asarray(model.predict_on_batch(x))
    numpy.savez_compressed(HERE / "keras_stateful_gru.npz", **arrays)
    print(f"wrote {HERE / 'keras_stateful_gru.npz'}: keras {keras.__version__}")


if __name__ == "__main__":
    main()
