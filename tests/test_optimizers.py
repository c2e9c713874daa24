"""Optimizers against independent references (textbook formulas, PyTorch), clipping, state."""

import io

import numpy
import pytest

from tinyrnn import backend, optimizers

SHAPES = {"dense/kernel": (3, 4), "dense/bias": (4,)}  # D=3 inputs, H=4 units
STEPS = 5


def host(a):
    return numpy.asarray(backend.to_numpy(a))


def random_problem(seed=0, dtype="float64", scale=1.0):
    """Parameters (backend arrays) and STEPS rounds of random gradients (host arrays)."""
    rng = numpy.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: scale * rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(STEPS)]
    cast = {k: backend.xp.asarray(v, dtype=dtype) for k, v in params.items()}
    return cast, grads


def run(optimizer, params, grads, dtype="float64"):
    """Apply every round of gradients; params are updated in place. Returns host copies."""
    for round_ in grads:
        optimizer.apply_gradients(
            [(k, params[k], backend.xp.asarray(g, dtype=dtype)) for k, g in round_.items()]
        )
    return {k: host(v).copy() for k, v in params.items()}


def assert_params_close(mine, reference, rtol=1e-12, atol=1e-14):
    for k in reference:
        numpy.testing.assert_allclose(
            mine[k], reference[k], rtol=rtol, atol=atol, err_msg=f"{k}: mine vs reference"
        )


# --- independent references, written in other (textbook / PyTorch) forms -----


def reference_adam(params, grads, lr, beta_1, beta_2, epsilon):
    """Textbook bias-corrected Adam. Keras's efficient form equals it with eps_hat = eps / sqrt(1 - b2^t)."""
    p = {k: host(v).copy() for k, v in params.items()}
    m = {k: numpy.zeros_like(v) for k, v in p.items()}
    v = {k: numpy.zeros_like(x) for k, x in p.items()}
    for t, round_ in enumerate(grads, start=1):
        for k, g in round_.items():
            m[k] = beta_1 * m[k] + (1 - beta_1) * g
            v[k] = beta_2 * v[k] + (1 - beta_2) * g**2
            m_hat = m[k] / (1 - beta_1**t)
            v_hat = v[k] / (1 - beta_2**t)
            eps_hat = epsilon / numpy.sqrt(1 - beta_2**t)
            p[k] = p[k] - lr * m_hat / (numpy.sqrt(v_hat) + eps_hat)
    return p


def reference_sgd(params, grads, lr, momentum, nesterov):
    """PyTorch's form: a buffer of summed gradients b = mu b + g; step lr * b (or lr * (g + mu b))."""
    p = {k: host(v).copy() for k, v in params.items()}
    b = {k: numpy.zeros_like(v) for k, v in p.items()}
    for round_ in grads:
        for k, g in round_.items():
            b[k] = momentum * b[k] + g
            direction = g + momentum * b[k] if nesterov else b[k]
            p[k] = p[k] - lr * direction
    return p


@pytest.mark.parametrize("epsilon", [1e-7, 0.05])  # a large epsilon makes its bias correction matter
def test_adam_matches_textbook_bias_corrected_form(epsilon):
    params, grads = random_problem(seed=1)
    expected = reference_adam(params, grads, lr=0.01, beta_1=0.8, beta_2=0.95, epsilon=epsilon)
    mine = run(optimizers.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=epsilon), params, grads)
    assert_params_close(mine, expected)


def test_adam_defaults_match_keras():
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    params, grads = random_problem(seed=2)
    expected = reference_adam(params, grads, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    assert_params_close(run(adam, params, grads), expected)
    assert adam.iterations == STEPS


@pytest.mark.parametrize(
    "momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True), (0.0, True)]
)
def test_sgd_matches_buffer_form(momentum, nesterov):
    params, grads = random_problem(seed=3)
    expected = reference_sgd(params, grads, lr=0.05, momentum=momentum, nesterov=nesterov)
    mine = run(optimizers.SGD(learning_rate=0.05, momentum=momentum, nesterov=nesterov), params, grads)
    assert_params_close(mine, expected)


def test_sgd_defaults_match_keras():
    sgd = optimizers.SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)


