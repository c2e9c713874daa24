"""Make tests/data/keras_masking_flow.npz: Masking -> LSTM / GRU -> Dense in Keras 3 on a right-padded batch.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    python tests/data/make_keras_masking_flow.py        # from the repository root

Two models, each built after ``keras.utils.set_random_seed(12)`` with every bias then set to random
N(0, 0.5) values (so that they are tested too):

- ``lstm``: ``Masking(0.0) -> LSTM(4, return_sequences=True) -> Dense(2)``: the output (B, T, 2)
  carries the mask, so Keras's MSE leaves the padded steps out;
- ``gru``: ``Masking(0.0) -> GRU(4) -> Dense(2)``: the last output of each sequence is its last
  valid step's; the output (B, 2) carries no mask.

The batch: B=3 sequences of T=5 steps of D=3 features, lengths 5, 3 and 1, right-padded with zeros;
targets random everywhere (padding too). Saved (float32): ``x`` (B, T, D), ``mask`` (B, T) bool,
and per model ``<name>/y_true``, ``<name>/w0, w1, ...`` (``model.get_weights()`` order),
``<name>/y`` the output, ``<name>/loss`` Keras's MSE on that output (with its mask) and
``<name>/dw0, ...`` its gradients (TensorFlow's autodiff).
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
B, T, D, H, OUT = 3, 5, 3, 4, 2
LENGTHS = [5, 3, 1]


def case(name, recurrent, x, rng):
    keras.utils.set_random_seed(12)
    model = keras.Sequential([keras.Input(shape=(None, D)), keras.layers.Masking(0.0), recurrent,
                              keras.layers.Dense(OUT)])
    weights = [w if "bias" not in v.path else rng.normal(scale=0.5, size=w.shape).astype("float32")
               for w, v in zip(model.get_weights(), model.weights)]
    model.set_weights(weights)
    y_true = rng.normal(size=(B, T, OUT) if recurrent.return_sequences else (B, OUT)).astype("float32")
    with tf.GradientTape() as tape:
        y = model(x, training=False)
        loss = keras.losses.MeanSquaredError()(y_true, y)
    grads = tape.gradient(loss, model.trainable_weights)
    order = [v.path for v in model.weights]
    arrays = {f"{name}/y_true": y_true, f"{name}/y": np.asarray(y), f"{name}/loss": np.float32(loss.numpy())}
    arrays.update({f"{name}/w{k}": w for k, w in enumerate(model.get_weights())})
    arrays.update({f"{name}/dw{order.index(v.path)}": np.asarray(g)
                   for v, g in zip(model.trainable_weights, grads)})
    print(f"{name}: loss {float(loss):.6f}, output mask {getattr(y, '_keras_mask', None) is not None}")
    return arrays


def main():
    rng = np.random.default_rng(12)
    x = np.zeros((B, T, D), dtype="float32")
    mask = np.zeros((B, T), dtype=bool)
    for b, n in enumerate(LENGTHS):
        x[b, :n] = rng.normal(size=(n, D))
        mask[b, :n] = True
    arrays = {"x": x, "mask": mask}
    arrays.update(case("lstm", keras.layers.LSTM(H, return_sequences=True), x, rng))
    arrays.update(case("gru", keras.layers.GRU(H), x, rng))
    np.savez_compressed(HERE / "keras_masking_flow.npz", **arrays)
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}")


if __name__ == "__main__":
    main()
