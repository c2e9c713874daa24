"""Tests for tinyrnn.ops (and tinyrnn.graph): every operation's hand-written backward
passes ``gradcheck`` in float64, broadcasting included; on plain arrays the operations
compute what NumPy computes; the operators of ``Value`` record the operations.

Each operation is wrapped in a ``Lambda`` (a layer whose ``call()`` is recorded),
so ``gradcheck`` checks the recorded backward against finite differences with a
random upstream gradient. Two-input operations take a list input, so both
inputs' gradients are checked. Sizes: B=2, T=5, D=3, H=4.
"""

from __future__ import annotations

import numpy
import pytest

from tinyrnn import activations, backend, gradcheck, graph, ops
from tinyrnn.graph import Value
from tinyrnn.layers import Lambda

B, T, D, H = 2, 5, 3, 4
TOL = 1e-7


def rng(seed=0):
    return numpy.random.default_rng(seed)


def normal(*shape, seed=0):
    return rng(seed).normal(size=shape)


def positive(*shape, seed=0):
    return rng(seed).uniform(0.5, 2.0, size=shape)


def away_from_zero(*shape, seed=0):
    """Normal entries pushed at least 0.1 away from 0 (relu's kink; finite differences use 1e-3)."""
    x = normal(*shape, seed=seed)
    return x + 0.1 * numpy.sign(x)


def check(function, x, seed=0):
    """gradcheck of ``Lambda(function)`` at x (an array or a list of arrays), float64, <= 1e-7."""
    report = gradcheck(Lambda(function), x, seed=seed)
    report.assert_ok(TOL)
    assert len(report.checks) == (len(x) if isinstance(x, list) else 1)   # one row per input
    return report


# --- element-wise arithmetic, broadcasting ----------------------------------------------------
BINARY = {
    "add": ops.add, "subtract": ops.subtract, "multiply": ops.multiply, "divide": ops.divide,
    "operator+": lambda a, b: a + b, "operator-": lambda a, b: a - b,
    "operator*": lambda a, b: a * b, "operator/": lambda a, b: a / b,
}
SHAPES = {
    "same": ((B, T, H), (B, T, H)),
    "bias (H,)": ((B, T, H), (H,)),
    "(B, 1, H) and (B, T, H)": ((B, 1, H), (B, T, H)),
    "(1, T, 1) and (B, T, H)": ((1, T, 1), (B, T, H)),
    "(T, H) left, fewer axes": ((T, H), (B, T, H)),
}