def _torch_run(torch, opt_factory, params, grads):
    tparams = {k: torch.tensor(host(v).copy(), requires_grad=True) for k, v in params.items()}
    opt = opt_factory(list(tparams.values()))
    for round_ in grads:
        for k, t in tparams.items():
            t.grad = torch.tensor(round_[k])
        opt.step()
    return {k: t.detach().numpy() for k, t in tparams.items()}


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_torch(momentum, nesterov):
    torch = pytest.importorskip("torch")
    params, grads = random_problem(seed=4)
    expected = _torch_run(
        torch, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=momentum, nesterov=nesterov), params, grads
    )
    mine = run(optimizers.SGD(learning_rate=0.05, momentum=momentum, nesterov=nesterov), params, grads)
    assert_params_close(mine, expected)


def test_adam_matches_torch_at_zero_epsilon():
    # PyTorch adds epsilon after bias correction, Keras before; at epsilon = 0 they agree exactly.
    torch = pytest.importorskip("torch")
    params, grads = random_problem(seed=5)
    expected = _torch_run(
        torch, lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=0.0), params, grads
    )
    mine = run(optimizers.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=0.0), params, grads)
    assert_params_close(mine, expected)


# --- in place, dtype, grads untouched ----------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.SGD(0.1),
        lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=0.5),
        lambda: optimizers.Adam(0.01, global_clipnorm=0.5),
        lambda: optimizers.Adam(0.01, clipvalue=0.1),
        lambda: optimizers.AdamW(0.01),
        lambda: optimizers.Nadam(0.01, clipnorm=0.5),
        lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True),
        lambda: optimizers.Adagrad(0.01),
    ],
    ids=["sgd", "nesterov+clipnorm", "adam+global_clipnorm", "adam+clipvalue", "adamw", "nadam+clipnorm",
         "rmsprop-centered-momentum", "adagrad"],
)
def test_updates_in_place_keep_float32_and_leave_grads_alone(make):
    opt = make()
    params, grads = random_problem(seed=6, dtype="float32")
    held = {k: v for k, v in params.items()}  # what a layer keeps
    views = {k: v.reshape(-1) for k, v in params.items()}
    before = {k: host(v).copy() for k, v in params.items()}
    g32 = {k: backend.xp.asarray(g, dtype="float32") for k, g in grads[0].items()}
    g_copies = {k: host(g).copy() for k, g in g32.items()}
    opt.apply_gradients([(k, params[k], g32[k]) for k in SHAPES])
    for k in SHAPES:
        assert params[k] is held[k] and params[k].dtype == numpy.float32, k
        assert not numpy.array_equal(host(params[k]), before[k]), f"{k} was not updated"
        numpy.testing.assert_array_equal(host(views[k]), host(params[k]).reshape(-1))
        numpy.testing.assert_array_equal(host(g32[k]), g_copies[k], err_msg=f"{k}: gradient was modified")
    for table in opt.slots.values():
        assert all(s.dtype == numpy.float32 for s in table.values())


def test_float32_sgd_step_is_computed_in_float32():
    # p - lr*g rounded in float32 at every operation; a float64 temporary would differ in some entries.
    rng = numpy.random.default_rng(7)
    p = backend.xp.asarray(rng.normal(size=1000), dtype="float32")
    g = backend.xp.asarray(rng.normal(size=1000), dtype="float32")
    expected = host(p) - numpy.float32(0.1) * host(g)
    optimizers.SGD(learning_rate=numpy.float64(0.1)).apply_gradients([("w", p, g)])
    numpy.testing.assert_array_equal(host(p), expected)


# --- clipping: each option, binding and not binding --------------------------


def _one_sgd_step(grads, **clip):
    """The step an SGD(lr=1) takes for ``grads`` (dict key -> host array), i.e. -clipped grads."""
    params = {k: backend.xp.zeros(g.shape) for k, g in grads.items()}
    optimizers.SGD(learning_rate=1.0, **clip).apply_gradients(
        [(k, params[k], backend.xp.asarray(g)) for k, g in grads.items()]
    )
    return {k: -host(p) for k, p in params.items()}


GRADS = {"a": numpy.array([3.0, -4.0]), "b": numpy.array([[0.3], [-0.1], [0.2]])}  # norms 5 and ~0.374


