"""Attention layers: gradient checks (with and without masks), Keras 3 parity, masks' meaning, errors."""

import json
import pathlib
import zlib

import numpy
import pytest

from tinyrnn import Input, Model, gradcheck, load_model, set_random_seed
from tinyrnn.layers import AdditiveAttention, Attention, Layer, MultiHeadAttention
from tinyrnn.layers.attention import causal_mask, softmax_backward, softmax_forward

DATA = pathlib.Path(__file__).parent / "data"
B, TQ, TV = 2, 5, 4
QUERY_MASK = numpy.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], bool)
VALUE_MASK = numpy.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)

LAYERS = {
    "dot": lambda: Attention(),
    "dot_scaled": lambda: Attention(use_scale=True),
    "concat": lambda: Attention(score_mode="concat"),
    "concat_scaled": lambda: Attention(use_scale=True, score_mode="concat"),
    "additive": lambda: AdditiveAttention(),
    "additive_unscaled": lambda: AdditiveAttention(use_scale=False),
}
CALLS = {
    "no_mask": {},
    "padding": {"mask": [QUERY_MASK, VALUE_MASK]},
    "value_mask_only": {"mask": [None, VALUE_MASK]},
    "causal": {"use_causal_mask": True},
    "causal_padding_scores": {"mask": [QUERY_MASK, VALUE_MASK], "use_causal_mask": True,
                              "return_attention_scores": True},
}
MHA_CALLS = {
    "no_mask": {},
    "value_mask": {"value_mask": VALUE_MASK},
    "query_and_value_mask": {"query_mask": QUERY_MASK, "value_mask": VALUE_MASK},
    "attention_mask": {"attention_mask": numpy.tril(numpy.ones((TQ, TV), bool), 1)},
    "causal_scores": {"use_causal_mask": True, "return_attention_scores": True},
    "causal_key_mask": {"use_causal_mask": True, "key_mask": VALUE_MASK},
}


@pytest.fixture(autouse=True)
def seeded():
    """Initial weights (and dropout masks) the same whatever ran before."""
    set_random_seed(0)


class CallWith(Layer):
    """A layer called with fixed call arguments (masks, ...), so that gradcheck can drive it."""

    def __init__(self, layer, **call):
        super().__init__()
        self.layer, self.call_arguments, self.built = layer, call, True

    def forward(self, x, training=False):
        return self.layer.forward(x, training, **self.call_arguments)

    def backward(self, dy):
        return self.layer.backward(dy)


def inputs(rng, key=False):
    """[query (B, Tq, 3), value (B, Tv, 3)] or, with a key (B, Tv, 3), a value of 6 features."""
    query = rng.normal(size=(B, TQ, 3))
    if not key:
        return [query, rng.normal(size=(B, TV, 3))]
    return [query, rng.normal(size=(B, TV, 6)), rng.normal(size=(B, TV, 3))]


def randomize(layer, rng):
    """Weights away from Keras's 1 / 0 defaults, so every weight's gradient is tested."""
    layer.set_weights([w + rng.normal(0.0, 0.5, size=w.shape) for w in layer.get_weights()])


def built(make, xs, rng):
    layer = make()
    layer([x.astype("float32") for x in xs])
    randomize(layer, rng)
    return layer


# --- the shared pieces -------------------------------------------------------------------------
def test_softmax_backward_is_the_jacobian_transposed_times_the_upstream():
    rng = numpy.random.default_rng(0)
    s, da = rng.normal(size=4), rng.normal(size=4)
    a = softmax_forward(s)
    jacobian = numpy.diag(a) - numpy.outer(a, a)            # dA_j / dS_k = A_j (delta_jk - A_k)
    numpy.testing.assert_allclose(softmax_backward(a, da), jacobian.T @ da, rtol=1e-12)
    numpy.testing.assert_allclose(a.sum(), 1.0)


