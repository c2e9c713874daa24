"""Make tests/data/keras_batchnorm_mask.npz: BatchNormalization after a masked layer in Keras 3.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    python tests/data/make_keras_batchnorm_mask.py        # from the repository root

Keras 3's ``BatchNormalization.call(inputs, training, mask)`` takes the batch moments over the
unmasked steps only (``_moments``: sum(w x) / (N + 1e-7), sum(w (x - mu)^2) / (N + 1e-7)), normalises
every step with them and passes the mask on. Two cases, weights random (``keras.utils.set_random_seed(5)``,
then gamma, beta, moving statistics and the LSTM's bias drawn from ``numpy.random.default_rng(5)``):

- ``model``: ``Masking(0.0) -> LSTM(4, return_sequences=True) -> BatchNormalization(momentum=0.9)``
  on B=2 right-padded sequences of T=5 steps, D=3 features (lengths 5 and 3). Saved: ``x`` (B, T, D),
  ``model/w0, ...`` (``model.get_weights()`` order, before), ``model/y_train`` the output of one call with
  ``training=True``, ``model/moving_mean`` and ``model/moving_variance`` after it, ``model/y_infer`` the
  output with ``training=False`` after it.
- ``layer``: the layer alone, ``bn(h, training=True, mask=m)`` with h (B, T, F) = (2, 5, 4) and a mask with
  holes (``mask``), momentum 0.9: ``layer/h``, ``layer/mask``, ``layer/w0..3``, ``layer/y``,
  ``layer/moving_mean``, ``layer/moving_variance`` after the call, and for the loss sum(y * u) with
  random ``layer/u``, TensorFlow's ``layer/dh``, ``layer/dgamma``, ``layer/dbeta``.
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
B, T, D, H = 2, 5, 3, 4
LENGTHS = [5, 3]


def random_bn_weights(layer, rng):
    F = layer.gamma.shape[0]
    layer.set_weights([rng.normal(1.0, 0.3, size=F), rng.normal(0.0, 0.5, size=F),
                       rng.normal(0.0, 0.5, size=F), rng.uniform(0.5, 2.0, size=F)])


def model_case(rng):
    x = np.zeros((B, T, D), dtype="float32")
    for b, n in enumerate(LENGTHS):
        x[b, :n] = rng.normal(size=(n, D))
    keras.utils.set_random_seed(5)
    bn = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Sequential([keras.Input(shape=(None, D)), keras.layers.Masking(0.0),
                              keras.layers.LSTM(H, return_sequences=True), bn])
    lstm = model.layers[1]
    kernel, recurrent, _ = lstm.get_weights()
    lstm.set_weights([kernel, recurrent, rng.normal(scale=0.5, size=4 * H).astype("float32")])
    random_bn_weights(bn, rng)
    arrays = {"x": x}
    arrays.update({f"model/w{k}": w for k, w in enumerate(model.get_weights())})
    y = model(x, training=True)
    print(f"model: output mask passed on {getattr(y, '_keras_mask', None) is not None}")
    arrays["model/y_train"] = np.asarray(y)
    arrays["model/moving_mean"], arrays["model/moving_variance"] = bn.get_weights()[2:]
    arrays["model/y_infer"] = np.asarray(model(x, training=False))
    return arrays


def layer_case(rng):
    h = rng.normal(loc=[1.0, -2.0, 0.5, 0.0], scale=[1.0, 3.0, 0.5, 2.0], size=(B, T, H)).astype("float32")
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 1, 1]], dtype=bool)
    u = rng.normal(size=(B, T, H)).astype("float32")
    bn = keras.layers.BatchNormalization(momentum=0.9)
    bn.build((None, T, H))
    random_bn_weights(bn, rng)
    arrays = {"layer/h": h, "layer/mask": mask, "layer/u": u}
    arrays.update({f"layer/w{k}": w for k, w in enumerate(bn.get_weights())})
    h_var = tf.Variable(h)
    with tf.GradientTape() as tape:
        y = bn(h_var, training=True, mask=tf.constant(mask))
        loss = tf.reduce_sum(y * u)
    dh, dgamma, dbeta = tape.gradient(loss, [h_var, bn.gamma, bn.beta])
    arrays.update({"layer/y": np.asarray(y), "layer/dh": np.asarray(dh), "layer/dgamma": np.asarray(dgamma),
                   "layer/dbeta": np.asarray(dbeta)})
    arrays["layer/moving_mean"], arrays["layer/moving_variance"] = bn.get_weights()[2:]
    return arrays


def main():
    rng = np.random.default_rng(5)
    arrays = {**model_case(rng), **layer_case(rng)}
    arrays = {k: np.asarray(v, dtype=bool if np.asarray(v).dtype == bool else "float32")
              for k, v in arrays.items()}
    np.savez_compressed(HERE / "keras_batchnorm_mask.npz", **arrays)
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}")


if __name__ == "__main__":
    main()
