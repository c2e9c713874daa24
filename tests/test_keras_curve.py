"""tinyrnn trains as Keras 3 does: the course's Conv1D + GRU model, started from the initial
weights Keras drew at seed 42 and fed the batches in order, follows Keras's validation curve
epoch by epoch.

The fixture (``tests/data/keras_conv_gru_curve.npz`` / ``.json``) was made by
``tests/data/make_keras_conv_gru.py`` (Keras 3 on TensorFlow): the initial weights and, per
epoch, the validation loss and ``last_time_step_mse``. Both sides train on the same arrays
(``tinyrnn.data``, seed 42), in float32, with Adam(1e-3, epsilon 1e-7), batch 32, no shuffle.
"""

import contextlib
import json
import pathlib

import numpy
import pytest

from tinyrnn import backend, chapter, data, seeding
from tinyrnn.optimizers import Adam

DATA = pathlib.Path(__file__).resolve().parent / "data"
RTOL = 1e-3
"""Largest relative gap between tinyrnn's and Keras's validation figures at any epoch."""


def load_keras_run():
    """The fixture: (metadata with Keras's per-epoch history, initial weights in get_weights() order)."""
    meta = json.loads((DATA / "keras_conv_gru_curve.json").read_text())
    arrays = numpy.load(DATA / "keras_conv_gru_curve.npz")
    return meta, [arrays[f"w{i}"] for i in range(len(meta["weights"]))]


def load_course_splits(meta):
    """(X_train, Y_train), (X_valid, Y_valid) of conv_gru at the fixture's seed, checked against its sums."""
    d = data.load_course_data("seq2seq", seed=meta["seed"])
    splits = [(X, chapter.crop_for_conv_gru(Y)) for X, Y in (d["train"], d["valid"])]
    (X, Y), (Xv, Yv) = splits
    sums = {name: float(numpy.sum(a, dtype=numpy.float64))
            for name, a in (("X_train", X), ("Y_train", Y), ("X_valid", Xv), ("Y_valid", Yv))}
    for name, expected in meta["data_sums"].items():
        assert sums[name] == pytest.approx(expected, rel=1e-9), (
            f"{name} differs from the data Keras was trained on (sum {sums[name]!r}, fixture {expected!r}): "
            "the data recipe in tinyrnn.data changed; remake the fixture with "
            "tests/data/make_keras_conv_gru.py")
    return splits


@contextlib.contextmanager
def one_blas_thread():
    """The chapter's setting for its small models (a BLAS thread pool only adds waiting); restored after."""
    before = backend.blas_threads()
    backend.limit_blas_threads(1)
    try:
        yield
    finally:
        if before:
            backend.limit_blas_threads(before)


def train_like_keras(meta, weights, splits, epochs):
    """tinyrnn's conv_gru from Keras's initial weights, fit(shuffle=False) in float32; its history."""
    (X, Y), (Xv, Yv) = splits
    with backend.float_precision("float32"), one_blas_thread():
        seeding.set_random_seed(meta["seed"])
        model = chapter.conv_gru()
        model.build()
        assert [list(w.shape) for w in model.get_weights()] == [w["shape"] for w in meta["weights"].values()]
        model.set_weights(weights)
        model.compile(loss="mse", optimizer=Adam(learning_rate=meta["optimizer"]["learning_rate"],
                                                 epsilon=meta["optimizer"]["epsilon"]),
                      metrics=["last_time_step_mse"])
        return model.fit(X, Y, epochs=epochs, batch_size=meta["batch_size"], shuffle=False,
                         validation_data=(Xv, Yv), verbose=0).history


@pytest.fixture(scope="module")
def keras_run():
    return load_keras_run()


@pytest.fixture(scope="module")
def course_splits(keras_run):
    return load_course_splits(keras_run[0])


def assert_follows(ours, keras, epochs):
    for key in ("val_last_time_step_mse", "val_loss"):
        theirs = numpy.asarray(keras[key][:epochs])
        mine = numpy.asarray(ours[key])
        gaps = numpy.abs(mine / theirs - 1)
        assert (gaps <= RTOL).all(), (
            f"{key} leaves Keras's curve: worst relative gap {gaps.max():.2e} at epoch {gaps.argmax() + 1} "
            f"(ours {mine[gaps.argmax()]:.6f}, Keras {theirs[gaps.argmax()]:.6f})")


def test_first_epochs_follow_keras(keras_run, course_splits):
    """Two epochs (a few seconds): the first updates already match Keras's."""
    meta, _ = keras_run
    assert meta["shuffle"] is False and meta["batch_size"] == 32 and meta["epochs"] == 20
    ours = train_like_keras(*keras_run, course_splits, epochs=2)
    assert_follows(ours, meta["history"], epochs=2)


@pytest.mark.slow
def test_twenty_epochs_follow_keras(keras_run, course_splits):
    """The whole course run: every epoch's validation figure within 1e-3 of Keras's."""
    meta, _ = keras_run
    ours = train_like_keras(*keras_run, course_splits, epochs=meta["epochs"])
    assert_follows(ours, meta["history"], epochs=meta["epochs"])
