"""Cross-entropy losses: gradients by central differences (float64), values by hand and
against PyTorch, the fused softmax + cross-entropy gradient, and bad input."""

import numpy
import pytest
from helpers import loss_numeric_gradient

from tinyrnn import backend, losses
from tinyrnn.layers import Dense

B, T, C = 2, 5, 4  # distinct sizes so a wrong axis shows


def arr(a, dtype="float64"):
    return backend.xp.asarray(a, dtype=dtype)


def host(a):
    return numpy.asarray(backend.to_numpy(a))


def softmax(z):
    e = numpy.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)




def assert_gradient_matches(loss, y_true, y_pred):
    analytic = host(loss.gradient(y_true, arr(y_pred)))
    numeric = loss_numeric_gradient(loss, y_true, y_pred)
    assert analytic.shape == numeric.shape == numpy.shape(y_pred)
    worst = numpy.abs(analytic - numeric).max() / numpy.abs(numeric).max()
    assert worst <= 1e-7, f"{loss}: worst relative error {worst:.2e}"


def random_case(kind, from_logits, shape, seed):
    """(y_true, y_pred) for a loss kind: random logits or probabilities away from the clip, random targets."""
    rng = numpy.random.default_rng(seed)
    if kind == "binary":
        y_true = rng.integers(0, 2, size=shape).astype("float64")
        z = rng.normal(scale=2.0, size=shape)
        return y_true, z if from_logits else rng.uniform(0.05, 0.95, size=shape)
    z = rng.normal(scale=2.0, size=shape)
    y_pred = z if from_logits else softmax(rng.normal(scale=0.5, size=shape))
    ids = rng.integers(0, shape[-1], size=shape[:-1])
    if kind == "sparse":
        return ids, y_pred
    if kind == "soft":  # soft labels: rows of random positive weights summing to 1
        return softmax(rng.normal(size=shape)), y_pred
    return numpy.eye(shape[-1])[ids], y_pred


CLASSES = {"sparse": losses.SparseCategoricalCrossentropy, "categorical": losses.CategoricalCrossentropy,
           "soft": losses.CategoricalCrossentropy, "binary": losses.BinaryCrossentropy}


SHAPES = {"BC": (B, C), "BTC": (B, T, C), "BT1": (B, T, 1)}  # one unit: binary's usual output


@pytest.mark.parametrize("kind, from_logits, shape", [
    pytest.param(kind, from_logits, shape, id=f"{kind}-{'logits' if from_logits else 'probabilities'}-{name}")
    for kind in CLASSES for from_logits in (True, False) for name, shape in SHAPES.items()
    if shape[-1] > 1 or kind == "binary"  # one class is binary's case only
])
def test_gradient_matches_central_differences(kind, from_logits, shape):
    y_true, y_pred = random_case(kind, from_logits, shape, seed=hash((kind, from_logits, shape)) % 1000)
    assert_gradient_matches(CLASSES[kind](from_logits=from_logits), y_true, y_pred)


def test_logits_gradient_is_softmax_minus_onehot_over_n():
    y_true, z = random_case("sparse", True, (B, T, C), seed=3)
    grad = host(losses.SparseCategoricalCrossentropy(from_logits=True).gradient(y_true, arr(z)))
    numpy.testing.assert_allclose(grad, (softmax(z) - numpy.eye(C)[y_true]) / (B * T), rtol=1e-12)


def test_probability_gradient_is_minus_onehot_over_p_n_plus_the_renormalisation_constant():
    y_true, p = random_case("sparse", False, (B, T, C), seed=4)
    grad = host(losses.SparseCategoricalCrossentropy().gradient(y_true, arr(p)))
    n = B * T
    numpy.testing.assert_allclose(grad, -numpy.eye(C)[y_true] / (p * n) + 1.0 / n, rtol=1e-12)


@pytest.mark.parametrize("loss", [losses.SparseCategoricalCrossentropy(), losses.CategoricalCrossentropy()],
                         ids=["sparse", "categorical"])
def test_dense_softmax_then_crossentropy_gives_the_fused_gradient_p_minus_y(loss):
    rng = numpy.random.default_rng(5)
    D = 3
    with backend.float_precision("float64"):
        dense = Dense(C, activation="softmax")
        dense.build((None, T, D))
        dense.params["kernel"][...] = arr(rng.normal(size=(D, C)))
        dense.params["bias"][...] = arr(rng.normal(size=C))
        x = arr(rng.normal(size=(B, T, D)))
        ids = rng.integers(0, C, size=(B, T))
        y_true = ids if isinstance(loss, losses.SparseCategoricalCrossentropy) else numpy.eye(C)[ids]
        p = dense.forward(x, training=True)
        dx = dense.backward(loss.gradient(y_true, p))
    dz = (host(p) - numpy.eye(C)[ids]) / (B * T)  # the fused gradient on the logits
    numpy.testing.assert_allclose(host(dense.grads["bias"]), dz.sum(axis=(0, 1)), rtol=1e-10, atol=1e-15)
    numpy.testing.assert_allclose(host(dense.grads["kernel"]),
                                  host(x).reshape(-1, D).T @ dz.reshape(-1, C), rtol=1e-10, atol=1e-15)
    numpy.testing.assert_allclose(host(dx), dz @ host(dense.params["kernel"]).T, rtol=1e-10, atol=1e-15)


