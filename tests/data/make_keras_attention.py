"""Make tests/data/keras_attention.npz: Keras 3's attention layers on fixed inputs, masks and weights.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    /work/tfvenv/bin/python tests/data/make_keras_attention.py     # from the repository root

Each case is one layer called once (B=2, Tq=5, Tv=4; query D=3, value D=3 or, with a key of
D=3, value D=6), its weights set to random values (not Keras's ones / zeros, so every weight is
tested), once with a padding mask (query and value masks, Keras's ``mask=[query_mask,
value_mask]``, or ``value_mask=`` / ``query_mask`` for MultiHeadAttention) and once with the
causal mask. Saved per case, as ``<case>/<name>`` (float32, masks bool):

    query, value, key?        the inputs;      query_mask?, value_mask?  the masks
    w0, w1, ...               the weights in ``layer.get_weights()`` order
    y, scores                 the output and the attention scores (``return_attention_scores``)
    upstream                  a random dL/dy
    dquery, dvalue, dkey?     TensorFlow's gradients of sum(y * upstream) for the inputs
    dw0, dw1, ...             and for the weights

``keras_attention.json`` lists the cases with each layer's config and call arguments.
"""

import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
B, TQ, TV = 2, 5, 4
QUERY_MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], bool)
VALUE_MASK = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)

CASES = {
    # name: (layer class, config, key given?, call arguments)
    "dot_padding": ("Attention", {"use_scale": True}, False, {"mask": "both"}),
    "dot_causal": ("Attention", {"use_scale": True}, True, {"use_causal_mask": True}),
    "concat_padding": ("Attention", {"use_scale": True, "score_mode": "concat"}, False, {"mask": "both"}),
    "concat_causal": ("Attention", {"score_mode": "concat"}, True, {"use_causal_mask": True}),
    "additive_padding": ("AdditiveAttention", {}, True, {"mask": "both"}),
    "additive_causal": ("AdditiveAttention", {}, False, {"use_causal_mask": True}),
    "mha_padding": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "value_dim": 4, "output_shape": 5},
                    True, {"value_mask": True}),
    "mha_causal": ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2}, False, {"use_causal_mask": True}),
}


def run_case(rng, class_name, config, key_given, call):
    query = rng.normal(size=(B, TQ, 3)).astype("float32")
    value = rng.normal(size=(B, TV, 6 if key_given else 3)).astype("float32")
    key = rng.normal(size=(B, TV, 3)).astype("float32") if key_given else None
    layer = getattr(keras.layers, class_name)(**config)
    arrays = {"query": query, "value": value}
    if key_given:
        arrays["key"] = key
    tensors = {k: tf.constant(a) for k, a in arrays.items()}
    kwargs = {"use_causal_mask": call.get("use_causal_mask", False)}
    if call.get("mask") == "both":
        kwargs["mask"] = [tf.constant(QUERY_MASK), tf.constant(VALUE_MASK)]
        arrays.update(query_mask=QUERY_MASK, value_mask=VALUE_MASK)
    if call.get("value_mask"):
        kwargs["value_mask"] = tf.constant(VALUE_MASK)
        arrays["value_mask"] = VALUE_MASK

    def apply():
        if class_name == "MultiHeadAttention":
            return layer(tensors["query"], tensors["value"], tensors.get("key"), return_attention_scores=True,
                         **kwargs)
        inputs = [tensors["query"], tensors["value"]] + ([tensors["key"]] if key_given else [])
        return layer(inputs, return_attention_scores=True, **kwargs)

    apply()                                                          # builds the weights
    weights = [rng.normal(0.0, 0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    with tf.GradientTape() as tape:
        for t in tensors.values():
            tape.watch(t)
        y, scores = apply()
        upstream = rng.normal(size=y.shape).astype("float32")
        loss = tf.reduce_sum(y * upstream)
    names = list(tensors)
    grads = tape.gradient(loss, [tensors[n] for n in names] + list(layer.trainable_weights))
    out = dict(arrays, y=y.numpy(), scores=scores.numpy(), upstream=upstream)
    out.update({f"w{i}": w for i, w in enumerate(weights)})
    out.update({f"d{n}": g.numpy() for n, g in zip(names, grads)})
    out.update({f"dw{i}": g.numpy() for i, g in enumerate(grads[len(names):])})
    weight_names = [w.path for w in layer.weights]
    return out, weight_names


def main():
    keras.utils.set_random_seed(13)
    rng = np.random.default_rng(13)
    arrays, index = {}, {"keras": keras.__version__, "cases": {}}
    for case, (class_name, config, key_given, call) in CASES.items():
        out, weight_names = run_case(rng, class_name, config, key_given, call)
        arrays.update({f"{case}/{k}": v for k, v in out.items()})
        index["cases"][case] = {"class_name": class_name, "config": config, "key": key_given, "call": call,
                                "weights": weight_names}
    np.savez_compressed(HERE / "keras_attention.npz", **arrays)
    (HERE / "keras_attention.json").write_text(json.dumps(index, indent=1) + "\n")
    print(json.dumps(index, indent=1))


if __name__ == "__main__":
    main()
