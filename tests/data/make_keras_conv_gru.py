"""Make ``keras_conv_gru_curve.npz`` and ``keras_conv_gru_curve.json``: the course's
Conv1D + GRU model trained by Keras 3, epoch by epoch, for ``tests/test_keras_curve.py``.

The model is the chapter's ``conv_gru`` (``tinyrnn.chapter.conv_gru``) written in Keras::

    Conv1D(20, kernel_size=4, strides=2, padding="valid"), GRU(20, return_sequences=True) x 2,
    TimeDistributed(Dense(10)); loss "mse", Adam(learning_rate=1e-3) (epsilon 1e-7), batch 32,
    20 epochs, shuffle=False, weights drawn by Keras at seed 42

on the course's sequence-to-sequence data at seed 42 (7000 training and 2000 validation series,
targets cropped to ``Y[:, 3::2]`` as the strided convolution needs). The data come from
``tinyrnn.data`` itself, so Keras and tinyrnn train on identical arrays; the JSON records their
sums so that a change of the data recipe is named as such by the test.

Saved: the initial weights (``w0``, ``w1``, ... in ``get_weights()`` order, which is tinyrnn's),
and per epoch the training loss and metric and the validation loss and ``last_time_step_mse``
(the chapter's figure).

Run it from the repository root, in an environment with TensorFlow >= 2.16 (Keras 3); it trains
for about a minute on 2 CPU cores::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    PYTHONPATH=. /tmp/tfvenv/bin/python tests/data/make_keras_conv_gru.py
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy  # noqa: E402
import tensorflow as tf  # noqa: E402

from tinyrnn import chapter, data  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
SEED, EPOCHS, BATCH_SIZE, LEARNING_RATE = 42, 20, 32, 1e-3
WEIGHT_NAMES = ["conv1d/kernel", "conv1d/bias",
                "gru/kernel", "gru/recurrent_kernel", "gru/bias",
                "gru_1/kernel", "gru_1/recurrent_kernel", "gru_1/bias",
                "time_distributed/kernel", "time_distributed/bias"]


def course_arrays():
    """The conv_gru experiment's arrays: (X_train, Y_train), (X_valid, Y_valid), float32."""
    d = data.load_course_data("seq2seq", seed=SEED)
    return [(X, chapter.crop_for_conv_gru(Y)) for X, Y in (d["train"], d["valid"])]


def data_sums(splits) -> dict:
    """float64 sums of the arrays: a cheap fingerprint of the data recipe."""
    (X, Y), (Xv, Yv) = splits
    return {name: float(numpy.sum(a, dtype=numpy.float64))
            for name, a in (("X_train", X), ("Y_train", Y), ("X_valid", Xv), ("Y_valid", Yv))}


def last_time_step_mse(Y_true, Y_pred):
    return keras.metrics.mean_squared_error(Y_true[:, -1], Y_pred[:, -1])


def conv_gru():
    return keras.Sequential([
        keras.Input(shape=[None, 1]),
        keras.layers.Conv1D(filters=20, kernel_size=4, strides=2, padding="valid"),
        keras.layers.GRU(20, return_sequences=True),
        keras.layers.GRU(20, return_sequences=True),
        keras.layers.TimeDistributed(keras.layers.Dense(10)),
    ])


def main() -> None:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    splits = course_arrays()
    (X_train, Y_train), (X_valid, Y_valid) = splits
    keras.utils.set_random_seed(SEED)
    model = conv_gru()
    initial = model.get_weights()
    assert len(initial) == len(WEIGHT_NAMES), [w.shape for w in initial]
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                  metrics=[last_time_step_mse])
    start = time.perf_counter()
    history = model.fit(X_train, Y_train, epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=False,
                        validation_data=(X_valid, Y_valid), verbose=2)
    seconds = time.perf_counter() - start
    curve = {key: [float(v) for v in values] for key, values in history.history.items()}

    numpy.savez_compressed(HERE / "keras_conv_gru_curve.npz",
                           **{f"w{i}": w.astype(numpy.float32) for i, w in enumerate(initial)})
    meta = {
        "made_by": "tests/data/make_keras_conv_gru.py",
        "keras": keras.__version__, "tensorflow": tf.__version__, "numpy": numpy.__version__,
        "python": platform.python_version(), "backend": keras.backend.backend(),
        "model": "Conv1D(20, 4, strides=2, valid), GRU(20, rs) x 2, TimeDistributed(Dense(10))",
        "loss": "mse", "optimizer": {"name": "Adam", "learning_rate": LEARNING_RATE, "epsilon": 1e-7},
        "seed": SEED, "epochs": EPOCHS, "batch_size": BATCH_SIZE, "shuffle": False,
        "n_train": len(X_train), "n_valid": len(X_valid), "targets": "Y[:, 3::2] of the seq2seq task",
        "data_sums": data_sums(splits),
        "weights": {f"w{i}": {"name": name, "shape": list(w.shape)}
                    for i, (name, w) in enumerate(zip(WEIGHT_NAMES, initial))},
        "fit_seconds": round(seconds, 1),
        "history": curve,
    }
    (HERE / "keras_conv_gru_curve.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"epoch {EPOCHS}: val_last_time_step_mse {curve['val_last_time_step_mse'][-1]:.6f}, "
          f"val_loss {curve['val_loss'][-1]:.6f} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