@pytest.mark.parametrize("shapes", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("name", BINARY)
def test_elementwise_binary_operations_gradcheck_with_broadcasting(name, shapes):
    a = normal(*shapes[0], seed=1)
    b = positive(*shapes[1], seed=2) if "div" in name or "/" in name else normal(*shapes[1], seed=2)
    report = check(lambda xs: BINARY[name](xs[0], xs[1]), [a, b])
    assert [c.shape for c in report.checks] == [shapes[0], shapes[1]]


def test_divide_broadcasts_a_denominator_over_batch_and_time():
    check(lambda xs: xs[0] / xs[1], [normal(B, T, H, seed=3), positive(1, 1, H, seed=4)])
    check(lambda xs: ops.divide(xs[0], xs[1]), [positive(H), positive(B, T, H, seed=5)])


def test_an_operation_with_a_constant_array_or_number_gradchecks():
    w = normal(H, seed=7)
    check(lambda x: x * w + 2.0, normal(B, T, H))
    check(lambda x: w * x - 2.0, normal(B, T, H))        # NumPy array on the left: reflected
    check(lambda x: 1.0 / x, positive(B, T, H))
    check(lambda x: 3.0 - x, normal(B, T, H))
    check(lambda x: w / x, positive(B, T, H))


def test_negation_gradchecks():
    check(ops.negative, normal(B, T, H))
    check(lambda x: -x, normal(B, T, H))


def test_a_value_used_several_times_sums_its_gradients():
    check(lambda x: x * x + x * 3.0 - ops.exp(x) * x, normal(B, T, H))


# --- element-wise functions ---------------------------------------------------------------------
@pytest.mark.parametrize("name, function, data", [
    ("exp", ops.exp, normal),
    ("log", ops.log, positive),
    ("sqrt", ops.sqrt, positive),
    ("square", ops.square, normal),
    ("power 2", lambda x: x ** 2, normal),
])
def test_elementwise_functions_gradcheck(name, function, data):
    check(function, data(B, T, H))


ACTIVATIONS = {
    "tanh": (activations.tanh, normal), "sigmoid": (activations.sigmoid, normal),
    "relu": (activations.relu, away_from_zero), "softmax": (activations.softmax, normal),
    "linear": (activations.linear, normal), "ops.tanh": (ops.tanh, normal),
    "ops.sigmoid": (ops.sigmoid, normal), "ops.relu": (ops.relu, away_from_zero),
    "ops.softmax": (ops.softmax, normal),
    'get("tanh")': (activations.get("tanh"), normal),
    'get("relu")': (activations.get("relu"), away_from_zero),
    'get("softmax")': (activations.get("softmax"), normal),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_as_functions_gradcheck(name):
    function, data = ACTIVATIONS[name]
    check(function, data(B, T, H))


def test_softmax_of_a_computed_value_gradchecks():
    """softmax's Jacobian-vector backward, behind a product so that dz is not the upstream itself."""
    w = normal(D, H, seed=3)
    check(lambda x: activations.softmax(x @ w) * ops.sigmoid(x[..., :1]), normal(B, T, D))


# --- products and reductions ----------------------------------------------------------------------
MATMUL = {
    "(B, T, D) @ (D, H)": ((B, T, D), (D, H)),
    "batched (B, T, D) @ (B, D, H)": ((B, T, D), (B, D, H)),
    "broadcast (T, D) @ (B, D, H)": ((T, D), (B, D, H)),
    "broadcast (B, T, D) @ (1, D, H)": ((B, T, D), (1, D, H)),
    "(B, T, D) @ vector (D,)": ((B, T, D), (D,)),
    "vector (D,) @ (B, D, H)": ((D,), (B, D, H)),
    "(D, H) @ (H, T)": ((D, H), (H, T)),
    "vector (D,) @ vector (D,)": ((D,), (D,)),
    "vector (D,) @ (D, H)": ((D,), (D, H)),
}


@pytest.mark.parametrize("shapes", MATMUL.values(), ids=MATMUL.keys())
def test_matmul_gradchecks_batched_and_broadcast(shapes):
    a, b = normal(*shapes[0], seed=1), normal(*shapes[1], seed=2)
    report = check(lambda xs: ops.matmul(xs[0], xs[1]), [a, b])
    assert [c.shape for c in report.checks] == list(shapes)
    check(lambda xs: xs[0] @ xs[1], [a, b])


REDUCTIONS = {"axis None": {}, "axis 1": {"axis": 1}, "axis -1 keepdims": {"axis": -1, "keepdims": True},
              "axes (0, 2)": {"axis": (0, 2)}, "axis None keepdims": {"keepdims": True},
              "axis 0 keepdims": {"axis": 0, "keepdims": True}}


@pytest.mark.parametrize("kwargs", REDUCTIONS.values(), ids=REDUCTIONS.keys())
@pytest.mark.parametrize("reduce", [ops.sum, ops.mean], ids=["sum", "mean"])
def test_sum_and_mean_gradcheck_over_axes(reduce, kwargs):
    check(lambda x: reduce(x, **kwargs), normal(B, T, H))


def test_value_methods_sum_mean_reshape_and_T_gradcheck():
    check(lambda x: x.sum(axis=1), normal(B, T, H))
    check(lambda x: x.mean(axis=(1, 2), keepdims=True) * x, normal(B, T, H))
    check(lambda x: x.reshape(B, T * H), normal(B, T, H))
    check(lambda x: x.reshape((B * T, H)), normal(B, T, H))
    check(lambda x: x.T, normal(B, T, H))


# --- indexing and shapes --------------------------------------------------------------------------
INDEXES = {
    "x[..., :n]": (Ellipsis, slice(None, 2)),
    "x[..., n:]": (Ellipsis, slice(2, None)),
    "x[:, t]": (slice(None), 3),
    "x[:, -1]": (slice(None), -1),
    "x[:, [0, 2, 2]] (repeats)": (slice(None), [0, 2, 2]),
    "x[:, numpy.array([4, 0, 4, 4])]": (slice(None), numpy.array([4, 0, 4, 4])),
    "x[[1, 1, 0], :, [0, 3, 3]]": ([1, 1, 0], slice(None), [0, 3, 3]),
    "x[:, ::2, 1:]": (slice(None), slice(None, None, 2), slice(1, None)),
    "x[None, 0]": (None, 0),
    "x[1]": 1,
}


@pytest.mark.parametrize("index", INDEXES.values(), ids=INDEXES.keys())
def test_indexing_gradchecks(index):
    x = normal(B, T, H)
    report = check(lambda v: v[index], x)
    assert report.checks[0].shape == x.shape


def test_indexing_with_repeats_adds_every_picked_gradient():
    """x[:, [0, 2, 2]]: entry 2 is picked twice, so it gets both upstream gradients."""
    x = Value(normal(B, T, H))
    y = x[:, [0, 2, 2]]
    dy = normal(*y.shape, seed=1)
    dx = graph.backward([y], [dy])[x]
    expected = numpy.zeros((B, T, H))
    expected[:, 0] = dy[:, 0]
    expected[:, 2] = dy[:, 1] + dy[:, 2]
    numpy.testing.assert_allclose(dx, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_concatenate_gradchecks(axis):
    shapes = {-1: [(B, T, 1), (B, T, H), (B, T, 2)], 1: [(B, 2, H), (B, T, H)],
              0: [(1, T, H), (B, T, H)]}[axis]
    xs = [normal(*s, seed=k) for k, s in enumerate(shapes)]
    report = check(lambda vs: ops.concatenate(vs, axis=axis), xs)
    assert [c.shape for c in report.checks] == shapes


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_gradchecks(axis):
    xs = [normal(B, T, H, seed=k) for k in range(3)]
    check(lambda vs: ops.stack(vs, axis=axis), xs)


def test_split_gradchecks_with_an_unused_output():
    x = normal(B, T, 6)
    check(lambda v: ops.split(v, 3, axis=-1)[0] * ops.split(v, 3, axis=-1)[2], x)   # middle part unused
    check(lambda v: ops.split(v, [1, 4], axis=1)[1], x)                            # two of three unused
    check(lambda v: ops.concatenate(ops.split(v, 2, axis=-1)[::-1], axis=-1), x)     # all used, swapped


def test_split_of_an_unused_part_gives_it_a_zero_gradient():
    x = Value(normal(B, T, 6))
    first, _, third = ops.split(x, 3, axis=-1)
    dx = graph.backward([first + third], [numpy.ones((B, T, 2))])[x]
    numpy.testing.assert_array_equal(dx[..., 2:4], 0.0)
    numpy.testing.assert_array_equal(dx[..., :2], 1.0)


SHAPE_OPS = {
    "reshape (B, T*H)": lambda x: ops.reshape(x, (B, T * H)),
    "reshape with -1": lambda x: ops.reshape(x, (-1, H)),
    "transpose reversed": lambda x: ops.transpose(x),
    "transpose (0, 2, 1)": lambda x: ops.transpose(x, (0, 2, 1)),
    "transpose (1, 0, 2)": lambda x: ops.transpose(x, (1, 0, 2)),
    "expand_dims 1": lambda x: ops.expand_dims(x, 1),
    "expand_dims -1": lambda x: ops.expand_dims(x, -1),
    "squeeze axis": lambda x: ops.squeeze(ops.expand_dims(x, 2), axis=2),
    "squeeze None": lambda x: ops.squeeze(x[:, :1]),
    "expand then broadcast": lambda x: ops.expand_dims(x[:, 0], 1) * x,
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_operations_gradcheck(name):
    check(SHAPE_OPS[name], normal(B, T, H))


EXPRESSIONS = {
    "Python sum of values": lambda x: sum([x, x * 2.0, x[..., ::-1]]),
    "NumPy scalars on the left": lambda x: numpy.float64(2.0) * x + numpy.float32(1.0),
    "boolean mask": lambda x: x[x.data > 0] * 2.0,
    "a full sum times x": lambda x: ops.sum(x) * x,
    "squeeze two axes": lambda x: ops.squeeze(ops.expand_dims(ops.expand_dims(x, 1), 3), axis=(1, 3)),
    "the same value twice in concatenate": lambda x: ops.concatenate([x, x], axis=0),
    "the same value twice in stack": lambda x: ops.stack([x, x[:, ::-1]], axis=-1),
    "x.T @ x": lambda x: ops.transpose(x, (0, 2, 1)) @ x,
}


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_expressions_a_notebook_writes_gradcheck(name):
    check(EXPRESSIONS[name], normal(B, T, H))


def test_zeros_like_passes_no_gradient_and_constants_add_none():
    report = check(lambda x: x * 2.0 + ops.zeros_like(x), normal(B, T, H))
    assert report.worst.error < TOL
    check(lambda x: x + ops.ones((T, H)) - ops.zeros((H,)), normal(B, T, H))
    x = Value(normal(B, T, H))
    dx = graph.backward([ops.zeros_like(x) * x + ops.zeros_like(x)], [normal(B, T, H, seed=1)])
    numpy.testing.assert_array_equal(dx[x], 0.0)


def test_an_operation_inside_a_bigger_expression_gradchecks():
    """A gated unit (WaveNet's), a residual, a reduction: the pieces compose."""
    w = normal(H, 2 * H, seed=5)

    def gated(x):
        z = x @ w
        return (ops.tanh(z[..., :H]) * ops.sigmoid(z[..., H:]) + x).mean(axis=1)

    check(gated, normal(B, T, H))


# --- on plain arrays: the same values as NumPy; nothing recorded ------------------------------------
def test_operations_on_plain_arrays_compute_numpys_values():
    a, b, p = normal(B, T, H, seed=1), normal(H, seed=2), positive(B, T, H, seed=3)
    w = normal(H, D, seed=4)
    pairs = [
        (ops.add(a, b), a + b), (ops.subtract(b, a), b - a), (ops.multiply(a, b), a * b),
        (ops.divide(a, p), a / p), (ops.negative(a), -a), (ops.exp(a), numpy.exp(a)),
        (ops.log(p), numpy.log(p)), (ops.sqrt(p), numpy.sqrt(p)), (ops.square(a), a * a),
        (ops.matmul(a, w), a @ w), (ops.sum(a, axis=1), a.sum(axis=1)),
        (ops.mean(a, axis=(0, 2), keepdims=True), a.mean(axis=(0, 2), keepdims=True)), (ops.sum(a), a.sum()),
        (ops.take(a, (slice(None), [0, 2, 2])), a[:, [0, 2, 2]]),
        (ops.concatenate([a, p], axis=1), numpy.concatenate([a, p], axis=1)),
        (ops.stack([a, p], axis=1), numpy.stack([a, p], axis=1)),
        (ops.reshape(a, (B, -1)), a.reshape(B, -1)), (ops.transpose(a, (2, 0, 1)), a.transpose(2, 0, 1)),
        (ops.expand_dims(a, 1), a[:, None]), (ops.squeeze(a[:, :1], axis=1), a[:, 0]),
        (ops.zeros_like(a), numpy.zeros_like(a)), (ops.zeros((B, H)), numpy.zeros((B, H))),
        (ops.ones((B, H)), numpy.ones((B, H))),
        (activations.tanh(a), numpy.tanh(a)), (activations.sigmoid(a), 1 / (1 + numpy.exp(-a))),
        (activations.relu(a), numpy.maximum(a, 0)), (activations.linear(a), a),
        (activations.softmax(a), numpy.exp(a) / numpy.exp(a).sum(axis=-1, keepdims=True)),
        (activations.get("tanh")(a), numpy.tanh(a)),
    ]
    for k, (mine, reference) in enumerate(pairs):
        assert not isinstance(mine, Value), f"pair {k}: a plain array in must give a plain array out"
        numpy.testing.assert_allclose(backend.to_numpy(mine), reference, rtol=1e-6, atol=1e-6,
                                      err_msg=f"pair {k}")
    parts = ops.split(a, [1, 3], axis=-1)
    for mine, reference in zip(parts, numpy.split(a, [1, 3], axis=-1)):
        numpy.testing.assert_array_equal(mine, reference)


# --- the operators of Value record ------------------------------------------------------------------
def test_value_operators_record_their_operations():
    a, b = Value(normal(B, T, H, seed=1)), Value(positive(B, T, H, seed=2))
    c = Value(normal(B, H, seed=6))
    arr = normal(B, T, H, seed=3)
    w = normal(H, D, seed=4)
    cases = [
        (a + b, ops.Add, a.data + b.data), (a - b, ops.Subtract, a.data - b.data),
        (a * b, ops.Multiply, a.data * b.data), (a / b, ops.Divide, a.data / b.data),
        (a @ w, ops.MatMul, a.data @ w), (-a, ops.Negative, -a.data),
        (a[:, 1], ops.GetItem, a.data[:, 1]), (a[..., :2], ops.GetItem, a.data[..., :2]),
        (arr + a, ops.Add, arr + a.data), (arr - a, ops.Subtract, arr - a.data),
        (arr * a, ops.Multiply, arr * a.data), (arr / b, ops.Divide, arr / b.data),
        (normal(D, B, seed=5) @ c, ops.MatMul, normal(D, B, seed=5) @ c.data),
        (2.0 - a, ops.Subtract, 2.0 - a.data), (1.0 / b, ops.Divide, 1.0 / b.data),
        (a ** 2, ops.Square, a.data ** 2),
    ]
    for k, (out, op_class, expected) in enumerate(cases):
        assert isinstance(out, Value) and out.node is not None, f"case {k}: not recorded"
        assert isinstance(out.node.op, op_class), f"case {k}: recorded {out.node.op!r}"
        assert any(v is a or v is b or v is c for v in out.node.inputs), f"case {k}: input not recorded"
        numpy.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=0, err_msg=f"case {k}")


def test_reflected_operator_with_a_numpy_array_gets_the_right_gradient():
    """arr - x and arr / x are not x - arr and x / arr: the order is kept."""
    arr = normal(B, T, H, seed=3)
    x = Value(positive(B, T, H, seed=2))
    dy = normal(B, T, H, seed=4)
    dx = graph.backward([arr - x], [dy])[x]
    numpy.testing.assert_allclose(dx, -dy, rtol=1e-15)
    x = Value(positive(B, T, H, seed=2))
    dx = graph.backward([arr / x], [dy])[x]
    numpy.testing.assert_allclose(dx, -dy * arr / x.data ** 2, rtol=1e-12)


def test_a_value_handed_to_numpy_is_refused_with_the_fix():
    with pytest.raises(TypeError, match="tinyrnn.ops"):
        numpy.exp(numpy.asarray(Value(normal(B, H))))


def test_symbolic_values_get_shapes_with_unknown_axes():
    x = Value(shape=(None, None, H))
    assert (x[..., :2] * 2.0).shape == (None, None, 2)
    assert ops.concatenate([x, x], axis=-1).shape == (None, None, 2 * H)
    assert (x @ normal(H, D)).shape == (None, None, D)
    assert ops.sum(x, axis=1).shape == (None, H)
    assert [p.shape for p in ops.split(x, 2, axis=-1)] == [(None, None, 2)] * 2