def test_causal_mask_lets_step_i_see_steps_up_to_i():
    expected = [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    numpy.testing.assert_array_equal(causal_mask(TQ, TV)[0], numpy.array(expected, bool))


# --- gradient checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("key", [False, True], ids=["query_value", "query_value_key"])
def test_attention_gradcheck(kind, call, key):
    rng = numpy.random.default_rng(zlib.crc32(f"{kind} {call} {key}".encode()))
    xs = inputs(rng, key)
    layer = built(LAYERS[kind], xs, rng)
    report = gradcheck(CallWith(layer, **CALLS[call]), xs, seed=1)
    report.assert_ok(1e-7)
    assert {c.name for c in report.checks} >= {f"{layer.name}/{k}" for k in layer.params}


@pytest.mark.parametrize("call", MHA_CALLS)
@pytest.mark.parametrize("key", [False, True], ids=["query_value", "query_value_key"])
def test_multi_head_attention_gradcheck(call, key):
    rng = numpy.random.default_rng(zlib.crc32(f"{call} {key}".encode()))
    xs = inputs(rng, key)
    layer = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=5 if key else None)
    layer(*[x.astype("float32") for x in xs])
    randomize(layer, rng)
    # the key bias adds q_i . b_k to every score of row i, which softmax ignores: its gradient is 0
    # exactly, and its finite differences are rounding noise (~1e-11), judged on the floor's scale
    report = gradcheck(CallWith(layer, **MHA_CALLS[call]), xs, seed=2, floor=1e-3)
    report.assert_ok(1e-7)


def test_multi_head_attention_key_bias_gets_no_gradient():
    """Softmax ignores a constant added to a row of scores, and b_k adds q_i . b_k to row i."""
    rng = numpy.random.default_rng(15)
    query, value = inputs(rng)
    layer = MultiHeadAttention(2, 3)
    layer(query, value)
    randomize(layer, rng)
    y = layer.forward([query, value], value_mask=VALUE_MASK)
    layer.backward(rng.normal(size=y.shape))
    assert numpy.abs(layer.grads["key_bias"]).max() < 1e-6 * numpy.abs(layer.grads["query_bias"]).max()


@pytest.mark.parametrize("make", [lambda: Attention(use_scale=True, dropout=0.3),
                                  lambda: AdditiveAttention(dropout=0.3)], ids=["luong", "bahdanau"])
def test_dropout_on_the_weights_gradcheck_in_training(make):
    rng = numpy.random.default_rng(3)
    xs = inputs(rng)
    layer = built(make, xs, rng)
    gradcheck(CallWith(layer, mask=[None, VALUE_MASK], return_attention_scores=True), xs, training=True,
              seed=4).assert_ok(1e-7)


def test_multi_head_attention_dropout_gradcheck_in_training():
    rng = numpy.random.default_rng(5)
    xs = inputs(rng)
    layer = MultiHeadAttention(2, 3, dropout=0.3)
    layer(*[x.astype("float32") for x in xs])
    randomize(layer, rng)
    gradcheck(CallWith(layer, value_mask=VALUE_MASK), xs, training=True, seed=6).assert_ok(1e-7)


# --- what the masks mean -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dot_scaled", "concat_scaled", "additive"])
def test_padded_keys_get_zero_weight_and_zero_gradient(kind):
    rng = numpy.random.default_rng(7)
    xs = inputs(rng, key=True)
    layer = built(LAYERS[kind], xs, rng)
    y, weights = layer.forward(xs, mask=[None, VALUE_MASK], return_attention_scores=True)
    padded = ~VALUE_MASK
    assert numpy.all(weights.transpose(0, 2, 1)[padded] == 0.0)
    numpy.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    dquery, dvalue, dkey = layer.backward([rng.normal(size=y.shape), rng.normal(size=weights.shape)])
    assert numpy.all(dvalue[padded] == 0.0) and numpy.all(dkey[padded] == 0.0)
    assert numpy.all(dvalue[~padded] != 0.0)
    changed = [xs[0], xs[1] + 9.0 * padded[..., None], xs[2] - 9.0 * padded[..., None]]
    numpy.testing.assert_array_equal(layer.forward(changed, mask=[None, VALUE_MASK]), y)


