"""Make tests/data/keras_bidirectional.npz: Keras 3 Bidirectional LSTM/GRU outputs and gradients.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    python tests/data/make_keras_bidirectional.py        # from the repository root

Cases, in float64 (``keras.config.set_floatx("float64")``), B=2, T=5, D=3, H=4:

- ``LSTM`` and ``GRU`` (``reset_after=True``, Keras's default) in every merge mode (concat, sum, mul,
  ave, None), ``return_sequences`` False and True;
- both with ``return_state=True`` (concat, return_sequences True, and None, last output);
- both called with a right-padded mask (lengths 4 and 2: ``mask=`` on the layer's call), in concat,
  mul and None, ``return_sequences`` both ways, and with ``return_state``;
- two models on a right-padded batch: ``Masking(0.0) -> Bidirectional(LSTM, sum, return_sequences)``
  and ``Embedding(7, 3, mask_zero=True) -> Bidirectional(GRU, concat)``.

Every weight (biases included) is drawn N(0, 0.5^2) so none sits at its default. Saved per case
``<key>/x`` (the input; integer ids for the Embedding model), ``<key>/mask`` (bool (B, T), masked
cases), ``<key>/w<i>`` weights in ``get_weights()`` order, ``<key>/y<j>`` the outputs (one for a
merged output, two for merge_mode None, then the forward then the backward final states),
``<key>/u<j>`` a random dL/dy<j>, and ``<key>/dx`` (float inputs), ``<key>/dw<i>`` the gradients of
sum_j sum(y<j> * u<j>) by TensorFlow's autodiff. ``cases`` is a JSON string indexing them.
"""

import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
B, T, D, H = 2, 5, 3, 4
LENGTHS = (4, 2)                                   # right-padded: sequence b is real for t < LENGTHS[b]


def right_padded_mask():
    return np.arange(T)[None, :] < np.array(LENGTHS)[:, None]          # (B, T) bool


def random_weights(model, rng):
    weights = [rng.normal(0.0, 0.5, size=w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    return [w.astype("float64") for w in model.get_weights()]


def run(key, layer, x, rng, index, mask=None, **spec):
    """Outputs, then gradients of sum(y * u) for random u, of ``layer`` (a layer or a model)."""
    weights = random_weights(layer, rng)
    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        if x.dtype.kind == "f":
            tape.watch(x_tensor)
        ys = layer(x_tensor) if mask is None else layer(x_tensor, mask=tf.constant(mask))
        ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
        us = [rng.normal(size=tuple(y.shape)) for y in ys]
        loss = sum(tf.reduce_sum(y * u) for y, u in zip(ys, us))
    sources = ([x_tensor] if x.dtype.kind == "f" else []) + list(layer.trainable_weights)
    grads = tape.gradient(loss, sources)
    arrays = {"x": x}
    if mask is not None:
        arrays["mask"] = mask
    if x.dtype.kind == "f":
        arrays["dx"], grads = grads[0].numpy(), grads[1:]
    for i, (w, g) in enumerate(zip(weights, grads)):
        arrays[f"w{i}"], arrays[f"dw{i}"] = w, tf.convert_to_tensor(g).numpy()   # Embedding: IndexedSlices
    for j, (y, u) in enumerate(zip(ys, us)):
        arrays[f"y{j}"], arrays[f"u{j}"] = y.numpy(), u
    index.append({"key": key, "n_outputs": len(ys), "n_weights": len(weights), **spec})
    return {f"{key}/{name}": value for name, value in arrays.items()}


def bidirectional(rnn, merge_mode, **kwargs):
    cls = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}[rnn]
    layer = keras.layers.Bidirectional(cls(H, **kwargs), merge_mode=merge_mode)
    layer.build((None, T, D))
    return layer


def main():
    keras.config.set_floatx("float64")
    keras.utils.set_random_seed(42)
    rng = np.random.default_rng(42)
    arrays, index = {}, []
    n = 0

    def case(layer, x, mask=None, **spec):
        nonlocal n
        arrays.update(run(f"case{n:02d}", layer, x, rng, index, mask=mask, **spec))
        n += 1

    for rnn in ("LSTM", "GRU"):
        for merge_mode in ("concat", "sum", "mul", "ave", None):
            for return_sequences in (False, True):
                kwargs = {"return_sequences": return_sequences}
                case(bidirectional(rnn, merge_mode, **kwargs), rng.normal(size=(B, T, D)),
                     rnn=rnn, merge_mode=merge_mode, kwargs=kwargs)
        for merge_mode, return_sequences in (("concat", True), (None, False)):
            kwargs = {"return_sequences": return_sequences, "return_state": True}
            case(bidirectional(rnn, merge_mode, **kwargs), rng.normal(size=(B, T, D)),
                 rnn=rnn, merge_mode=merge_mode, kwargs=kwargs)
        mask = right_padded_mask()
        for merge_mode, kwargs in (("concat", {"return_sequences": True}), ("concat", {}),
                                   ("mul", {"return_sequences": True}), ("mul", {}),
                                   (None, {"return_sequences": True}),
                                   ("concat", {"return_sequences": True, "return_state": True})):
            x = rng.normal(size=(B, T, D)) * mask[:, :, None]           # right-padded with zeros
            case(bidirectional(rnn, merge_mode, **kwargs), x, mask=mask,
                 rnn=rnn, merge_mode=merge_mode, kwargs=kwargs)

    masking = keras.Sequential([keras.Input((T, D)), keras.layers.Masking(0.0),
                                keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True),
                                                           merge_mode="sum")])
    x = rng.normal(size=(B, T, D)) * right_padded_mask()[:, :, None]
    case(masking, x, model="Masking(0.0) -> Bidirectional(LSTM(4, return_sequences=True), merge_mode='sum')")
    embedding = keras.Sequential([keras.Input((T,), dtype="int32"),
                                  keras.layers.Embedding(7, D, mask_zero=True),
                                  keras.layers.Bidirectional(keras.layers.GRU(H), merge_mode="concat")])
    ids = rng.integers(1, 7, size=(B, T)) * right_padded_mask()
    case(embedding, ids.astype("int32"),
         model="Embedding(7, 3, mask_zero=True) -> Bidirectional(GRU(4), merge_mode='concat')")

    meta = {"keras": keras.__version__, "tensorflow": tf.__version__, "dtype": "float64",
            "B": B, "T": T, "D": D, "H": H, "lengths": LENGTHS, "cases": index,
            "note": __doc__.split("\n\n")[-1].strip()}
    arrays["cases"] = np.array(json.dumps(meta))
    np.savez_compressed(HERE / "keras_bidirectional.npz", **arrays)
    print(f"wrote {len(index)} cases to {HERE / 'keras_bidirectional.npz'}")


if __name__ == "__main__":
    main()