def test_clipvalue_binds():
    clipped = _one_sgd_step(GRADS, clipvalue=0.25)
    numpy.testing.assert_array_equal(clipped["a"], [0.25, -0.25])
    numpy.testing.assert_array_equal(clipped["b"], [[0.25], [-0.1], [0.2]])


def test_clipvalue_does_not_bind():
    clipped = _one_sgd_step(GRADS, clipvalue=10.0)
    for k in GRADS:
        numpy.testing.assert_array_equal(clipped[k], GRADS[k])


def test_clipnorm_binds_per_variable():
    clipped = _one_sgd_step(GRADS, clipnorm=1.0)
    numpy.testing.assert_allclose(clipped["a"], [0.6, -0.8], rtol=1e-15)  # norm 5 -> 1, same direction
    numpy.testing.assert_allclose(clipped["b"], GRADS["b"], rtol=1e-15)  # norm 0.374 < 1: untouched


def test_clipnorm_does_not_bind():
    clipped = _one_sgd_step(GRADS, clipnorm=6.0)
    for k in GRADS:
        numpy.testing.assert_allclose(clipped[k], GRADS[k], rtol=1e-15)


def test_global_clipnorm_binds_jointly():
    norm = numpy.sqrt(sum(numpy.sum(g**2) for g in GRADS.values()))
    clipped = _one_sgd_step(GRADS, global_clipnorm=2.0)
    for k in GRADS:  # every gradient shrinks by the same factor, even the small one
        numpy.testing.assert_allclose(clipped[k], GRADS[k] * 2.0 / norm, rtol=1e-14)
    assert numpy.sqrt(sum(numpy.sum(g**2) for g in clipped.values())) == pytest.approx(2.0, rel=1e-14)


def test_global_clipnorm_does_not_bind():
    clipped = _one_sgd_step(GRADS, global_clipnorm=10.0)
    for k in GRADS:
        numpy.testing.assert_allclose(clipped[k], GRADS[k], rtol=1e-15)


def test_zero_gradient_survives_norm_clipping():
    zeros = {"a": numpy.zeros(3)}
    for clip in ({"clipnorm": 1.0}, {"global_clipnorm": 1.0}):
        numpy.testing.assert_array_equal(_one_sgd_step(zeros, **clip)["a"], numpy.zeros(3))


