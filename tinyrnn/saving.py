"""Saving and loading whole models: ``model.save(path)`` and ``tinyrnn.load_model(path)``.

One ``.npz`` file (NumPy's zip of ``.npy`` arrays) holds everything needed to
predict, and to carry on training exactly where it stopped:

=====================  ==================================================================
entry                  what it holds
=====================  ==================================================================
``tinyrnn/header``     JSON as UTF-8 bytes (a uint8 array): the format name and version,
                       the architecture (``tinyrnn.layers.serialize`` of every layer,
                       the input shape), the compile config (loss, optimizer config,
                       metric names) and the state of tinyrnn's random generator
``weights/<i>/<j>``    the j-th array of layer i's ``get_weights()`` (Keras's order)
``optimizer/<name>``   the optimizer's ``get_state()``: step count, Adam's m and v, ...
``tinyrnn/sha256``     SHA-256 of every other entry (name, dtype, shape and bytes)
=====================  ==================================================================

Nothing needs pickle, so the file is read with ``numpy.load(path,
allow_pickle=False)``: loading a model never runs code stored in a file.

Resuming is exact. The generator behind dropout masks and the shuffling order
is saved with the model and restored by ``load_model``, so with the same data,
``fit`` for k epochs, save, load (in a new process), ``fit`` for N - k more gives
the weights and History of ``fit`` for N epochs, bit for bit on the CPU.

Writing is atomic: the arrays go to a temporary file in the same directory,
which is flushed and ``fsync``-ed to disk, then renamed over ``path`` with
``os.replace`` (atomic on POSIX and Windows). A crash or a kill in the middle of
a save leaves the previous file as it was (and at worst a stray
``.<name>.<random>.tmp`` beside it).

Reading refuses, with a ``ValueError`` that says why: a file that is not a
readable ``.npz`` (truncated or corrupted), an ``.npz`` that is not a tinyrnn
model, a format version this tinyrnn does not read, and a file whose contents
no longer match their checksum (edited or damaged after saving).

A functional ``Model`` is saved as its graph: the layers (as above), then
every recorded call in order, a layer's by its index and an operation's by
class name and arguments, each input named as a model input or an earlier
call's output. A subclassed ``Model`` is Python code, not data: save its
weights (``get_weights``) instead.

User functions cannot be stored in a file: a metric, loss or optimizer that is
not built in is saved by name, and ``load_model`` needs it in
``custom_objects={"name": fn}`` (else it is left out, with a warning). User
layer and cell classes are found by name too: register them with
``tinyrnn.layers.register``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import warnings
import zipfile

import numpy

import tinyrnn
from tinyrnn import activations, backend, graph, losses, metrics, ops, optimizers, seeding
from tinyrnn.layers import Input, deserialize, serialize
from tinyrnn.layers.base import LayerCall
from tinyrnn.models import Model, Sequential

FORMAT = "tinyrnn.Sequential"
FORMAT_VERSION = 1
"""Bumped whenever the layout of the file changes; ``load_model`` reads this version only."""

HEADER = "tinyrnn/header"
CHECKSUM = "tinyrnn/sha256"


# --- saving ----------------------------------------------------------------------
def save_model(model: Sequential, path) -> None:
    """Write ``model`` (architecture, weights, compile config, optimizer and random
    state) to the ``.npz`` file ``path``, atomically. ``model.save(path)`` calls this."""
    path = _npz_path(path)
    entries = _model_entries(model)
    entries[CHECKSUM] = _text_array(checksum(entries))
    _write_atomically(path, entries)


def _model_entries(model: Model) -> dict:
    """The arrays of the file, checksum excepted: header, weights, optimizer state."""
    if not isinstance(model, Model) or (not isinstance(model, Sequential) and model._nodes is None):
        raise TypeError(
            f"save_model saves a Sequential or functional Model, got {type(model).__name__}: a subclassed "
            "model's architecture is its Python code; save model.get_weights() and rebuild the class"
        )
    weights = [layer.get_weights() for layer in model.layers] if isinstance(model, Sequential) \
        else [model.get_weights()]
    entries = {HEADER: _text_array(json.dumps(_header(model, weights)))}
    for i, layer_weights in enumerate(weights):
        for j, w in enumerate(layer_weights):
            entries[f"weights/{i}/{j}"] = w
    if model.optimizer is not None:
        for name, value in model.optimizer.get_state().items():
            entries[f"optimizer/{name}"] = numpy.asarray(value)
    return entries


def _header(model, weights) -> dict:
    first = next((w for ws in weights for w in ws), None)
    input_shape = model.input_shape
    if input_shape is None and model.built:  # layers built one by one: the first one knows
        input_shape = model.layers[0].input_shape
    spec = {
        "name": model.name,
        "input_shape": None if input_shape is None else list(input_shape),
        "built": model.built,
        "floatx": str(first.dtype if first is not None else backend.floatx()),
        "layers": [{"layer": serialize(layer), "trainable": layer.trainable,
                    "weights": len(weights[i]) if isinstance(model, Sequential) else 0}
                   for i, layer in enumerate(model.layers)],
    }
    if not isinstance(model, Sequential):
        spec.update(graph=_graph_spec(model), weights=len(weights[0]))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tinyrnn_version": tinyrnn.__version__,
        "model": spec,
        "compile": None if model.loss is None else _compile_config(model),
        "random_state": seeding.get_state(),
    }


def _compile_config(model) -> dict:
    loss, optimizer = model.loss, model.optimizer
    return {
        "loss": [_loss_spec(fn) for fn in loss] if isinstance(loss, list) else _loss_spec(loss),
        "optimizer": {"class_name": type(optimizer).__name__, "config": optimizer.get_config()},
        "metrics": [{"name": name, "builtin": _builtin_metric(name) is fn} for name, fn in model.metrics],
    }


def _loss_spec(loss) -> dict:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _write_atomically(path: str, entries: dict) -> None:
    """Temporary file beside ``path``, flushed and fsync-ed, then ``os.replace``: all or nothing."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:  # "x": never reuse an existing file
            numpy.savez(file, **entries)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them the model
        os.replace(temporary, path)
    except BaseException:  # an error or Ctrl-C: the previous file is untouched
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_directory(directory)  # make the rename itself durable


