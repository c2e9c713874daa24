"""Make ``keras_masking.npz``: Keras 3's outputs of ``Masking(0.)`` followed by an LSTM or a GRU on
a right-padded batch, for ``tests/test_recurrent_masking.py``.

One batch x (B=3, T=6, D=3) of sequences of lengths 6, 4 and 2, padded on the right with zeros
(``Masking(mask_value=0.)`` masks those steps), and for each case a Keras model

    Input(shape=[T, D]) -> Masking(0.) -> LSTM(4) or GRU(4) (Keras's default reset_after=True)

with the layer options of the case: ``return_sequences`` True or False, ``return_state``,
``go_backwards``, ``zero_output_for_mask``. The weights are drawn by Keras at a seed, and the
biases are then set to random values (the default zeros would hide a bias bug).

Saved per case ``<case>/w0``, ``w1``, ``w2`` (``get_weights()`` order: kernel, recurrent_kernel,
bias, which is tinyrnn's) and ``<case>/y0``, ``y1``, ... (the model's outputs: y, then the
states with ``return_state``); ``x`` and ``mask`` (the (B, T) mask Masking computes) once.

Run it from the repository root with Keras 3 and TensorFlow (CPU)::

    /work/tfvenv/bin/python tests/data/make_keras_masking.py
"""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
B, T, D, H = 3, 6, 3, 4
LENGTHS = [6, 4, 2]

CASES = {  # case name: (layer class, options)
    "lstm_seq": ("LSTM", {"return_sequences": True}),
    "lstm_last": ("LSTM", {}),
    "lstm_seq_state": ("LSTM", {"return_sequences": True, "return_state": True}),
    "lstm_last_state": ("LSTM", {"return_state": True}),
    "lstm_seq_zero_output": ("LSTM", {"return_sequences": True, "zero_output_for_mask": True}),
    "lstm_seq_state_backwards": ("LSTM", {"return_sequences": True, "return_state": True,
                                          "go_backwards": True}),
    "gru_seq": ("GRU", {"return_sequences": True}),
    "gru_last": ("GRU", {}),
    "gru_seq_state": ("GRU", {"return_sequences": True, "return_state": True}),
    "gru_last_state": ("GRU", {"return_state": True}),
    "gru_last_zero_output": ("GRU", {"zero_output_for_mask": True}),
    "gru_seq_backwards": ("GRU", {"return_sequences": True, "go_backwards": True}),
    "gru_last_state_backwards": ("GRU", {"return_state": True, "go_backwards": True}),
}


def padded_batch():
    rng = numpy.random.default_rng(7)
    x = rng.normal(size=(B, T, D)).astype("float32")
    for b, length in enumerate(LENGTHS):
        x[b, length:] = 0.0
    return x


def main() -> None:
    x = padded_batch()
    arrays = {"x": x, "mask": (x != 0).any(axis=-1)}
    rng = numpy.random.default_rng(11)
    for k, (name, (kind, options)) in enumerate(CASES.items()):
        keras.utils.set_random_seed(100 + k)
        inputs = keras.Input(shape=[T, D])
        layer = getattr(keras.layers, kind)(H, **options)
        model = keras.Model(inputs, layer(keras.layers.Masking(mask_value=0.0)(inputs)))
        weights = layer.get_weights()
        weights[2] = rng.normal(scale=0.5, size=weights[2].shape).astype("float32")
        layer.set_weights(weights)
        outputs = model(x)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        for i, y in enumerate(outputs):
            arrays[f"{name}/y{i}"] = keras.ops.convert_to_numpy(y)
    numpy.savez_compressed(HERE / "keras_masking.npz", **arrays)
    print(f"wrote {HERE / 'keras_masking.npz'}: {len(CASES)} cases, keras {keras.__version__}")


if __name__ == "__main__":
    main()