def test_query_mask_zeroes_the_output_of_padded_query_steps():
    rng = numpy.random.default_rng(8)
    xs = inputs(rng)
    layer = built(LAYERS["dot_scaled"], xs, rng)
    y = layer.forward(xs, mask=[QUERY_MASK, None])
    assert numpy.all(y[~QUERY_MASK] == 0.0) and numpy.all(y[QUERY_MASK] != 0.0)
    dquery, _ = layer.backward(rng.normal(size=y.shape))
    assert numpy.all(dquery[~QUERY_MASK] == 0.0)


@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_causal_mask_hides_the_future(kind):
    rng = numpy.random.default_rng(9)
    query, value = inputs(rng)
    layer = built(LAYERS[kind], [query, value], rng)
    y, weights = layer.forward([query, value], use_causal_mask=True, return_attention_scores=True)
    assert numpy.all(weights[:, ~causal_mask(TQ, TV)[0]] == 0.0)
    future = value.copy()
    future[:, 2:] += 5.0                                   # query steps 0 and 1 cannot see steps 2, 3
    y2 = layer.forward([query, future], use_causal_mask=True)
    numpy.testing.assert_array_equal(y2[:, :2], y[:, :2])
    assert not numpy.allclose(y2[:, 3:], y[:, 3:])


def test_multi_head_attention_masks_join_with_and():
    rng = numpy.random.default_rng(10)
    query, value = inputs(rng)
    layer = MultiHeadAttention(2, 3)
    layer(query, value)
    randomize(layer, rng)
    _, weights = layer.forward([query, value], value_mask=VALUE_MASK, use_causal_mask=True,
                               return_attention_scores=True)                     # (B, N, Tq, Tv)
    allowed = VALUE_MASK[:, None, None, :] & causal_mask(TQ, TV)[None]
    assert numpy.all(weights[numpy.broadcast_to(~allowed, weights.shape)] == 0.0)
    numpy.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    by_attention_mask = layer.forward([query, value], attention_mask=allowed[:, 0])
    by_masks = layer.forward([query, value], value_mask=VALUE_MASK, use_causal_mask=True)
    numpy.testing.assert_array_equal(by_attention_mask, by_masks)


def test_multi_head_attention_is_its_heads_concatenated_and_projected():
    """Each head is the scaled dot-product attention of its projections (a loop over heads)."""
    rng = numpy.random.default_rng(11)
    query, value = inputs(rng)
    layer = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4)
    layer(query, value)
    randomize(layer, rng)
    wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()
    y = numpy.zeros((B, TQ, 3)) + bo
    for n in range(2):
        q, k, v = query @ wq[:, n] + bq[n], value @ wk[:, n] + bk[n], value @ wv[:, n] + bv[n]
        a = softmax_forward(q @ k.transpose(0, 2, 1) / numpy.sqrt(3))
        y += (a @ v) @ wo[n]
    numpy.testing.assert_allclose(layer.forward([query, value]), y, rtol=1e-10)


# --- Keras 3 parity ----------------------------------------------------------------------------
KERAS = json.loads((DATA / "keras_attention.json").read_text())


@pytest.fixture(scope="module")
def keras_arrays():
    return numpy.load(DATA / "keras_attention.npz")