def _fsync_directory(directory: str) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- loading ------------------------------------------------------------------------
def load_model(path, custom_objects=None, restore_random_state=True) -> Model:
    """Rebuild the model saved at ``path``: layers, weights, and (if it was
    compiled) loss, optimizer with its state, and metrics.

    Parameters
    ----------
    path : a ``.npz`` file written by ``model.save``.
    custom_objects : dict name -> function or class, for the user's own metrics
        (by the name they were reported under), losses and optimizers (by class name).
    restore_random_state : put tinyrnn's random generator back in the state it
        had at saving, so training continues exactly as it would have (default).
        False leaves the generator as it is.

    Raises
    ------
    ValueError
        For a truncated, corrupted, edited or foreign file, or a format version
        this tinyrnn does not read.
    """
    path = os.fspath(path)
    entries = _read_entries(path)
    header = _check_header(entries, path)
    model = _build_model(header["model"], entries, path)
    if header["compile"] is not None:
        problem = _compile(model, header["compile"], entries, dict(custom_objects or {}))
        if problem:
            warnings.warn(f"{path}: {problem}", UserWarning, stacklevel=2)
    if restore_random_state:
        seeding.set_state(header["random_state"])
    return model


def _read_entries(path: str) -> dict:
    """Every array of the ``.npz`` at ``path``, read without pickle; ValueError if unreadable."""
    unreadable = (f"{path} is not a readable tinyrnn model file: it is truncated, corrupted or not an "
                  ".npz file")
    try:
        data = numpy.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{unreadable} ({err.__class__.__name__}: {_first_line(err)})") from None
    if not isinstance(data, numpy.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a tinyrnn model: it holds a single array (an .npy file)")
    try:
        with data:
            return {name: data[name] for name in data.files}
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{unreadable} ({err.__class__.__name__}: {_first_line(err)})") from None


def _check_header(entries: dict, path: str) -> dict:
    """The parsed header, once the file proves to be a tinyrnn model of this version, intact."""
    foreign = f"{path} is not a tinyrnn model file (save one with model.save(path))"
    if HEADER not in entries:
        raise ValueError(f"{foreign}: it has no {HEADER!r} entry, only {sorted(entries)[:5]}")
    try:
        header = json.loads(_text(entries[HEADER]))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{foreign}: its header is not valid JSON ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{foreign}: its header does not declare the format {FORMAT!r}")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} uses tinyrnn model format version {version!r} (written by tinyrnn "
            f"{header.get('tinyrnn_version', '?')}); this tinyrnn {tinyrnn.__version__} reads version "
            f"{FORMAT_VERSION} only: load it with the tinyrnn version that saved it"
        )
    if _stored_checksum(entries) != checksum(entries):
        raise ValueError(
            f"{path} does not match its SHA-256 checksum: the file was edited or damaged after it was "
            "saved. Use an intact copy (or save the model again)."
        )
    return header