def test_clipping_feeds_the_clipped_gradient_to_adam():
    params, grads = random_problem(seed=8, scale=3.0)
    clipped_grads = [{k: numpy.clip(g, -0.5, 0.5) for k, g in round_.items()} for round_ in grads]
    expected = reference_adam(params, clipped_grads, lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    mine = run(optimizers.Adam(learning_rate=0.01, clipvalue=0.5), params, grads)
    assert_params_close(mine, expected)


# --- construction, names, validation -----------------------------------------


def test_lr_is_the_old_spelling_of_learning_rate():
    assert optimizers.SGD(lr=0.2).learning_rate == 0.2
    adam = optimizers.Adam(lr=0.003)
    assert adam.learning_rate == adam.lr == 0.003
    adam.lr = 0.004
    assert adam.learning_rate == 0.004
    with pytest.raises(ValueError, match="learning_rate or its old Keras spelling lr, not both"):
        optimizers.Adam(learning_rate=0.01, lr=0.01)


def test_hyperparameters_are_python_floats():
    adam = optimizers.Adam(learning_rate=numpy.float64(0.01), beta_1=numpy.float32(0.5), clipnorm=2)
    assert type(adam.learning_rate) is float and type(adam.beta_1) is float and type(adam.clipnorm) is float


ONLY_ONE_CLIP = "only one of clipnorm, clipvalue and global_clipnorm can be set"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: optimizers.SGD(learning_rate=0), "learning_rate must be > 0"),
        (lambda: optimizers.Adam(learning_rate=-1e-3), "learning_rate must be > 0"),
        (lambda: optimizers.SGD(learning_rate="fast"), "learning_rate must be a finite number"),
        (lambda: optimizers.SGD(learning_rate=float("nan")), "learning_rate must be a finite number"),
        (lambda: optimizers.SGD(momentum=1.5), "momentum must be <= 1"),
        (lambda: optimizers.SGD(momentum=-0.1), "momentum must be >= 0"),
        (lambda: optimizers.SGD(nesterov="yes"), "nesterov must be True or False"),
        (lambda: optimizers.Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
        (lambda: optimizers.Adam(beta_2=-0.5), "beta_2 must be >= 0"),
        (lambda: optimizers.Adam(epsilon=-1e-7), "epsilon must be >= 0"),
        (lambda: optimizers.SGD(clipnorm=0), "clipnorm must be > 0"),
        (lambda: optimizers.SGD(clipvalue=-1), "clipvalue must be > 0"),
        (lambda: optimizers.SGD(global_clipnorm=True), "global_clipnorm must be a finite number"),
        (lambda: optimizers.SGD(clipnorm=1, global_clipnorm=1), ONLY_ONE_CLIP),
        (lambda: optimizers.Adam(clipnorm=1, clipvalue=1), ONLY_ONE_CLIP),
        (lambda: optimizers.Nadam(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
        (lambda: optimizers.RMSprop(rho=1.0), r"rho must be in \[0, 1\)"),
        (lambda: optimizers.RMSprop(momentum=2.0), "momentum must be <= 1"),
        (lambda: optimizers.RMSprop(centered=1), "centered must be True or False"),
        (lambda: optimizers.Adagrad(initial_accumulator_value=-0.1),
         "initial_accumulator_value must be >= 0"),
        (lambda: optimizers.AdamW(weight_decay=None), "weight_decay must be a finite number"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_apply_gradients_rejects_mismatched_or_repeated_entries():
    opt = optimizers.SGD()
    p = backend.xp.zeros((3, 4))
    mismatch = r"w: gradient shape \(4, 3\) does not match parameter shape \(3, 4\)"
    with pytest.raises(ValueError, match=mismatch):
        opt.apply_gradients([("w", p, backend.xp.zeros((4, 3)))])
    with pytest.raises(ValueError, match="'w' appears twice"):
        opt.apply_gradients([("w", p, backend.xp.zeros((3, 4))), ("w", p, backend.xp.zeros((3, 4)))])
    with pytest.raises(ValueError, match=r"\(key, param, grad\) triples"):
        opt.apply_gradients([(p, backend.xp.zeros((3, 4)))])
    assert opt.iterations == 0
    opt.apply_gradients([])  # nothing to do, no step counted (as in Keras)
    assert opt.iterations == 0


@pytest.mark.parametrize(
    "name, cls",
    [("adam", optimizers.Adam), ("Adam", optimizers.Adam), ("SGD", optimizers.SGD),
     ("nadam", optimizers.Nadam), ("rmsprop", optimizers.RMSprop), ("RMSprop", optimizers.RMSprop),
     ("adagrad", optimizers.Adagrad), ("adamw", optimizers.AdamW)],
)
def test_get_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


def test_get_passes_instances_through_and_rebuilds_from_config():
    sgd = optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipvalue=1.0)
    assert optimizers.get(sgd) is sgd
    config = sgd.get_config()
    assert config == {
        "name": "sgd",
        "learning_rate": 0.1,
        "clipnorm": None,
        "clipvalue": 1.0,
        "global_clipnorm": None,
        "momentum": 0.9,
        "nesterov": True,
    }
    assert optimizers.SGD.from_config(config).get_config() == config
    adam = optimizers.Adam(0.002, beta_2=0.99, global_clipnorm=5.0)
    rebuilt = optimizers.get({"class_name": "Adam", "config": adam.get_config()})
    assert type(rebuilt) is optimizers.Adam and rebuilt.get_config() == adam.get_config()


def test_get_rejects_unknown_names_listing_accepted_ones():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adadelta'.*'sgd'.*'adam'.*'adagrad'"):
        optimizers.get("adadelta")
    with pytest.raises(TypeError, match=r"Optimizer instance or one of 'sgd', .*'adagrad'; got float"):
        optimizers.get(0.01)


# --- state: save, load, continue bit for bit ---------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.Adam(0.01),
        lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        lambda: optimizers.AdamW(0.01, weight_decay=0.1),
        lambda: optimizers.Nadam(0.01),
        lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        lambda: optimizers.Adagrad(0.01, clipnorm=1.0),
    ],
    ids=["adam", "sgd-nesterov", "adamw", "nadam", "rmsprop-centered-momentum", "adagrad"],
)
def test_state_round_trip_continues_bit_for_bit(make):
    params, grads = random_problem(seed=9, dtype="float32")
    first = make()
    run(first, params, grads[:3], dtype="float32")
    state = first.get_state()
    assert int(state["iterations"]) == 3
    expected_names = {f"{s}/{k}" for s in first.slot_names for k in SHAPES} | {"iterations"}
    if isinstance(first, optimizers.Nadam):
        expected_names.add("u_product")  # the momentum schedule's running product
    assert set(state) == expected_names

    buffer = io.BytesIO()  # through a file, as a model save would
    numpy.savez(buffer, **state)
    buffer.seek(0)
    with numpy.load(buffer) as loaded:
        second = make()
        second.set_state(dict(loaded))
    assert second.iterations == 3

    params_2 = {k: backend.xp.array(v, copy=True) for k, v in params.items()}
    out_1 = run(first, params, grads[3:], dtype="float32")
    out_2 = run(second, params_2, grads[3:], dtype="float32")
    for k in SHAPES:
        numpy.testing.assert_array_equal(out_1[k], out_2[k], err_msg=k)
    for name, value in first.get_state().items():
        numpy.testing.assert_array_equal(value, second.get_state()[name], err_msg=name)
        assert value.dtype == second.get_state()[name].dtype


def test_get_state_returns_copies():
    params, grads = random_problem(seed=10)
    adam = optimizers.Adam()
    run(adam, params, grads[:1])
    state = adam.get_state()
    state["m/dense/bias"][...] = 123.0
    assert not numpy.any(host(adam.slots["m"]["dense/bias"]) == 123.0)


def test_set_state_rejects_foreign_entries():
    foreign = r"'momentum/w' is not recognised: expected 'iterations' and 'm/<key>'"
    with pytest.raises(ValueError, match=foreign):
        optimizers.Adam().set_state({"iterations": 1, "momentum/w": numpy.zeros(2)})
    with pytest.raises(ValueError, match="no 'iterations' entry"):
        optimizers.Adam().set_state({})


def test_loaded_slot_of_the_wrong_shape_is_a_clear_error():
    adam = optimizers.Adam()
    adam.set_state({"iterations": 1, "m/w": numpy.zeros(3), "v/w": numpy.zeros(3)})
    with pytest.raises(ValueError, match="slot 'm' has shape"):
        adam.apply_gradients([("w", backend.xp.zeros(4), backend.xp.ones(4))])


# --- Nadam, RMSprop, Adagrad, AdamW: Keras 3's rules ---------------------------------
# Each against a plain NumPy transcription of Keras's equations (float64, written per
# step as Keras's source reads) and, where the formulas coincide, against torch.optim.


def reference_nadam(params, grads, lr, beta_1, beta_2, epsilon, decay=0.96):
    """Keras's Nadam: momentum factors u_t = beta_1 (1 - 0.5 decay^t), their running product."""
    p = {k: host(v).copy() for k, v in params.items()}
    m = {k: numpy.zeros_like(v) for k, v in p.items()}
    v = {k: numpy.zeros_like(x) for k, x in p.items()}
    factors = [beta_1 * (1 - 0.5 * decay**t) for t in range(1, len(grads) + 2)]
    for t, round_ in enumerate(grads, start=1):
        u_t, u_next = factors[t - 1], factors[t]
        product = numpy.prod(factors[:t])
        for k, g in round_.items():
            m[k] = beta_1 * m[k] + (1 - beta_1) * g
            v[k] = beta_2 * v[k] + (1 - beta_2) * g**2
            m_hat = u_next * m[k] / (1 - product * u_next) + (1 - u_t) * g / (1 - product)
            v_hat = v[k] / (1 - beta_2**t)
            p[k] = p[k] - lr * m_hat / (numpy.sqrt(v_hat) + epsilon)
    return p


def reference_rmsprop(params, grads, lr, rho, momentum, epsilon, centered):
    """Keras's RMSprop: epsilon inside the square root; momentum accumulates lr * g / d."""
    p = {k: host(v).copy() for k, v in params.items()}
    v = {k: numpy.zeros_like(x) for k, x in p.items()}
    a = {k: numpy.zeros_like(x) for k, x in p.items()}
    s = {k: numpy.zeros_like(x) for k, x in p.items()}
    for round_ in grads:
        for k, g in round_.items():
            v[k] = rho * v[k] + (1 - rho) * g**2
            a[k] = rho * a[k] + (1 - rho) * g
            d = numpy.sqrt(v[k] - a[k] ** 2 + epsilon) if centered else numpy.sqrt(v[k] + epsilon)
            s[k] = momentum * s[k] + lr * g / d
            p[k] = p[k] - s[k]
    return p


def reference_adagrad(params, grads, lr, initial, epsilon):
    """Keras's Adagrad: the accumulator starts at ``initial``; epsilon inside the square root."""
    p = {k: host(v).copy() for k, v in params.items()}
    acc = {k: numpy.full_like(v, initial) for k, v in p.items()}
    for round_ in grads:
        for k, g in round_.items():
            acc[k] = acc[k] + g**2
            p[k] = p[k] - lr * g / numpy.sqrt(acc[k] + epsilon)
    return p


def reference_adamw(params, grads, lr, weight_decay, beta_1, beta_2, epsilon):
    """Decoupled decay p <- p (1 - lr wd) then textbook bias-corrected Adam (eps_hat as in Keras)."""
    p = {k: host(v).copy() for k, v in params.items()}
    m = {k: numpy.zeros_like(v) for k, v in p.items()}
    v = {k: numpy.zeros_like(x) for k, x in p.items()}
    for t, round_ in enumerate(grads, start=1):
        for k, g in round_.items():
            p[k] = p[k] * (1 - lr * weight_decay)
            m[k] = beta_1 * m[k] + (1 - beta_1) * g
            v[k] = beta_2 * v[k] + (1 - beta_2) * g**2
            eps_hat = epsilon / numpy.sqrt(1 - beta_2**t)
            p[k] = p[k] - lr * (m[k] / (1 - beta_1**t)) / (numpy.sqrt(v[k] / (1 - beta_2**t)) + eps_hat)
    return p


def test_new_optimizers_have_keras_defaults():
    nadam, rmsprop, adagrad, adamw = (optimizers.get(n) for n in ("nadam", "rmsprop", "adagrad", "adamw"))
    assert (nadam.learning_rate, nadam.beta_1, nadam.beta_2, nadam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert (rmsprop.learning_rate, rmsprop.rho, rmsprop.momentum, rmsprop.epsilon, rmsprop.centered) == (
        0.001, 0.9, 0.0, 1e-7, False)
    assert (adagrad.learning_rate, adagrad.initial_accumulator_value, adagrad.epsilon) == (0.001, 0.1, 1e-7)
    assert (adamw.learning_rate, adamw.weight_decay, adamw.beta_1, adamw.beta_2, adamw.epsilon) == (
        0.001, 0.004, 0.9, 0.999, 1e-7)
    assert rmsprop.slot_names == ("velocity",) and adagrad.slot_names == ("accumulator",)


@pytest.mark.parametrize(
    "kwargs", [{}, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 0.05}]
)
def test_nadam_matches_keras_equations(kwargs):
    params, grads = random_problem(seed=11)
    full = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, **kwargs}
    expected = reference_nadam(
        params, grads, full["learning_rate"], full["beta_1"], full["beta_2"], full["epsilon"])
    assert_params_close(run(optimizers.Nadam(**kwargs), params, grads), expected)


