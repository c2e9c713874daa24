"""Metrics: per-sample values by hand, the course's last_time_step_mse, names, reduce."""

import numpy
import pytest

import tinyrnn.metrics
from tinyrnn import backend, metrics


def arr(a):
    return backend.xp.asarray(a, dtype="float64")


def host(a):
    return numpy.asarray(backend.to_numpy(a))


Y_TRUE = [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]
Y_PRED = [[1.0, 1.0, 0.0], [1.0, 4.0, 1.0]]  # errors (1, 0, -2) and (0, 3, 0)


def test_mean_squared_error_per_sample_by_hand():
    numpy.testing.assert_allclose(host(metrics.mean_squared_error(arr(Y_TRUE), arr(Y_PRED))), [5 / 3, 3.0])
    assert metrics.mse is metrics.mean_squared_error


def test_mean_absolute_error_per_sample_by_hand():
    numpy.testing.assert_allclose(host(metrics.mean_absolute_error(arr(Y_TRUE), arr(Y_PRED))), [1.0, 1.0])
    assert metrics.mae is metrics.mean_absolute_error


def test_metrics_reduce_only_the_last_axis():
    rng = numpy.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 3))
    value = host(metrics.mse(arr(y_true), arr(y_pred)))
    assert value.shape == (2, 5)
    numpy.testing.assert_allclose(value[1, 4], numpy.mean((y_pred[1, 4] - y_true[1, 4]) ** 2), rtol=1e-12)


def test_last_time_step_mse_scores_only_the_last_step():
    # (B=2, T=3, D=2): the earlier steps carry large errors the metric must ignore.
    y_true = numpy.zeros((2, 3, 2))
    y_pred = numpy.full((2, 3, 2), 100.0)
    y_pred[0, -1] = [1.0, 3.0]  # (1 + 9) / 2 = 5
    y_pred[1, -1] = [0.0, -2.0]  # (0 + 4) / 2 = 2
    value = host(metrics.last_time_step_mse(arr(y_true), arr(y_pred)))
    numpy.testing.assert_allclose(value, [5.0, 2.0])


def test_get_builtin_names():
    assert metrics.get("mse") == ("mse", metrics.mean_squared_error)
    assert metrics.get("Mean_Squared_Error") == ("mse", metrics.mean_squared_error)
    assert metrics.get("mae") == ("mae", metrics.mean_absolute_error)
    assert metrics.get("mean_absolute_error") == ("mae", metrics.mean_absolute_error)
    assert metrics.get("last_time_step_mse") == ("last_time_step_mse", metrics.last_time_step_mse)


def test_a_users_metric_works_and_is_named_by_its_function_name():
    def last_time_step_mse(Y_true, Y_pred):  # the course notebook's own definition
        return tinyrnn.metrics.mean_squared_error(Y_true[:, -1], Y_pred[:, -1])

    name, fn = metrics.get(last_time_step_mse)
    assert name == "last_time_step_mse" and fn is last_time_step_mse
    rng = numpy.random.default_rng(1)
    y_true, y_pred = arr(rng.normal(size=(4, 6, 1))), arr(rng.normal(size=(4, 6, 1)))
    builtin = metrics.last_time_step_mse(y_true, y_pred)
    numpy.testing.assert_array_equal(host(fn(y_true, y_pred)), host(builtin))

    def my_metric(y_true, y_pred):
        return metrics.mae(y_true, y_pred)

    assert metrics.get(my_metric)[0] == "my_metric"


def test_get_rejects_unknown_names_listing_accepted_ones():
    with pytest.raises(ValueError, match=r"unknown metric 'auc'.*'mse'.*'mae'.*'last_time_step_mse'"):
        metrics.get("auc")
    with pytest.raises(TypeError, match=r"fn\(y_true, y_pred\) or one of 'mse'"):
        metrics.get(42)


def test_reduce_gives_a_python_float_mean():
    value = metrics.reduce(metrics.mse(arr(Y_TRUE), arr(Y_PRED)))
    assert type(value) is float
    assert value == pytest.approx((5 / 3 + 3.0) / 2)
    assert metrics.reduce(numpy.float32(2.5)) == 2.5


def test_reduce_copies_device_arrays_to_the_host():
    class DeviceArray:  # what backend.to_numpy sees from CuPy: an array with .get()
        def get(self):
            return numpy.array([1.0, 2.0, 6.0])

    assert metrics.reduce(DeviceArray()) == pytest.approx(3.0)