def _build_model(spec: dict, entries: dict, path: str) -> Model:
    """Layers from their configs, built in the saved dtype, with the saved weights."""
    if "graph" in spec:
        return _build_functional(spec, entries, path)
    model = Sequential(_layers_from(spec, path), name=spec["name"])
    if spec["input_shape"] is not None:
        model.input_shape = tuple(spec["input_shape"])
    if not spec["built"]:
        return model
    weights = [entries[f"weights/{i}/{j}"]
               for i, item in enumerate(spec["layers"]) for j in range(item["weights"])]
    random_state = seeding.get_state()
    with backend.float_precision(spec["floatx"]):
        model.build()  # draws initial weights, overwritten below ...
    seeding.set_state(random_state)  # ... without consuming the user's random numbers
    try:
        model.set_weights(weights)
    except ValueError as err:
        raise ValueError(f"{path}: the saved weights do not fit the rebuilt layers: {err}") from None
    return model


# --- functional models: the graph as data ------------------------------------------
def _graph_spec(model) -> dict:
    """Inputs, every recorded call (a layer by index, an operation by class and arguments), outputs."""
    names = {id(v): ["input", k] for k, v in enumerate(model.inputs)}
    layer_index = {id(layer): i for i, layer in enumerate(model.layers)}
    calls = []
    for n, node in enumerate(model._nodes):
        args = [_reference(a, names, node) for a in node.inputs]
        if isinstance(node.op, LayerCall):
            call = {"layer": layer_index[id(node.op.layer)], "structure": _structure(node.op.structure),
                    "kwargs": node.op.kwargs, **({"mask_input": True} if node.op.mask_input else {})}
        else:
            call = {"op": type(node.op).__name__, "config": _op_config(node.op)}
        calls.append({**call, "inputs": args})
        names.update({(id(node), i): ["call", n, i] for i in range(node.n_outputs)})
    return {"inputs": [{"shape": list(v.shape), "name": v.name} for v in model.inputs],
            "input_structure": _structure(model._input_structure),
            "calls": calls, "outputs": [_reference(v, names, None) for v in model.outputs],
            "output_structure": _structure(model._output_structure)}


def _reference(a, names, node):
    if isinstance(a, graph.Value):
        return names[id(a)] if a.node is None else names[(id(a.node), a.index)]
    if isinstance(a, (int, float)):
        return ["number", a]
    raise TypeError(f"cannot save the call {node.op!r}: it uses a constant array; make it a weight "
                    "(add_weight) or a layer argument")


def _structure(s):
    """The nesting of a list of inputs or outputs (0 stands for one value)."""
    return [_structure(item) for item in s] if isinstance(s, (list, tuple)) else 0


def _op_config(op) -> dict:
    if isinstance(op, activations.ActivationCall):
        return {"activation": op.activation.name}
    config = dict(vars(op))
    if "index" in config:
        config["index"] = _encode_index(config["index"])
    return config


def _encode_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return [{"slice": [i.start, i.stop, i.step]} if isinstance(i, slice) else
            "..." if i is Ellipsis else "newaxis" if i is None else
            int(i) if isinstance(i, (int, numpy.integer)) else [int(j) for j in numpy.asarray(i).ravel()]
            for i in items]


def _decode_index(items):
    return tuple(slice(*i["slice"]) if isinstance(i, dict) else Ellipsis if i == "..." else
                 None if i == "newaxis" else i for i in items)


def _layers_from(spec: dict, path: str) -> list:
    """The saved layers, rebuilt from their configs (not built, no weights yet)."""
    layers = []
    for item in spec["layers"]:
        try:
            layer = deserialize(item["layer"])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        layer.trainable = item["trainable"]
        layers.append(layer)
    return layers


def _build_functional(spec: dict, entries: dict, path: str) -> Model:
    """The graph replayed on new ``Input``s: every call in order, then the saved weights."""
    layers = _layers_from(spec, path)
    g = spec["graph"]
    random_state = seeding.get_state()
    with backend.float_precision(spec["floatx"]):
        inputs = [Input(batch_shape=i["shape"], name=i["name"]) for i in g["inputs"]]
        values = {}

        def value(ref):
            kind = ref[0]
            if kind == "call":
                return values[(ref[1], ref[2])]
            return inputs[ref[1]] if kind == "input" else ref[1]

        for n, call in enumerate(g["calls"]):
            args = [value(r) for r in call["inputs"]]
            if "layer" in call:
                kwargs = dict(call["kwargs"])
                if call.get("mask_input"):                     # layer(x, mask=m): m is the last input
                    *args, kwargs["mask"] = args
                outs = layers[call["layer"]](_pack(call["structure"], args), **kwargs)
            else:
                outs = graph.apply(_rebuild_op(call), *args)
            for i, out in enumerate(graph.flatten(outs) if isinstance(outs, (list, tuple)) else [outs]):
                values[(n, i)] = out
        model = Model(inputs=_pack(g["input_structure"], inputs),
                      outputs=_pack(g["output_structure"], [value(r) for r in g["outputs"]]),
                      name=spec["name"])
    seeding.set_state(random_state)  # building drew initial weights: the user's generator is left as it was
    try:
        model.set_weights([entries[f"weights/0/{j}"] for j in range(spec["weights"])])
    except ValueError as err:
        raise ValueError(f"{path}: the saved weights do not fit the rebuilt layers: {err}") from None
    return model