@pytest.mark.parametrize("momentum", [0.0, 0.7])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("epsilon", [1e-7, 0.05])  # a large epsilon shows it sits inside the root
def test_rmsprop_matches_keras_equations(momentum, centered, epsilon):
    params, grads = random_problem(seed=12)
    expected = reference_rmsprop(params, grads, 0.01, 0.8, momentum, epsilon, centered)
    mine = run(optimizers.RMSprop(0.01, rho=0.8, momentum=momentum, epsilon=epsilon, centered=centered),
               params, grads)
    assert_params_close(mine, expected)


@pytest.mark.parametrize("initial, epsilon", [(0.1, 1e-7), (0.0, 0.05), (2.0, 1e-7)])
def test_adagrad_matches_keras_equations(initial, epsilon):
    params, grads = random_problem(seed=13)
    expected = reference_adagrad(params, grads, 0.05, initial, epsilon)
    mine = run(optimizers.Adagrad(0.05, initial_accumulator_value=initial, epsilon=epsilon), params, grads)
    assert_params_close(mine, expected)


@pytest.mark.parametrize("epsilon", [1e-7, 0.05])
def test_adamw_matches_keras_equations(epsilon):
    params, grads = random_problem(seed=14)
    expected = reference_adamw(params, grads, 0.01, 0.1, 0.8, 0.95, epsilon)
    adamw = optimizers.AdamW(0.01, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=epsilon)
    mine = run(adamw, params, grads)
    assert_params_close(mine, expected)


