"""Make tests/data/keras_wavenet.npz: the book's original WaveNet in Keras 3, its weights, outputs, gradients.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    python tests/data/make_keras_wavenet.py        # from the repository root

The model is the book notebook's functional WaveNet (n_layers_per_block=3, n_blocks=1,
n_filters=32, n_outputs=10), built after ``keras.utils.set_random_seed(42)`` (its biases then set to random
N(0, 0.1) values, so that they are tested too), with the paper's
gated activation unit ``tanh(z[..., :n]) * sigmoid(z[..., n:])`` (the notebook applies tanh twice).
The input batch is the course's series (``tinyrnn.data.generate_time_series``, seed 42), B=3, T=20.

Saved (float32): ``x`` (B, T, 1); ``w0, w1, ...`` in ``model.get_weights()`` order; ``y`` the
model's output (B, T, 10); ``upstream`` a random dL/dy; ``dx`` and ``dw0, dw1, ...`` the gradients
of ``sum(y * upstream)`` by TensorFlow's autodiff. ``keras_wavenet.json`` indexes them.
"""

import json
import pathlib
import sys

import keras
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))          # tinyrnn.data for the course's series (NumPy only)
from tinyrnn.data import generate_time_series  # noqa: E402

B, T = 3, 20


class GatedActivationUnit(keras.layers.Layer):
    def __init__(self, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)

    def call(self, inputs):
        n_filters = inputs.shape[-1] // 2
        linear_output = self.activation(inputs[..., :n_filters])
        gate = keras.activations.sigmoid(inputs[..., n_filters:])
        return linear_output * gate


def wavenet_residual_block(inputs, n_filters, dilation_rate):
    z = keras.layers.Conv1D(2 * n_filters, kernel_size=2, padding="causal",
                            dilation_rate=dilation_rate)(inputs)
    z = GatedActivationUnit()(z)
    z = keras.layers.Conv1D(n_filters, kernel_size=1)(z)
    return keras.layers.Add()([z, inputs]), z


def original_wavenet(n_layers_per_block=3, n_blocks=1, n_filters=32, n_outputs=10):
    inputs = keras.layers.Input(shape=[None, 1])
    z = keras.layers.Conv1D(n_filters, kernel_size=2, padding="causal")(inputs)
    skip_to_last = []
    for dilation_rate in [2**i for i in range(n_layers_per_block)] * n_blocks:
        z, skip = wavenet_residual_block(z, n_filters, dilation_rate)
        skip_to_last.append(skip)
    z = keras.activations.relu(keras.layers.Add()(skip_to_last))
    z = keras.layers.Conv1D(n_filters, kernel_size=1, activation="relu")(z)
    Y_proba = keras.layers.Conv1D(n_outputs, kernel_size=1, activation="softmax")(z)
    return keras.models.Model(inputs=[inputs], outputs=[Y_proba])


def main():
    keras.utils.set_random_seed(42)
    model = original_wavenet()
    x = generate_time_series(B, T, seed=42)[..., :1].astype("float32")    # (B, T, 1)
    rng = np.random.default_rng(42)
    weights = [w if w.ndim > 1 else rng.normal(0.0, 0.1, size=w.shape) for w in model.get_weights()]
    model.set_weights([w.astype("float32") for w in weights])                # random biases, not zeros
    weights = [w.astype("float32") for w in model.get_weights()]
    upstream = rng.normal(size=(B, T, 10)).astype("float32")
    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        y = model(x_tensor, training=False)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x_tensor, *model.trainable_weights])
    arrays = {"x": x, "y": y.numpy().astype("float32"), "upstream": upstream,
              "dx": grads[0].numpy().astype("float32")}
    for i, (w, g) in enumerate(zip(weights, grads[1:])):
        arrays[f"w{i}"] = w
        arrays[f"dw{i}"] = g.numpy().astype("float32")
    np.savez_compressed(HERE / "keras_wavenet.npz", **arrays)
    index = {
        "keras": keras.__version__, "tensorflow": tf.__version__, "dtype": "float32", "seed": 42,
        "model": "original_wavenet(n_layers_per_block=3, n_blocks=1, n_filters=32, n_outputs=10)",
        "x": [B, T, 1], "weights": [f"{w.path} {tuple(w.shape)}" for w in model.weights],
        "note": __doc__.split("\n\n")[-1].strip(),
    }
    (HERE / "keras_wavenet.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {len(weights)} weights, y {arrays['y'].shape}, to {HERE / 'keras_wavenet.npz'}")


if __name__ == "__main__":
    main()