def _pack(structure, flat):
    return flat[0] if structure == 0 else graph.pack_like(structure, list(flat))


def _rebuild_op(call):
    config = dict(call["config"])
    if call["op"] == "ActivationCall":
        return activations.ActivationCall(activations.get(config["activation"]))
    if "index" in config:
        config["index"] = _decode_index(config["index"])
    for key in ("axis", "axes", "shape"):
        if isinstance(config.get(key), list):
            config[key] = tuple(config[key])
    op = object.__new__(getattr(ops, call["op"]))
    op.__dict__.update(config)
    return op


def _compile(model, config: dict, entries: dict, custom_objects: dict):
    """Compile as saved and restore the optimizer's state; returns what could not be restored, or None."""
    builtin_losses = {cls.__name__: cls for cls in losses.LOSSES.values()}
    loss_specs = config["loss"] if isinstance(config["loss"], list) else [config["loss"]]
    loss = [_rebuild(spec, custom_objects, builtin_losses) for spec in loss_specs]
    optimizer = _rebuild(config["optimizer"], custom_objects,
                         {cls.__name__: cls for cls in optimizers.OPTIMIZERS.values()})
    if None in loss or optimizer is None:
        missing = (loss_specs[loss.index(None)] if None in loss else config["optimizer"])["class_name"]
        return (f"the model was compiled with {missing!r}, which is not built into tinyrnn: it is loaded "
                f"uncompiled (weights intact); pass custom_objects={{{missing!r}: {missing}}} to restore it")
    model.compile(loss=loss if isinstance(config["loss"], list) else loss[0], optimizer=optimizer)
    prefix = "optimizer/"
    model.optimizer.set_state({k[len(prefix):]: v for k, v in entries.items() if k.startswith(prefix)})
    model.metrics, left_out = [], []
    for metric in config["metrics"]:
        name = metric["name"]
        fn = custom_objects.get(name) or (_builtin_metric(name) if metric["builtin"] else None)
        if fn is None:
            left_out.append(name)
        else:
            model.metrics.append((name, fn))
    if left_out:
        example = ", ".join(f"{n!r}: {n}" for n in left_out)
        return (f"user metric function(s) {', '.join(map(repr, left_out))} cannot be saved and were left "
                f"out; pass custom_objects={{{example}}} to load_model to keep them")
    return None


def _rebuild(spec: dict, custom_objects: dict, builtin: dict):
    """An instance from {"class_name", "config"}: a custom object first, then a built-in class."""
    name, config = spec["class_name"], spec["config"]
    found = custom_objects.get(name, builtin.get(name))
    if found is None:
        return None
    return found(**config) if isinstance(found, type) else found


def _builtin_metric(name: str):
    return metrics.METRICS.get(name.lower(), (None, None))[1]


# --- the checksum and text entries --------------------------------------------------
def checksum(entries: dict) -> str:
    """SHA-256 (hex) over every entry but the checksum: name, dtype, shape, then the bytes."""
    digest = hashlib.sha256()
    for name in sorted(entries):
        if name == CHECKSUM:
            continue
        array = numpy.ascontiguousarray(entries[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _stored_checksum(entries: dict):
    try:
        return _text(entries[CHECKSUM])
    except (KeyError, TypeError, ValueError):  # missing or malformed: no match
        return None


def _text_array(text: str) -> numpy.ndarray:
    """Text as a uint8 array of its UTF-8 bytes (an .npz entry readable without pickle)."""
    return numpy.frombuffer(text.encode("utf-8"), dtype=numpy.uint8).copy()


def _text(array) -> str:
    array = numpy.asarray(array)
    if array.dtype != numpy.uint8 or array.ndim != 1:
        raise TypeError(f"expected UTF-8 bytes as a 1-D uint8 array, got {array.dtype} {array.shape}")
    return array.tobytes().decode("utf-8")


def _npz_path(path) -> str:
    path = os.fspath(path)
    if not str(path).endswith(".npz"):
        raise ValueError(
            f"tinyrnn saves a model as one .npz file: give a path ending in '.npz' "
            f"(e.g. 'my_model.npz'), got {path!r}"
        )
    return path


def _first_line(err) -> str:
    return str(err).splitlines()[0] if str(err) else ""
