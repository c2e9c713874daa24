"""Recorded backward: values that remember the operation that made them.

The cells and built-in layers have backward passes derived by hand. A model
that *composes* pieces (a residual connection, a custom layer's ``call()``, a
cell written in Keras's cell protocol, a functional ``Model``) needs the
chain rule applied across the pieces. That is all this module does:

- A ``Value`` holds an array (``data``) and, when an operation made it, the
  ``Node`` of that call: the operation, its inputs, and the cache its forward
  kept for its backward. A value made by a layer or an operation keeps its
  node alive, so each call has its own cache (a layer called at every time
  step has T caches, one per call).
- ``backward(outputs, output_grads)`` walks the nodes in reverse topological
  order and calls each operation's own hand-written ``backward(dout, cache)``,
  summing the gradients of a value used more than once (fan-out):

      dL/dv = sum over every use u of v of  dL/du * du/dv.

- A ``Variable`` is a leaf bound to one parameter of a layer (by name, so a
  float64 copy swapped in by ``gradcheck`` is what it reads); its gradient is
  accumulated into the layer's ``grads``, as every hand-written backward does.
- A *symbolic* value (``data`` is None) has only a ``shape`` with ``None``
  for unknown sizes: ``tinyrnn.Input`` makes one, and calling layers and
  operations on it records the graph a functional ``Model`` replays.

An operation is any object with

    forward(*arrays) -> (output, cache)           output: an array or a tuple
    backward(dout, cache) -> one gradient per input (None where there is none)

(``tinyrnn.ops`` holds them, each with its equations). This module knows no
layer: layers record themselves through ``apply`` with an adapter.
"""

from __future__ import annotations

import contextlib

from tinyrnn import backend

# sizes that stand in for unknown (None) axes when an operation's output shape
# is found by running it: an axis whose size follows the stand-in is unknown too
_STAND_INS = (7, 11)


class Node:
    """One recorded call: ``op`` applied to ``inputs`` (Values, arrays or numbers).

    ``cache`` is what the op's forward kept for its backward (None for a
    symbolic call, and again once backward has consumed it); ``n_outputs`` the
    number of output values."""

    __slots__ = ("op", "inputs", "cache", "n_outputs", "used")

    def __init__(self, op, inputs, cache, n_outputs):
        self.op, self.inputs, self.cache, self.n_outputs = op, tuple(inputs), cache, n_outputs
        self.used = False

    def __repr__(self):
        return f"<Node {self.op!r}>"


class Value:
    """An array with the record of how it was computed (see the module docstring).

    ``data``: the array (None for a symbolic value); ``shape``: its shape
    (``None`` for sizes unknown before the data comes); ``node`` and ``index``:
    the call that produced it and which of that call's outputs it is (None for
    a leaf); ``mask``: the (B, T) bool mask the value carries, as Keras's
    ``_keras_mask`` (set by the layer that made it, from its ``compute_mask``;
    None for no mask, and always None on a symbolic value: a mask depends on
    the data, so it is computed again on every forward pass). Arithmetic
    operators, ``@`` and indexing are the operations of ``tinyrnn.ops``
    (attached there), so ``x[..., :n] * 2 + y`` records as it reads.
    """

    __slots__ = ("data", "shape", "node", "index", "name", "mask", "__weakref__")
    __array_ufunc__ = None  # numpy_array + value calls Value.__radd__, so the call is recorded

    def __init__(self, data=None, shape=None, node=None, index=0, name=None, mask=None):
        self.data = data
        self.shape = tuple(data.shape) if data is not None else tuple(shape)
        self.node, self.index, self.name, self.mask = node, index, name, mask

    @property
    def symbolic(self) -> bool:
        return self.data is None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self):
        return self.data.dtype if self.data is not None else backend.floatx()

    def __len__(self):
        if self.shape[0] is None:
            raise TypeError("len() of a symbolic value whose first axis is unknown (None)")
        return self.shape[0]

    def __array__(self, *args, **kwargs):
        raise TypeError(
            "a tinyrnn Value was handed to NumPy, which would drop its gradient: use the operations of "
            "tinyrnn.ops (ops.exp(x), ops.concatenate([a, b]), ...) or take x.data for a plain array"
        )

    def __repr__(self):
        what = "symbolic" if self.symbolic else str(self.dtype)
        made = f" from {self.node.op!r}" if self.node is not None else ""
        return f"<Value shape={self.shape} {what}{made}>"


class Variable(Value):
    """A leaf bound to parameter ``name`` of ``owner`` (a layer or a cell).

    Reads ``owner.params[name]`` (or ``owner.state[name]`` when not trainable)
    at every use; ``accumulate(g)`` adds g to ``owner.grads[name]``."""

    __slots__ = ("owner", "key")

    def __init__(self, owner, key):
        self.owner, self.key = owner, key
        self.node, self.index, self.name, self.mask = None, 0, key, None

    @property
    def data(self):
        store = self.owner.params if self.key in self.owner.params else self.owner.state
        return store[self.key]

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def trainable(self) -> bool:
        return self.key in self.owner.params

    def accumulate(self, g) -> None:
        if self.trainable:
            self.owner.grads[self.key] += g

    def assign(self, value) -> None:
        """Set the weight's values in place (Keras's ``variable.assign``)."""
        self.data[...] = backend.xp.asarray(value, dtype=self.data.dtype)

    def numpy(self):
        return backend.to_numpy(self.data).copy()


def any_symbolic(args) -> bool:
    return any(isinstance(a, Value) and a.symbolic for a in args)