def test_values_by_hand():
    ln = numpy.log
    p = numpy.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    expected = -(ln(0.7) + ln(0.6)) / 2
    assert float(losses.SparseCategoricalCrossentropy()([0, 2], arr(p))) == pytest.approx(expected, rel=1e-12)
    assert float(losses.CategoricalCrossentropy()([[1, 0, 0], [0, 0, 1]], arr(p))) == pytest.approx(
        expected, rel=1e-12)
    z = numpy.array([[1.0, 2.0, 3.0]])  # softmax: e^k / (e + e^2 + e^3)
    lse = ln(numpy.e + numpy.e ** 2 + numpy.e ** 3)
    assert float(losses.SparseCategoricalCrossentropy(from_logits=True)([1], arr(z))) == pytest.approx(
        lse - 2.0, rel=1e-12)
    pb = numpy.array([[0.9], [0.2]])
    assert float(losses.BinaryCrossentropy()([[1.0], [0.0]], arr(pb))) == pytest.approx(
        -(ln(0.9) + ln(0.8)) / 2, rel=1e-12)
    at_zero = losses.BinaryCrossentropy(from_logits=True)([1.0, 0.0], arr([[0.0], [0.0]]))
    assert float(at_zero) == pytest.approx(ln(2.0), rel=1e-12)


def test_probabilities_are_clipped_to_keras_epsilon_and_logits_stay_finite():
    # a certain wrong answer costs -log(1e-7), not infinity (Keras's clip)
    value = float(losses.SparseCategoricalCrossentropy()([0], arr([[0.0, 1.0]])))
    assert value == pytest.approx(-numpy.log(1e-7), rel=1e-9)
    value = float(losses.BinaryCrossentropy()([[1.0]], arr([[0.0]])))
    assert value == pytest.approx(-numpy.log(1e-7), rel=1e-6)
    # huge logits: log-sum-exp keeps the value finite and exact
    big = losses.SparseCategoricalCrossentropy(from_logits=True)([1, 0], arr([[1000.0, 0.0], [1000.0, 0.0]]))
    assert float(big) == pytest.approx(500.0, rel=1e-12)
    bce = losses.BinaryCrossentropy(from_logits=True)
    grad = host(bce.gradient([[0.0], [1.0]], arr([[800.0], [-800.0]])))
    numpy.testing.assert_allclose(grad, [[0.5], [-0.5]])


def test_float32_stays_float32_and_sparse_ids_may_be_float_or_have_a_unit_axis():
    p = softmax(numpy.random.default_rng(6).normal(size=(B, C))).astype("float32")
    loss = losses.SparseCategoricalCrossentropy()
    value = loss([1, 3], arr(p, "float32"))
    assert value.ndim == 0 and value.dtype == numpy.float32
    assert loss.gradient([1, 3], arr(p, "float32")).dtype == numpy.float32
    assert float(loss(numpy.array([[1.0], [3.0]]), arr(p, "float32"))) == pytest.approx(float(value))


