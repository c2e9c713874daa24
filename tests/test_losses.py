"""Losses: values by hand, gradients by central differences (float64), Keras naming."""

import numpy
import pytest
from helpers import loss_numeric_gradient

from tinyrnn import backend, losses

SHAPE = (2, 5, 3)  # B, T, D: distinct sizes so a wrong axis shows


def arr(a, dtype="float64"):
    return backend.xp.asarray(a, dtype=dtype)


def host(a):
    return numpy.asarray(backend.to_numpy(a))


def errors_away_from_kinks(rng, shape, kinks, width=0.1, high=2.5):
    """Random signed errors whose magnitudes stay ``width`` away from every kink in ``kinks``."""
    mags = rng.uniform(width, high, size=shape)
    for k in kinks:
        near = numpy.abs(mags - k) < width
        mags[near] += 2 * width
    return rng.choice([-1.0, 1.0], size=shape) * mags




def assert_gradient_matches(loss, y_true, y_pred):
    analytic = host(loss.gradient(arr(y_true), arr(y_pred)))
    numeric = loss_numeric_gradient(loss, arr(y_true), y_pred)
    assert analytic.shape == numeric.shape == SHAPE
    # Central differences of a piecewise quadratic are exact up to rounding.
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "loss, kinks",
    [
        (losses.MeanSquaredError(), []),
        (losses.MeanAbsoluteError(), [0.0]),
        (losses.Huber(), [0.0, 1.0]),
        (losses.Huber(delta=0.7), [0.0, 0.7]),
    ],
    ids=["mse", "mae", "huber", "huber_delta0.7"],
)
def test_gradient_matches_central_differences(loss, kinks):
    rng = numpy.random.default_rng(0)
    y_true = rng.normal(size=SHAPE)
    y_pred = y_true + errors_away_from_kinks(rng, SHAPE, kinks)
    assert_gradient_matches(loss, y_true, y_pred)


@pytest.mark.parametrize("delta", [1.0, 0.7])
def test_huber_gradient_checked_on_both_sides_of_delta(delta):
    rng = numpy.random.default_rng(1)
    y_true = rng.normal(size=SHAPE)
    e = errors_away_from_kinks(rng, SHAPE, [0.0, delta])
    inside, outside = numpy.abs(e) < delta, numpy.abs(e) > delta
    assert inside.sum() >= 5 and outside.sum() >= 5, "the test must exercise both branches"
    y_pred = y_true + e
    assert_gradient_matches(losses.Huber(delta=delta), y_true, y_pred)
    grad = host(losses.Huber(delta=delta).gradient(arr(y_true), arr(y_pred))) * e.size
    # quadratic part: e; linear part: delta * sign(e)
    numpy.testing.assert_allclose(grad[inside], e[inside], rtol=1e-12)
    numpy.testing.assert_allclose(grad[outside], delta * numpy.sign(e[outside]), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", [losses.MeanAbsoluteError(), losses.MeanSquaredError(), losses.Huber()],
                         ids=["mae", "mse", "huber"])
def test_gradient_is_zero_where_the_error_is_exactly_zero(loss, dtype):
    # MAE's |e| has a kink at 0: Keras's autodiff (sign(0) = 0) gives 0 there, so a prediction that is
    # already right is not pushed; MSE and Huber are 0 there by their formulas.
    rng = numpy.random.default_rng(3)
    y_true = rng.normal(size=SHAPE).astype(dtype)
    y_pred = y_true + rng.normal(size=SHAPE).astype(dtype)
    exact = numpy.zeros(SHAPE, bool)
    exact[0, :2, 0] = exact[1, 3] = True                         # some entries predicted exactly
    y_pred[exact] = y_true[exact]
    grad = host(loss.gradient(arr(y_true, dtype), arr(y_pred, dtype)))
    assert grad.dtype == dtype
    assert (grad[exact] == 0).all(), f"nonzero gradient at zero error: {grad[exact]}"
    assert (grad[~exact] != 0).all()
    if isinstance(loss, losses.MeanAbsoluteError):
        expected = numpy.sign(y_pred - y_true) / grad.size
        numpy.testing.assert_allclose(grad[~exact], expected[~exact], rtol=1e-6)