def test_adamw_without_decay_is_adam_and_decay_shrinks_parameters():
    params, grads = random_problem(seed=15)
    same = {k: backend.xp.array(v, copy=True) for k, v in params.items()}
    numpy.testing.assert_array_equal(
        run(optimizers.AdamW(0.01, weight_decay=0.0), params, grads)["dense/kernel"],
        run(optimizers.Adam(0.01), same, grads)["dense/kernel"])
    zero_grads = [{k: numpy.zeros(s) for k, s in SHAPES.items()}]
    params, _ = random_problem(seed=15)
    before = host(params["dense/bias"]).copy()
    after = run(optimizers.AdamW(0.01, weight_decay=0.5), params, zero_grads)["dense/bias"]
    # Biases decay too, as in Keras; with zero gradients Adam's step is zero.
    numpy.testing.assert_allclose(after, before * (1 - 0.01 * 0.5), rtol=1e-15)


def test_nadam_matches_torch_with_keras_schedule():
    # torch's NAdam schedule is 0.96**(t * momentum_decay); momentum_decay=1 gives Keras's 0.96**t.
    # torch keeps its step and the schedule's product in the default dtype: float64 here.
    torch = pytest.importorskip("torch")
    params, grads = random_problem(seed=16)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        expected = _torch_run(
            torch, lambda ps: torch.optim.NAdam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-7, momentum_decay=1.0),
            params, grads)
    finally:
        torch.set_default_dtype(default)
    mine = run(optimizers.Nadam(0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-7), params, grads)
    assert_params_close(mine, expected, rtol=1e-11)