@pytest.mark.parametrize("case", list(KERAS["cases"]))
def test_outputs_scores_and_gradients_equal_keras(case, keras_arrays):
    spec = KERAS["cases"][case]
    a = {k.split("/", 1)[1]: keras_arrays[k] for k in keras_arrays.files if k.startswith(case + "/")}
    names = ["query", "value"] + (["key"] if spec["key"] else [])
    xs = [a[n] for n in names]
    layer = {"Attention": Attention, "AdditiveAttention": AdditiveAttention,
             "MultiHeadAttention": MultiHeadAttention}[spec["class_name"]](**spec["config"])
    call = {"return_attention_scores": True, "use_causal_mask": spec["call"].get("use_causal_mask", False)}
    if spec["call"].get("mask") == "both":
        call["mask"] = [a["query_mask"], a["value_mask"]]
    if spec["call"].get("value_mask"):
        call["value_mask"] = a["value_mask"]
    if spec["class_name"] == "MultiHeadAttention":
        layer(*xs)
    else:
        layer(xs)
    n_weights = len([k for k in a if k.startswith("w")])
    layer.set_weights([a[f"w{i}"] for i in range(n_weights)])
    y, scores = layer.forward(xs, **call)
    assert y.dtype == numpy.float32 and scores.dtype == numpy.float32
    numpy.testing.assert_allclose(y, a["y"], rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(scores, a["scores"], rtol=1e-5, atol=1e-6)
    layer.zero_grads()
    dxs = layer.backward([a["upstream"], numpy.zeros_like(scores)])
    for name, dx in zip(names, dxs):
        numpy.testing.assert_allclose(dx, a[f"d{name}"], rtol=1e-4, atol=1e-5, err_msg=name)
    assert len(layer.weight_names) == n_weights > 0
    for i, dw in enumerate(layer.grads[k] for k in layer.weight_names):
        numpy.testing.assert_allclose(dw, a[f"dw{i}"], rtol=1e-4, atol=1e-5, err_msg=f"weight {i}")


# --- the layer contract: functional models, shapes, saving -------------------------------------
def test_in_a_functional_model_with_scores_and_saved(tmp_path):
    set_random_seed(12)
    query, value = Input(shape=(TQ, 3)), Input(shape=(TV, 3))
    y, scores = Attention(use_scale=True)([query, value], return_attention_scores=True, use_causal_mask=True)
    z = MultiHeadAttention(2, 3, output_shape=2)(query, value, use_causal_mask=True)
    w = AdditiveAttention()([query, value])
    assert (y.shape, scores.shape, z.shape, w.shape) == ((None, TQ, 3), (None, TQ, TV), (None, TQ, 2),
                                                         (None, TQ, 3))
    model = Model([query, value], [y, scores, z, w])
    rng = numpy.random.default_rng(12)
    xs = [x.astype("float32") for x in inputs(rng)]
    outputs = model.predict(xs)
    model.save(tmp_path / "attention.npz")
    again = load_model(tmp_path / "attention.npz")
    for mine, reloaded in zip(outputs, again.predict(xs)):
        numpy.testing.assert_array_equal(mine, reloaded)
    gradcheck(model, [x.astype("float64") for x in xs]).assert_ok(1e-7)


def test_masks_from_the_graph_travel_with_the_inputs(tmp_path):
    """Masks given as Inputs (Keras's way in a functional model) are replayed, saved and loaded."""
    set_random_seed(14)
    query, value = Input(shape=(TQ, 3)), Input(shape=(TV, 3))
    value_mask, allowed = Input(shape=(TV,)), Input(shape=(TQ, TV))
    luong, bahdanau, heads = Attention(use_scale=True), AdditiveAttention(), MultiHeadAttention(2, 3)
    y = luong([query, value], mask=[None, value_mask], use_causal_mask=True)
    w = bahdanau([query, value], mask=[None, value_mask])
    z = heads(query, value, value_mask=value_mask, attention_mask=allowed)
    model = Model([query, value, value_mask, allowed], [y, w, z])
    rng = numpy.random.default_rng(14)
    xs = [x.astype("float32") for x in inputs(rng)]
    masks = [VALUE_MASK.astype("float32"), numpy.tril(numpy.ones((B, TQ, TV), "float32"))]
    outputs = model.predict(xs + masks)
    expected = [luong.forward(xs, mask=[None, VALUE_MASK], use_causal_mask=True),
                bahdanau.forward(xs, mask=[None, VALUE_MASK]),
                heads.forward(xs, value_mask=VALUE_MASK, attention_mask=masks[1])]
    for mine, direct in zip(outputs, expected):
        numpy.testing.assert_array_equal(mine, direct)
    model.save(tmp_path / "masked.npz")
    for mine, reloaded in zip(outputs, load_model(tmp_path / "masked.npz").predict(xs + masks)):
        numpy.testing.assert_array_equal(mine, reloaded)
    gradcheck(model, [x.astype("float64") for x in xs] + masks).assert_ok(1e-7)


@pytest.mark.parametrize("make", [lambda: Attention(use_scale=True, score_mode="concat", dropout=0.25),
                                  lambda: AdditiveAttention(use_scale=False),
                                  lambda: MultiHeadAttention(3, 2, value_dim=5, dropout=0.1, use_bias=False,
                                                             output_shape=(4,))])
def test_get_config_rebuilds_the_layer(make):
    layer = make()
    clone = type(layer)(**layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_multi_head_attention_weights_are_keras_s_shapes():
    layer = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=5)
    layer(numpy.zeros((B, TQ, 7), "float32"), numpy.zeros((B, TV, 6), "float32"),
          numpy.zeros((B, TV, 2), "float32"))
    assert [w.shape for w in layer.get_weights()] == [(7, 2, 3), (2, 3), (2, 2, 3), (2, 3), (6, 2, 4), (2, 4),
                                                     (2, 4, 5), (5,)]


# --- errors that teach -------------------------------------------------------------------------
@pytest.mark.parametrize("make", [Attention, AdditiveAttention])
def test_mismatched_query_and_key_sizes_is_a_clear_error(make):
    with pytest.raises(ValueError, match=r"query has D=3, the value \(the key.*D=4.*Dense\(3\)"):
        make()([numpy.zeros((B, TQ, 3), "float32"), numpy.zeros((B, TV, 4), "float32")])
    with pytest.raises(ValueError, match=r"query has D=3, the key has D=5"):
        make()([numpy.zeros((B, TQ, 3), "float32"), numpy.zeros((B, TV, 3), "float32"),
                numpy.zeros((B, TV, 5), "float32")])


def test_a_mask_of_the_wrong_shape_is_a_clear_error():
    xs = [numpy.zeros((B, TQ, 3), "float32"), numpy.zeros((B, TV, 3), "float32")]
    with pytest.raises(ValueError, match=r"value mask \(B, Tv\) must have shape \(2, 4\), got \(2, 5\)"):
        Attention()(xs, mask=[None, QUERY_MASK])
    with pytest.raises(ValueError, match=r"query mask \(B, Tq\) must have shape \(2, 5\), got \(2, 4\)"):
        AdditiveAttention()(xs, mask=[VALUE_MASK, VALUE_MASK])
    with pytest.raises(ValueError, match=r"mask must be a list \[query_mask, value_mask\]"):
        Attention()(xs, mask=VALUE_MASK)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, Tq, Tv\) = \(2, 5, 4\)"):
        MultiHeadAttention(2, 3)(xs[0], xs[1], attention_mask=numpy.ones((B, TV, TQ), bool))
    with pytest.raises(ValueError, match=r"value_mask \(B, Tv\) must have shape \(2, 4\)"):
        MultiHeadAttention(2, 3)(xs[0], xs[1], value_mask=QUERY_MASK)


def test_inputs_must_be_a_list_of_sequences():
    x = numpy.zeros((B, TQ, 3), "float32")
    with pytest.raises(ValueError, match=r"takes a list \[query, value\] or \[query, value, key\]"):
        Attention()(x)
    with pytest.raises(ValueError, match=r"query must be a sequence \(B, T, D\)"):
        Attention()([x[:, 0], x])
    with pytest.raises(TypeError, match=r"needs a value: mha\(query, value\)"):
        MultiHeadAttention(2, 3)(x)
    with pytest.raises(ValueError, match="score_mode must be 'dot' or 'concat'"):
        Attention(score_mode="general")
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        MultiHeadAttention(0, 3)