def apply(op, *args):
    """Run ``op`` on ``args`` and record the call when any argument is a Value.

    Plain arrays in, plain array out (no record, no cost). Symbolic values in:
    a symbolic output whose shape is found by running the op on stand-in data
    (``infer_shape``). Otherwise the op's forward runs on the arrays and the
    output Value(s) keep the ``Node`` with the op's cache.
    """
    if not any(isinstance(a, Value) for a in args):
        return op.forward(*args)[0]
    if any_symbolic(args):
        return symbolic_outputs(op, args, infer_shape(op, args))
    out, cache = op.forward(*(a.data if isinstance(a, Value) else a for a in args))
    return wrap(op, args, cache, out)


def wrap(op, args, cache, out):
    """The output Value(s) of a recorded call: one, or a tuple for a tuple of outputs."""
    outs = out if isinstance(out, tuple) else (out,)
    node = Node(op, args, cache, len(outs))
    values = tuple(Value(o, node=node, index=i) for i, o in enumerate(outs))
    return values if isinstance(out, tuple) else values[0]


def symbolic_outputs(op, args, shapes):
    """Symbolic Value(s) of the given shape(s) (a tuple or a list of tuples for several)."""
    many = isinstance(shapes, list)
    node = Node(op, args, None, len(shapes) if many else 1)
    if many:
        return [Value(shape=tuple(s), node=node, index=i) for i, s in enumerate(shapes)]
    return Value(shape=tuple(shapes), node=node)


def infer_shape(op, args):
    """The output shape of ``op`` on symbolic args, unknown axes as None.

    The op runs twice on zeros in which every unknown size is a stand-in (7,
    then 11); an output axis whose size changes with the stand-in is unknown.
    """
    runs = []
    for size in _STAND_INS:
        arrays = [backend.xp.zeros(tuple(size if d is None else d for d in a.shape), a.dtype)
                  if isinstance(a, Value) else a for a in args]
        out = op.forward(*arrays)[0]
        runs.append([o.shape for o in out] if isinstance(out, tuple) else out.shape)
    first, second = runs
    if isinstance(first, list):
        return [_merge_shapes(a, b) for a, b in zip(first, second)]
    return _merge_shapes(first, second)


def _merge_shapes(a, b):
    return tuple(x if x == y else None for x, y in zip(a, b))


# --- backward ---------------------------------------------------------------------------------
def topological_order(outputs) -> list:
    """Every node the outputs depend on, each after the nodes of its inputs."""
    order, seen = [], set()
    stack = [(v.node, False) for v in outputs if isinstance(v, Value) and v.node is not None]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((a.node, False) for a in node.inputs
                     if isinstance(a, Value) and a.node is not None and id(a.node) not in seen)
    return order


def backward(outputs, output_grads) -> dict:
    """Backpropagate ``output_grads`` from ``outputs`` through the recorded calls.

    Each node's op gets the summed gradients of its outputs and returns its
    inputs' gradients; a Variable adds its gradient to its layer's ``grads``.
    Returns {leaf Value: gradient} for the other leaves (the inputs).
    Each recorded call can be backpropagated once (its cache is consumed).
    """
    grads: dict = {}
    for v, g in zip(outputs, output_grads):
        if isinstance(v, Value) and g is not None:
            _add(grads, _key(v), g)
    leaves = {}
    for node in reversed(topological_order(outputs)):
        douts = [grads.pop((node, i), None) for i in range(node.n_outputs)]
        if all(d is None for d in douts):
            continue
        if node.used:
            raise RuntimeError(
                f"backward through {node.op!r} twice: each recorded call allows one backward "
                "(run the forward pass again before the next backward)"
            )
        node.used = True
        dins = node.op.backward(douts if node.n_outputs > 1 else douts[0], node.cache)
        node.cache = None
        for a, d in zip(node.inputs, dins):
            if isinstance(a, Value) and d is not None:
                _add(grads, _key(a), d)
    for key, g in grads.items():
        if isinstance(key, Variable):
            key.accumulate(g)
        elif isinstance(key, Value):
            leaves[key] = g
    return leaves


def _key(v: Value):
    return v if v.node is None else (v.node, v.index)


def _add(grads, key, g):
    grads[key] = g if key not in grads else grads[key] + g


def depends_on(outputs, leaves) -> bool:
    """True when every output is computed from at least one of ``leaves``."""
    leaf_ids = {id(v) for v in leaves}

    def reaches(v):
        used = [a for node in topological_order([v]) for a in node.inputs]
        return any(id(a) in leaf_ids for a in [v, *used])

    return all(isinstance(v, Value) and reaches(v) for v in outputs)


# --- training mode, for calls recorded inside a forward pass ----------------------------------
_training = [False]


@contextlib.contextmanager
def training_mode(training: bool):
    """Layers called inside a recorded ``call()`` run in the mode of the outer forward pass."""
    _training.append(bool(training))
    try:
        yield
    finally:
        _training.pop()


def current_training() -> bool:
    return _training[-1]


# --- nested structures of values (a layer's inputs may be a list) ------------------------------
def flatten(structure) -> list:
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def map_structure(function, structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(function, item) for item in structure)
    return function(structure)


def pack_like(structure, flat: list):
    """Rebuild ``structure``'s nesting from a flat list (the inverse of ``flatten``)."""
    items = iter(flat)

    def take(s):
        if isinstance(s, (list, tuple)):
            return type(s)(take(item) for item in s)
        return next(items)

    return take(structure)


def zeros_for(v):
    """A zero gradient for a concrete value or array."""
    data = v.data if isinstance(v, Value) else v
    return backend.xp.zeros_like(data)