@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.7, False), (0.0, True), (0.7, True)])
def test_rmsprop_matches_torch_at_tiny_epsilon(momentum, centered):
    # Keras: sqrt(v + eps); torch: sqrt(v) + eps. At eps = 1e-30 both equal sqrt(v) in float64.
    torch = pytest.importorskip("torch")
    params, grads = random_problem(seed=17)
    expected = _torch_run(torch, lambda ps: torch.optim.RMSprop(
        ps, lr=0.01, alpha=0.8, eps=1e-30, momentum=momentum, centered=centered), params, grads)
    mine = run(optimizers.RMSprop(0.01, rho=0.8, momentum=momentum, epsilon=1e-30, centered=centered),
               params, grads)
    assert_params_close(mine, expected, rtol=1e-11)


def test_adagrad_matches_torch_at_tiny_epsilon():
    torch = pytest.importorskip("torch")
    params, grads = random_problem(seed=18)
    expected = _torch_run(torch, lambda ps: torch.optim.Adagrad(
        ps, lr=0.05, initial_accumulator_value=0.1, eps=1e-30), params, grads)
    mine = run(optimizers.Adagrad(0.05, initial_accumulator_value=0.1, epsilon=1e-30), params, grads)
    assert_params_close(mine, expected, rtol=1e-11)


def test_adamw_matches_torch_at_zero_epsilon():
    torch = pytest.importorskip("torch")
    params, grads = random_problem(seed=19)
    expected = _torch_run(torch, lambda ps: torch.optim.AdamW(
        ps, lr=0.01, betas=(0.8, 0.95), eps=0.0, weight_decay=0.1), params, grads)
    mine = run(optimizers.AdamW(0.01, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=0.0), params, grads)
    assert_params_close(mine, expected, rtol=1e-11)


def test_nadam_state_without_its_schedule_product_is_a_clear_error():
    with pytest.raises(ValueError, match="no 'u_product' entry"):
        optimizers.Nadam().set_state({"iterations": 1})
