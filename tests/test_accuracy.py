"""Accuracy metrics: per-sample values by hand, the shape rule of "accuracy", names, float ids."""

import numpy
import pytest

from tinyrnn import backend, metrics

B, T, C = 2, 5, 4


def host(a):
    return numpy.asarray(backend.to_numpy(a))


def arr(a):
    return backend.xp.asarray(a, dtype="float64")


# two samples over three classes: predicted classes 1 and 0
P = [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]


def test_sparse_categorical_accuracy_by_hand():
    got = host(metrics.sparse_categorical_accuracy(arr([1, 2]), arr(P)))
    numpy.testing.assert_array_equal(got, [1.0, 0.0])
    # a trailing unit axis, and ids as the floats fit makes of targets
    numpy.testing.assert_array_equal(host(metrics.sparse_categorical_accuracy(arr([[0.0], [0.0]]), arr(P))),
                                     [0.0, 1.0])


def test_categorical_accuracy_by_hand():
    onehot = [[0, 1, 0], [0, 0, 1]]
    numpy.testing.assert_array_equal(host(metrics.categorical_accuracy(arr(onehot), arr(P))), [1.0, 0.0])


def test_binary_accuracy_by_hand_with_threshold_one_half():
    y_pred = [[0.7, 0.2, 0.5], [0.51, 0.49, 0.9]]  # > 0.5: (1, 0, 0) and (1, 0, 1)
    y_true = [[1, 0, 1], [1, 1, 1]]
    numpy.testing.assert_allclose(host(metrics.binary_accuracy(arr(y_true), arr(y_pred))), [2 / 3, 2 / 3])
    # a (B,) target for (B, 1) predictions
    got = host(metrics.binary_accuracy(arr([1, 1]), arr([[0.9], [0.1]])))
    numpy.testing.assert_array_equal(got, [1.0, 0.0])


def test_sequence_accuracies_are_per_time_step():
    rng = numpy.random.default_rng(0)
    y_pred = rng.normal(size=(B, T, C))
    ids = rng.integers(0, C, size=(B, T))
    expected = (y_pred.argmax(axis=-1) == ids).astype(float)
    assert 0 < expected.sum() < expected.size, "the test needs both right and wrong steps"
    got = host(metrics.sparse_categorical_accuracy(arr(ids), arr(y_pred)))
    assert got.shape == (B, T)
    numpy.testing.assert_array_equal(got, expected)
    numpy.testing.assert_array_equal(host(metrics.categorical_accuracy(arr(numpy.eye(C)[ids]), arr(y_pred))),
                                     expected)
    assert metrics.reduce(metrics.get("accuracy")[1](arr(ids), arr(y_pred))) == pytest.approx(expected.mean())


@pytest.mark.parametrize("true_shape, pred_shape, chosen", [
    ((B,), (B, C), metrics.sparse_categorical_accuracy),
    ((B, 1), (B, C), metrics.sparse_categorical_accuracy),
    ((B, T), (B, T, C), metrics.sparse_categorical_accuracy),
    ((B, C), (B, C), metrics.categorical_accuracy),
    ((B, T, C), (B, T, C), metrics.categorical_accuracy),
    ((B, 1), (B, 1), metrics.binary_accuracy),
    ((B,), (B, 1), metrics.binary_accuracy),
    ((B, T, 1), (B, T, 1), metrics.binary_accuracy),
])
def test_accuracy_chooses_from_the_shapes(true_shape, pred_shape, chosen):
    assert metrics.accuracy_function(numpy.zeros(true_shape), numpy.zeros(pred_shape)) is chosen


def test_accuracy_gives_the_chosen_functions_values():
    numpy.testing.assert_array_equal(host(metrics.accuracy(arr([1, 2]), arr(P))), [1.0, 0.0])
    numpy.testing.assert_array_equal(host(metrics.accuracy(arr([[0, 1, 0], [1, 0, 0]]), arr(P))), [1.0, 1.0])
    numpy.testing.assert_array_equal(host(metrics.accuracy(arr([[1], [1]]), arr([[0.9], [0.1]]))), [1.0, 0.0])


@pytest.mark.parametrize("name, reported, fn", [
    ("accuracy", "accuracy", metrics.accuracy), ("ACC", "acc", metrics.accuracy),
    ("sparse_categorical_accuracy", "sparse_categorical_accuracy", metrics.sparse_categorical_accuracy),
    ("categorical_accuracy", "categorical_accuracy", metrics.categorical_accuracy),
    ("binary_accuracy", "binary_accuracy", metrics.binary_accuracy),
])
def test_get_by_keras_names(name, reported, fn):
    assert metrics.get(name) == (reported, fn)


def test_float32_predictions_give_float32_values():
    value = metrics.sparse_categorical_accuracy(arr([1, 2]), backend.xp.asarray(P, dtype="float32"))
    assert value.dtype == numpy.float32
