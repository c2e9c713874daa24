"""Make tests/data/keras_embedding_mask.npz: Embedding(mask_zero=True) -> GRU -> Dense softmax in Keras 3.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    python tests/data/make_keras_embedding_mask.py        # from the repository root

The model is ``Embedding(V=7, 3, mask_zero=True) -> GRU(4, return_sequences=True) ->
Dense(5, softmax)``, built after ``keras.utils.set_random_seed(12)``, its biases then set to random
N(0, 0.5) values (so that they are tested too). The batch holds B=4 right-padded sequences of
T=6 token ids (id 0 is the padding) of lengths 6, 4, 2 and 5; the targets are class ids at every
step, random in the padded steps too (a masked step must not count, whatever its target).

Saved (float32 unless said): ``ids`` (B, T) int64; ``lengths`` (B,) int64; ``y`` (B, T) int64
targets; ``w0, w1, ...`` in ``model.get_weights()`` order; ``embedded`` the Embedding's output
(B, T, 3) and ``mask`` (B, T) bool its ``compute_mask``; ``probs`` the model's output (B, T, 5);
``loss`` the masked sparse categorical cross-entropy of the whole batch (Keras's loss on the
output, which carries the mask) and ``dw0, dw1, ...`` its gradients (TensorFlow's autodiff);
``evaluate_loss`` and ``evaluate_accuracy``: ``model.evaluate(ids, y, batch_size=3)`` with
``metrics=["accuracy"]`` (two batches, of 3 and 1 rows: the loss averages the batches' masked
means weighted by rows, the accuracy counts the valid steps).
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
V, E, H, C = 7, 3, 4, 5
B, T = 4, 6
LENGTHS = [6, 4, 2, 5]


def main():
    keras.utils.set_random_seed(12)
    rng = np.random.default_rng(12)
    ids = np.zeros((B, T), dtype="int64")
    for b, n in enumerate(LENGTHS):
        ids[b, :n] = rng.integers(1, V, size=n)                 # ids 1..V-1, then padding 0
    y = rng.integers(0, C, size=(B, T)).astype("int64")         # targets everywhere, padding too

    embedding = keras.layers.Embedding(V, E, mask_zero=True)
    model = keras.Sequential([keras.Input(shape=(T,), dtype="int64"), embedding,
                              keras.layers.GRU(H, return_sequences=True),
                              keras.layers.Dense(C, activation="softmax")])
    weights = model.get_weights()
    weights = [w if w.ndim > 1 or w.shape[0] == V else rng.normal(scale=0.5, size=w.shape).astype("float32")
               for w in weights]
    weights[3] = rng.normal(scale=0.5, size=weights[3].shape).astype("float32")   # GRU bias (2, 3H)
    model.set_weights(weights)

    embedded = embedding(ids)
    mask = embedding.compute_mask(ids)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        probs = model(ids, training=False)                      # carries the mask (probs._keras_mask)
        loss = loss_fn(y, probs)
    grads = tape.gradient(loss, model.trainable_weights)
    assert getattr(probs, "_keras_mask", None) is not None, "the output should carry the mask"

    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    evaluate_loss, evaluate_accuracy = model.evaluate(ids, y, batch_size=3, verbose=0)

    arrays = {"ids": ids, "lengths": np.array(LENGTHS, dtype="int64"), "y": y,
              "embedded": np.asarray(embedded), "mask": np.asarray(mask), "probs": np.asarray(probs),
              "loss": np.float32(loss.numpy()), "evaluate_loss": np.float32(evaluate_loss),
              "evaluate_accuracy": np.float32(evaluate_accuracy)}
    arrays.update({f"w{k}": w for k, w in enumerate(model.get_weights())})
    names = [v.path for v in model.trainable_weights]
    order = [v.path for v in model.weights]
    dense = [tf.convert_to_tensor(g).numpy() for g in grads]   # the Embedding's comes as IndexedSlices
    arrays.update({f"dw{order.index(n)}": g for n, g in zip(names, dense)})
    np.savez_compressed(HERE / "keras_embedding_mask.npz", **arrays)
    print(f"loss {float(loss):.6f}, evaluate {evaluate_loss:.6f} / accuracy {evaluate_accuracy:.6f}, "
          f"keras {keras.__version__}, tensorflow {tf.__version__}")


if __name__ == "__main__":
    main()