def test_get_by_keras_names_and_config_round_trip():
    for name, cls in [("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
                      ("categorical_crossentropy", losses.CategoricalCrossentropy),
                      ("binary_crossentropy", losses.BinaryCrossentropy)]:
        loss = losses.get(name)
        assert type(loss) is cls and loss.name == name and loss.from_logits is False
        rebuilt = cls(**cls(from_logits=True).get_config())
        assert rebuilt.from_logits is True


@pytest.mark.parametrize("cls", [losses.SparseCategoricalCrossentropy, losses.CategoricalCrossentropy,
                                 losses.BinaryCrossentropy])
@pytest.mark.parametrize("bad", [-0.5, 1.5])
def test_probabilities_outside_0_1_are_a_clear_error_suggesting_from_logits(cls, bad):
    y_pred = numpy.full((B, C), 0.25)
    y_pred[1, 2] = bad
    y_true = {losses.SparseCategoricalCrossentropy: [0, 1],
              losses.CategoricalCrossentropy: numpy.eye(C)[[0, 1]],
              losses.BinaryCrossentropy: numpy.zeros((B, C))}[cls]
    for call in (cls(), cls().gradient):
        with pytest.raises(ValueError, match=rf"{cls.name}.*from_logits=True"):
            call(y_true, arr(y_pred))
    cls(from_logits=True)(y_true, arr(y_pred))  # logits may be anything


@pytest.mark.parametrize("ids, match", [([0, 4], r"class id 4 .*C=4"), ([-1, 0], r"class id -1 .*C=4"),
                                        ([0.0, 1.5], r"integers, got 1\.5")])
def test_sparse_ids_out_of_range_or_not_integers_are_clear_errors(ids, match):
    with pytest.raises(ValueError, match=match):
        losses.SparseCategoricalCrossentropy(from_logits=True)(ids, arr(numpy.zeros((B, C))))


def test_wrong_target_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(2, 5\)"):
        losses.SparseCategoricalCrossentropy()(numpy.zeros((B, 3)), arr(numpy.full((B, T, C), 0.25)))
    with pytest.raises(ValueError, match="SparseCategoricalCrossentropy"):
        losses.CategoricalCrossentropy()([0, 1], arr(numpy.full((B, C), 0.25)))
    with pytest.raises(TypeError, match="from_logits"):
        losses.BinaryCrossentropy(from_logits="yes")


@pytest.mark.parametrize("shape", [(B, C), (B, T, C)], ids=["BC", "BTC"])
def test_values_match_pytorch(shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = numpy.random.default_rng(7)
    z = rng.normal(scale=2.0, size=shape)
    ids = rng.integers(0, C, size=shape[:-1])
    soft = softmax(rng.normal(size=shape))
    tz, tids, tsoft = torch.tensor(z.reshape(-1, C)), torch.tensor(ids.reshape(-1)), torch.tensor(
        soft.reshape(-1, C))
    tp = torch.softmax(tz, dim=-1)
    cases = [
        (losses.SparseCategoricalCrossentropy(from_logits=True)(ids, arr(z)), F.cross_entropy(tz, tids)),
        (losses.SparseCategoricalCrossentropy()(ids, arr(softmax(z))), F.nll_loss(torch.log(tp), tids)),
        (losses.CategoricalCrossentropy(from_logits=True)(soft, arr(z)), F.cross_entropy(tz, tsoft)),
        (losses.CategoricalCrossentropy()(soft, arr(softmax(z))), F.cross_entropy(tz, tsoft)),
    ]
    yb = rng.integers(0, 2, size=shape).astype("float64")
    pb = rng.uniform(0.01, 0.99, size=shape)
    cases += [
        (losses.BinaryCrossentropy(from_logits=True)(yb, arr(z)),
         F.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(yb))),
        (losses.BinaryCrossentropy()(yb, arr(pb)),
         F.binary_cross_entropy(torch.tensor(pb), torch.tensor(yb))),
    ]
    for ours, theirs in cases:
        assert float(ours) == pytest.approx(float(theirs), rel=1e-10)
    # and the logits gradient against autograd
    tz.requires_grad_(True)
    F.cross_entropy(tz, tids).backward()
    ours = host(losses.SparseCategoricalCrossentropy(from_logits=True).gradient(ids, arr(z)))
    numpy.testing.assert_allclose(ours.reshape(-1, C), tz.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_a_softmax_classifier_trains_with_categorical_crossentropy_and_saves_its_loss(tmp_path):
    import tinyrnn
    from tinyrnn import Sequential

    tinyrnn.seeding.set_random_seed(0)
    rng = numpy.random.default_rng(8)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = numpy.eye(3)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0)]  # three classes from two signs
    model = Sequential([Dense(8, activation="tanh", input_shape=(3,)), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, verbose=0).history
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    assert history["accuracy"][-1] > history["accuracy"][0]
    model.compile(loss=losses.CategoricalCrossentropy(from_logits=True), optimizer="adam", metrics=["acc"])
    model.save(tmp_path / "m.npz")
    loaded = tinyrnn.load_model(tmp_path / "m.npz")
    assert isinstance(loaded.loss, losses.CategoricalCrossentropy) and loaded.loss.from_logits is True
    assert [name for name, _ in loaded.metrics] == ["acc"]


def test_fit_takes_integer_class_ids_for_the_sparse_loss():
    """Keras's usage: y holds one integer id per output row, (B,) or (B, T); the loss goes down."""
    import tinyrnn
    from tinyrnn.layers import Dense, SimpleRNN

    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    ids = (x[:, -1, 0] > 0).astype("int64") + (x[:, -1, 1] > 0)                  # (B,) in 0..2
    model = tinyrnn.Sequential([SimpleRNN(8, input_shape=[None, 3]), Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, ids, epochs=10, verbose=0).history
    assert history["loss"][-1] < 0.95 * history["loss"][0]
    per_step = (x[..., 0] > 0).astype("int32")                                      # (B, T)
    seq = tinyrnn.Sequential([SimpleRNN(8, return_sequences=True, input_shape=[None, 3]),
                              Dense(2, activation="softmax")])
    seq.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    assert seq.evaluate(x, per_step) > 0
    mse = tinyrnn.Sequential([SimpleRNN(8, input_shape=[None, 3]), Dense(3)])
    mse.compile(loss="mse", optimizer="adam")
    with pytest.raises(TypeError, match="integer dtype"):                          # only ids are ids
        mse.fit(x, ids, epochs=1, verbose=0)