def test_values_by_hand():
    y_true = arr([[0.0, 1.0], [2.0, -1.0]])
    y_pred = arr([[0.5, 3.0], [2.0, -4.0]])  # errors 0.5, 2, 0, -3
    assert float(host(losses.MeanSquaredError()(y_true, y_pred))) == pytest.approx((0.25 + 4 + 0 + 9) / 4)
    assert float(host(losses.MeanAbsoluteError()(y_true, y_pred))) == pytest.approx((0.5 + 2 + 0 + 3) / 4)
    # Huber, delta 1: 0.5*0.25, 1*2-0.5, 0, 1*3-0.5
    assert float(host(losses.Huber()(y_true, y_pred))) == pytest.approx((0.125 + 1.5 + 0 + 2.5) / 4)
    # Huber, delta 2.5: 0.5*0.25, 0.5*4, 0, 2.5*3-0.5*6.25
    expected = (0.125 + 2.0 + 0 + (7.5 - 3.125)) / 4
    assert float(host(losses.Huber(delta=2.5)(y_true, y_pred))) == pytest.approx(expected)


def test_loss_is_mean_of_per_sample_means_over_last_axis():
    rng = numpy.random.default_rng(2)
    y_true, y_pred = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    per_sample = numpy.mean((y_pred - y_true) ** 2, axis=-1)
    value = losses.get("mse")(arr(y_true), arr(y_pred))
    assert float(host(value)) == pytest.approx(per_sample.mean(), rel=1e-12)


def test_value_is_a_0d_array_and_float32_stays_float32():
    rng = numpy.random.default_rng(3)
    y_true = rng.normal(size=SHAPE)  # float64 targets, float32 predictions
    y_pred = arr(rng.normal(size=SHAPE), dtype="float32")
    for loss in (losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber()):
        value = loss(arr(y_true), y_pred)
        assert backend.is_array(value) and value.ndim == 0
        assert value.dtype == numpy.float32, loss
        grad = loss.gradient(arr(y_true), y_pred)
        assert grad.dtype == numpy.float32 and grad.shape == SHAPE, loss


def test_target_without_trailing_unit_axis_is_accepted_like_keras():
    y_true = arr([1.0, 2.0, 3.0])
    y_pred = arr([[1.5], [2.0], [1.0]])
    loss = losses.MeanSquaredError()
    assert float(host(loss(y_true, y_pred))) == pytest.approx((0.25 + 0 + 4) / 3)
    assert loss.gradient(y_true, y_pred).shape == (3, 1)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 5, 3\) but y_pred has shape \(2, 3\)"):
        losses.MeanSquaredError()(arr(numpy.zeros(SHAPE)), arr(numpy.zeros((2, 3))))


def test_against_torch_where_available():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = numpy.random.default_rng(4)
    y_true = rng.normal(size=SHAPE)
    y_pred = y_true + errors_away_from_kinks(rng, SHAPE, [0.0, 0.7])
    cases = [
        (losses.MeanSquaredError(), lambda p, t: F.mse_loss(p, t)),
        (losses.MeanAbsoluteError(), lambda p, t: F.l1_loss(p, t)),
        (losses.Huber(delta=0.7), lambda p, t: F.huber_loss(p, t, delta=0.7)),
    ]
    for loss, torch_loss in cases:
        p = torch.tensor(y_pred, requires_grad=True)
        ref = torch_loss(p, torch.tensor(y_true))
        ref.backward()
        value = float(host(loss(arr(y_true), arr(y_pred))))
        assert value == pytest.approx(ref.item(), rel=1e-12), loss
        numpy.testing.assert_allclose(
            host(loss.gradient(arr(y_true), arr(y_pred))), p.grad.numpy(), rtol=1e-12, err_msg=repr(loss)
        )


@pytest.mark.parametrize(
    "name, cls",
    [
        ("mse", losses.MeanSquaredError),
        ("MSE", losses.MeanSquaredError),
        ("mean_squared_error", losses.MeanSquaredError),
        ("mae", losses.MeanAbsoluteError),
        ("Mean_Absolute_Error", losses.MeanAbsoluteError),
        ("huber", losses.Huber),
        ("huber_loss", losses.Huber),
    ],
)
def test_get_by_name(name, cls):
    assert type(losses.get(name)) is cls


def test_get_passes_instances_through_and_names_follow_keras():
    huber = losses.Huber(delta=2.0)
    assert losses.get(huber) is huber
    assert losses.get("mse").name == "mean_squared_error"
    assert losses.get("mae").name == "mean_absolute_error"
    assert huber.name == "huber_loss" and huber.get_config() == {"delta": 2.0}


def test_get_rejects_unknown_names_and_types_listing_accepted_names():
    with pytest.raises(ValueError, match=r"unknown loss 'msle'.*'mse'.*'mae'.*'huber'"):
        losses.get("msle")
    with pytest.raises(TypeError, match=r"Loss instance or one of 'mse'.*got int"):
        losses.get(3)


@pytest.mark.parametrize("delta", [0, -1.0, "1", True])
def test_huber_rejects_bad_delta(delta):
    with pytest.raises(ValueError, match="delta must be a positive number"):
        losses.Huber(delta=delta)
