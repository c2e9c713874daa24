"""The layer contract every tinyrnn layer follows.

A layer holds

- ``params``: dict name -> array, the trainable parameters;
- ``grads``: dict with the same keys, where ``backward`` *accumulates*;
- ``state``: dict name -> array, non-trainable weights (BatchNorm's moving
  statistics), saved and loaded with the others but never trained.

``forward(x, training=False) -> y`` keeps what backward needs in the layer's
cache; ``backward(dy) -> dx`` consumes that cache (a second backward without a
new forward is an error, never stale data). ``build(input_shape)`` creates the
parameters; ``__call__`` builds lazily on the first input.

``get_weights`` / ``set_weights`` use Keras's order and shapes (the names in
``weight_names``), so weights taken from a Keras layer load unchanged.

Shapes use one alphabet: B batch, T time, D input features, H units, K kernel
width, F filters. ``input_shape`` tuples include the batch axis (``None``).

Composing layers, the Keras way. A layer may instead define only ``call()``
(with ``build`` and ``add_weight`` as in Keras): its forward runs ``call`` on
``Value``s, which records every layer and operation it uses, and its
backward walks that record (``tinyrnn.graph``), calling each piece's own
hand-written backward. Calling any layer on ``Value``s (inside another
layer's ``call``, or on ``tinyrnn.Input`` in a functional model) records it
the same way, with one cache per call. Layers and cells assigned as
attributes are tracked (``sublayers()``), so their weights are the outer
layer's too.

Masks, the Keras way. A mask (B, T) bool marks the time steps that hold data
(True) and the padding (False). ``Masking`` and ``Embedding(mask_zero=True)``
make one (``compute_mask``); a layer that takes it declares
``forward(x, training=False, mask=None)`` (a recurrent layer skips the masked
steps); a layer with ``supports_masking`` passes it on to its output (its
``compute_mask``, by default the mask unchanged); at any other layer the mask
stops (with a warning, as Keras). ``forward_with_mask`` is that rule, used by
``Sequential`` and by every recorded call, where a ``Value`` carries its mask.
The losses and metrics of a model skip the masked steps of its output.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import itertools
import re
import warnings
from collections import defaultdict

import numpy

from tinyrnn import backend, graph, initializers, validation
from tinyrnn.graph import Value

_name_counters: dict[str, itertools.count] = defaultdict(itertools.count)
backend.on_clear_session(_name_counters.clear)   # keras.backend.clear_session() restarts the names


def _snake_case(name: str) -> str:
    name = re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", name).lower()


def unique_name(prefix: str) -> str:
    """Keras-style names: ``dense``, ``dense_1``, ``dense_2``, ..."""
    n = next(_name_counters[prefix])
    return prefix if n == 0 else f"{prefix}_{n}"


def constructor_arguments(cls) -> list:
    """The keywords ``cls(...)`` accepts: the named parameters of its ``__init__``, then, while
    that ``__init__`` takes ``**kwargs`` (and so hands the rest on), its parent's, up the MRO."""
    names = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.name not in names
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names


def unexpected_arguments_error(cls, unexpected, valid, wrapper=None) -> TypeError:
    """A TypeError naming the class, each unknown keyword and the closest valid one.

    ``wrapper``: optionally ``(name, its arguments)`` of the layer that holds ``cls`` (a cell's
    ``RNN``): a keyword closest to one of those is named as that layer's, with the call that takes it.
    """
    wrapper_name, wrapper_valid = wrapper or ("", [])
    lines = []
    for key in unexpected:
        close = difflib.get_close_matches(key, [*valid, *wrapper_valid], n=1)
        hint = f" (did you mean {close[0]}=?)" if close else ""
        if close and close[0] not in valid:
            hint = (f" (did you mean {close[0]}=? It is {wrapper_name}'s argument, not the "
                    f"{cls.__name__}'s: {wrapper_name}({cls.__name__}(...), {close[0]}=...))")
        lines.append(f"{cls.__name__}() got an unexpected keyword argument {key!r}{hint}")
    return TypeError("; ".join(lines) + f". {cls.__name__} takes: {', '.join(valid)}")


class Layer:
    """Base class: see the module docstring for the contract."""

    weight_names: tuple[str, ...] = ()
    accepts_integer_inputs = False   # True for a layer fed token ids (Embedding): no float check
    supports_masking = False         # True: the output carries compute_mask(x, mask) (Keras's flag)

    def __init__(self, input_shape=None, name=None, trainable=True, input_dim=None, dtype=None,
                 batch_input_shape=None, batch_size=None, **unexpected):
        if unexpected:  # every layer hands the keywords it does not know on to here
            raise unexpected_arguments_error(type(self), unexpected, type(self).argument_names())
        if batch_input_shape is not None:      # Keras 2's spelling: [B, *input_shape]
            batch_size, input_shape = batch_input_shape[0], batch_input_shape[1:]
        self.batch_size = None if batch_size is None else validation.positive_int(batch_size, "batch_size")
        self._sublayers: list = []
        self.name = name or unique_name(_snake_case(type(self).__name__))
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        self.input_shape = None if input_shape is None else (None, *tuple(input_shape))
        self.trainable = trainable
        self.params: dict = {}
        self.grads: dict = {}
        self.state: dict = {}
        self.built = False
        self._cache = None
        self._makes_masks = type(self).compute_mask is not Layer.compute_mask
        if self._makes_masks:                 # as Keras: a layer that computes its own mask supports masking
            self.supports_masking = True

    @classmethod
    def argument_names(cls) -> list:
        """The keyword arguments the constructor accepts (named in a misspelling's error)."""
        return constructor_arguments(cls)

    def __setattr__(self, name, value):
        """Track layers and cells assigned as attributes (alone or in a list), as Keras does."""
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if _has_weights(item) and item is not self:
                sublayers = self.__dict__.setdefault("_sublayers", [])
                if not any(item is known for known in sublayers):
                    sublayers.append(item)
        object.__setattr__(self, name, value)

    # --- building ---------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create ``params`` (and zeroed ``grads``) for inputs of ``input_shape``."""
        if input_shape and isinstance(input_shape[0], (list, tuple)):   # several inputs
            self.input_shape = [(None, *tuple(s)[1:]) for s in input_shape]
        else:
            self.input_shape = (None, *tuple(input_shape)[1:])
        self.built = True

    def add_weight(self, shape=None, initializer="glorot_uniform", dtype=None, trainable=True, name=None,
                   **ignored):
        """Create a weight as Keras does and return it as a ``Variable`` for ``call()``.

        ``shape`` a tuple; ``initializer`` "glorot_uniform" (default), "zeros", "ones",
        "orthogonal", or a function of the shape. A trainable weight joins ``params``
        (its gradient accumulates into ``grads``), a non-trainable one ``state``.
        ``add_weight("name", shape)`` (Keras 2's order) works too.
        """
        if isinstance(shape, str):                                   # Keras 2: add_weight(name, shape, ...)
            name, shape = shape, (initializer if isinstance(initializer, (tuple, list)) else None)
            initializer = ignored.pop("initializer", "glorot_uniform") if shape is not None else initializer
        if shape is None:
            raise ValueError(f"{self.name}: add_weight needs shape=, e.g. add_weight(shape=(3, 4))")
        name = name or f"variable_{len(self.weight_names)}"
        value = _initial_value(initializer, tuple(int(n) for n in shape))
        if dtype is not None:
            value = value.astype(dtype)
        if trainable:
            self.add_param(name, value)
        else:
            self.state[name] = value
        self.weight_names = (*self.weight_names, name)
        return graph.Variable(self, name)

    def add_param(self, name: str, value) -> None:
        """Register a trainable parameter and its zeroed gradient."""
        self.params[name] = value
        self.grads[name] = backend.xp.zeros_like(value)

    def compute_output_shape(self, input_shape) -> tuple:
        """Output shape for an input shape (batch axis included, may be None).

        A layer written with ``call()`` runs it on symbolic inputs of that shape
        (as Keras does); any other layer keeps the shape unless it says otherwise."""
        if self.records_call():
            outputs = self._run_call(_symbolic_inputs(input_shape), False)
            return graph.map_structure(lambda v: v.shape, outputs)
        return tuple(input_shape)

    # --- masks --------------------------------------------------------------
    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs for these inputs, or None: Keras's ``compute_mask``.

        Parameters
        ----------
        inputs : array (B, T, ...) or list of arrays
            The layer's inputs (the data, not Values).
        mask : bool array (B, T), or a list (one per input, None where none), or None
            The mask the inputs carry.

        Returns
        -------
        bool array (B, T) or None (a list, one per output, for several outputs)
            The default passes ``mask`` on unchanged; it is used only where
            ``supports_masking`` is True (see ``forward_with_mask``).
        """
        return mask

    @property
    def takes_mask(self) -> bool:
        """Whether the layer consumes a mask: its ``forward`` (or, written the Keras way, its
        ``call``) has a ``mask`` argument."""
        return _takes_mask(type(self).call if self.records_call() else type(self).forward)

    def forward_with_mask(self, x, mask, training=False):
        """``(y, mask of y)``: one forward pass with Keras's mask rule.

        The layer's ``forward`` gets ``mask`` when it takes one (``takes_mask``;
        the mask must be (B, T), the input's first two axes). The output carries
        ``compute_mask(x, mask)`` when the layer ``supports_masking``; otherwise
        the mask stops here (a warning says so when there was one), as in Keras.
        Without a mask only a layer that makes one (its own ``compute_mask``) is asked.
        """
        if mask is None:                      # the usual case: nothing to pass, nothing extra to do
            y = self.forward(x, training=training)
            return y, (_mask_or_none(self.compute_mask(x, None))
                       if self._makes_masks and self.supports_masking else None)
        if self.takes_mask:
            check_mask(mask, x, self.name)
            y = self.forward(x, training=training, mask=mask)
        else:
            y = self.forward(x, training=training)
        if self.supports_masking:
            return y, _mask_or_none(self.compute_mask(x, mask))
        if not self.takes_mask:
            _warn_mask_dropped(self)
        return y, None

    # --- running ----------------------------------------------------------
    def __call__(self, inputs, *args, training=None, **kwargs):
        """Run the layer: on arrays, ``forward``; on ``Value``s, a recorded call.

        Symbolic values (``tinyrnn.Input``) give symbolic outputs: the call is a
        node of a functional model's graph. The layer is built on its first input.
        ``mask=`` (a (B, T) bool array or Value) is given to a layer that takes one;
        on Values it overrides the mask the input carries."""
        flat = graph.flatten(inputs)
        if any(isinstance(v, Value) for v in flat) or args:
            return self._call_on_values(inputs, flat, training, args, kwargs)
        if not isinstance(inputs, (list, tuple)) and not self.accepts_integer_inputs:
            inputs = validation.float_dtype(inputs, "x")
        self._build_for(inputs)
        mask = kwargs.pop("mask", None)
        if mask is not None:
            return self.forward_with_mask(inputs, as_mask(mask), bool(training))[0]
        return self.forward(inputs, training=bool(training), **kwargs)

    def _build_for(self, inputs) -> None:
        if not self.built:
            self.build(graph.map_structure(lambda v: tuple(v.shape), inputs))
            self.built = True

    def forward(self, x, training: bool = False, mask=None):
        """The layer's output for one batch.

        A built-in layer computes ``y`` and keeps what its backward pass needs
        with ``self._remember(...)``, so that ``backward`` recomputes nothing. The
        default (a layer written the Keras way, with ``call()`` only) runs ``call``
        on ``Value``s and keeps the record for ``backward``.

        Parameters
        ----------
        x : array, shape (B, ...), or a list of arrays for a layer with several inputs
            Backend float arrays; the layer must be built (``__call__`` builds
            it on the first input).
        training : bool
            ``True`` during ``fit``: dropout drops, BatchNormalization uses and
            updates the batch statistics. ``False`` for inference.
        mask : bool array (B, T) or None
            Only for a layer that takes one (a built-in layer declares it in its
            own ``forward``): True at the time steps that hold data. The default
            hands it to ``call`` when call takes ``mask``.

        Returns
        -------
        array, shape ``compute_output_shape(x.shape)``
            The output ``y``.
        """
        if not self.records_call():
            raise NotImplementedError(
                f"{type(self).__name__} needs call(inputs) (its backward is then recorded), or "
                "forward(x, training) and backward(dy) written by hand"
            )
        inputs = graph.map_structure(lambda a: Value(a), x)
        outputs = self._run_call(inputs, training, kwargs={"mask": mask} if mask is not None else None)
        self._check_outputs(inputs, outputs)
        self._remember((inputs, outputs))
        return graph.map_structure(lambda v: v.data, outputs)

    def backward(self, dy):
        """Backpropagate through the last ``forward``.

        A built-in layer reads its cache with ``self._recall()`` (once: a second
        ``backward`` without a new ``forward`` is an error, never stale data),
        *adds* dL/dparam to ``self.grads[name]`` for every parameter (so
        gradients accumulate until ``zero_grads``), and returns dL/dx. The
        default walks the record of ``call()`` in reverse (``tinyrnn.graph``).

        Parameters
        ----------
        dy : array, shape like the output of ``forward``
            dL/dy, the gradient arriving from the layer above.

        Returns
        -------
        array, shape like the input of ``forward``
            dL/dx, passed on to the layer below.
        """
        if not self.records_call():
            raise NotImplementedError(f"{type(self).__name__} has no backward(dy) and no call()")
        inputs, outputs = self._recall()
        leaves = graph.backward(graph.flatten(outputs), graph.flatten(dy))
        return graph.map_structure(lambda v: leaves[v] if v in leaves else graph.zeros_for(v), inputs)

    def call(self, inputs, *args, **kwargs):
        """Keras's ``call``: override it to compose layers and ``tinyrnn.ops`` (recorded backward)."""
        raise NotImplementedError(f"{type(self).__name__} defines no call()")

    def records_call(self) -> bool:
        """True for a layer written the Keras way: ``call()`` without a hand-written backward."""
        return type(self).call is not Layer.call and type(self).backward is Layer.backward

    def _run_call(self, inputs, training, args=(), kwargs=None):
        """``call(inputs, *args)`` with ``training`` passed on when call takes it (and to inner layers)."""
        kwargs = dict(kwargs or {})
        if _takes_training(type(self).call):
            kwargs["training"] = training
        with graph.training_mode(training):
            return self.call(inputs, *args, **kwargs)

    def _check_outputs(self, inputs, outputs) -> None:
        flat = graph.flatten(outputs)
        if not all(isinstance(v, Value) for v in flat) or not graph.depends_on(flat, graph.flatten(inputs)):
            raise TypeError(
                f"{self.name}: call() must return values computed from its inputs with layers and "
                "tinyrnn.ops (a NumPy array or a constant has no gradient to give back)"
            )

    def _call_on_values(self, inputs, flat, training, args, kwargs):
        training = graph.current_training() if training is None else bool(training)
        self._build_for(inputs)
        if args:                                     # a cell's call(inputs, states): always recorded inline
            if not self.records_call():
                raise TypeError(f"{self.name}: extra positional arguments go to call(); this layer has none")
            return self._run_call(inputs, training, args, kwargs)
        kwargs = dict(kwargs)
        explicit = kwargs.pop("mask", None)
        if graph.any_symbolic(flat):                 # a node of a functional model's graph
            mask_input = [explicit] if isinstance(explicit, Value) else []   # replayed with the data
            if explicit is not None and not mask_input:
                kwargs["mask"] = explicit            # a fixed array: the same mask on every call
            call = LayerCall(self, inputs, kwargs, mask_input=bool(mask_input))
            call.output_shapes = self._symbolic_shapes(inputs)
            return graph.symbolic_outputs(call, [*flat, *mask_input], call.output_shapes)
        mask = _carried_mask(inputs) if explicit is None else as_mask(explicit)
        if mask is not None and self.takes_mask:
            check_mask(mask, _data(inputs), self.name)
            kwargs["mask"] = mask
        if self.records_call():                      # its call() records straight into the outer record
            outputs = self._run_call(inputs, training, (), kwargs)
        else:
            outputs = graph.apply(LayerCall(self, inputs, kwargs, training), *flat)
            outputs = list(outputs) if isinstance(outputs, tuple) else outputs
        if mask is None and not self._makes_masks:   # no mask, none made here (forward_with_mask's rule)
            return outputs
        if self.supports_masking:
            _set_masks(outputs, _mask_or_none(self.compute_mask(_data(inputs), mask)))
        elif mask is not None and not self.takes_mask:
            _warn_mask_dropped(self)
        return outputs

    def _symbolic_shapes(self, inputs):
        """Output shape(s) on symbolic inputs, from ``compute_output_shape`` (a list for several)."""
        shape = self.compute_output_shape(graph.map_structure(lambda v: v.shape, inputs))
        return list(shape) if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], tuple) \
            else shape

    def _remember(self, cache) -> None:
        """Keep what backward needs (called by forward)."""
        self._cache = cache

    def _recall(self):
        """Hand backward its cache exactly once."""
        if self._cache is None:
            raise RuntimeError(
                f"{self.name}: backward() needs a forward() first; each forward() "
                "allows one backward() (call forward again before the next backward)"
            )
        cache, self._cache = self._cache, None
        return cache

    def zero_grads(self) -> None:
        """Set every gradient of this layer (and of the layers it holds) to zero."""
        for owner in parameter_owners([self]):
            for g in owner.grads.values():
                g[...] = 0

    # --- weights ----------------------------------------------------------
    def get_weights(self) -> list:
        """The layer's weights, as Keras's ``layer.get_weights()``.

        Returns
        -------
        list of numpy.ndarray
            Copies on the host (whatever the backend), this layer's own in the
            order of ``weight_names`` and in Keras's shapes, trainable parameters
            and non-trainable state alike (for example ``kernel`` (D, 4H),
            ``recurrent_kernel`` (H, 4H), ``bias`` (4H,) for an LSTM), then those
            of the layers it holds. Empty for a layer without weights or not built
            yet. ``set_weights`` takes the same list back.
        """
        return [backend.to_numpy(w).copy() for owner in parameter_owners([self]) for w in _own_weights(owner)]

    def set_weights(self, weights) -> None:
        """Load weights given in Keras's ``get_weights()`` order and shapes."""
        if not self.built:
            raise RuntimeError(
                f"{self.name}: set_weights() needs a built layer: give it input_shape= "
                "or call it on an input first"
            )
        names = [(owner.name, k) for owner in parameter_owners([self]) for k in _own_names(owner)]
        targets = [w for owner in parameter_owners([self]) for w in _own_weights(owner)]
        weights = list(weights)
        if len(weights) != len(names):
            raise ValueError(
                f"{self.name}: set_weights() expected {len(names)} arrays "
                f"({', '.join(k if o == self.name else f'{o}/{k}' for o, k in names)}), got {len(weights)}"
            )
        for (_, key), target, w in zip(names, targets, weights):
            w = numpy.asarray(backend.to_numpy(w))
            if w.shape != target.shape:
                raise ValueError(
                    f"{self.name}: weight {key!r} must have shape {target.shape}, got {w.shape}"
                )
            target[...] = backend.xp.asarray(w, dtype=target.dtype)

    def count_params(self) -> int:
        """Number of weights (trainable and not) of this layer and the layers it holds, as Keras's.

        Examples
        --------
        >>> layer = Dense(4)
        >>> layer.build((None, 3))
        >>> layer.count_params()   # kernel (3, 4) and bias (4,)
        16
        """
        return int(sum(int(numpy.prod(w.shape)) for owner in parameter_owners([self])
                       for w in _own_weights(owner)))

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (for saving)."""
        return {"name": self.name}

    def sublayers(self) -> list:
        """Layers and cells this layer holds (assigned as attributes), in order."""
        return list(self._sublayers)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


class LayerCall:
    """A layer called on ``Value``s, as an operation of ``tinyrnn.graph``.

    Its forward runs the layer's own ``forward`` and takes the layer's cache
    into the record, so every call keeps its own; its backward puts that
    cache back and runs the layer's own ``backward``."""

    def __init__(self, layer, inputs, kwargs=None, training=False, mask_input=False):
        self.layer, self.structure, self.kwargs, self.training = layer, inputs, dict(kwargs or {}), training
        self.mask_input = mask_input   # the last input of the node is the mask (layer(x, mask=m))

    def forward(self, *arrays):
        inputs = graph.pack_like(self.structure, list(arrays))
        y = self.layer.forward(inputs, training=self.training, **self.kwargs)
        cache, self.layer._cache = self.layer._cache, None
        outs = tuple(y) if isinstance(y, (list, tuple)) else y
        return outs, (cache, [(o.shape, o.dtype) for o in graph.flatten(y)])

    def backward(self, douts, cache):
        layer_cache, templates = cache
        douts = douts if isinstance(douts, list) else [douts]
        douts = [backend.xp.zeros(s, t) if d is None else d for d, (s, t) in zip(douts, templates)]
        self.layer._cache = layer_cache
        dx = self.layer.backward(douts if len(douts) > 1 else douts[0])
        return tuple(graph.flatten(dx))

    def replay(self, *values):
        """Call the layer again on new values (a functional model's forward pass); their masks,
        or the mask given as ``layer(x, mask=m)``, computed again for these values, come along."""
        kwargs = dict(self.kwargs)
        if self.mask_input:
            *values, kwargs["mask"] = values
        return self.layer(graph.pack_like(self.structure, list(values)), **kwargs)

    def __repr__(self):
        return self.layer.name


def as_mask(mask):
    """A mask as a backend bool array (from a Value, an array or nested lists of 0/1 or bools); a
    list of masks (one per input of a layer with several) element by element, None and any
    other marker kept as they are."""
    if isinstance(mask, (list, tuple)) and any(m is None or isinstance(m, (Value, str, numpy.ndarray))
                                               or backend.is_array(m) for m in mask):
        return [as_mask(m) for m in mask]
    mask = mask.data if isinstance(mask, Value) else mask
    if mask is None or isinstance(mask, str):
        return mask
    mask = mask if backend.is_array(mask) else backend.xp.asarray(numpy.asarray(mask))
    return mask if mask.dtype == bool else mask.astype(bool)


def check_mask(mask, x, who) -> None:
    """A mask given to a layer is (B, T): the first two axes of its input ``x`` (or (B, T, T2, ...),
    its first axes but the last, for nested sequences: (B, T, T2, D) into ``TimeDistributed``)."""
    if isinstance(x, (list, tuple)) or isinstance(mask, (list, tuple)):
        return                                            # several inputs: the layer checks its own
    expected = tuple(x.shape[:2])
    nested = 2 < mask.ndim < x.ndim and tuple(mask.shape) == tuple(x.shape[:mask.ndim])
    if (tuple(mask.shape) != expected or x.ndim < 2) and not nested:
        raise ValueError(
            f"{who}: the mask has shape {tuple(mask.shape)} but the input has shape {tuple(x.shape)}: "
            f"a mask holds one True/False per time step, shape (B, T) = {expected}; e.g. "
            "mask = (x != 0).any(axis=-1) for (B, T, D) inputs padded with zeros"
        )


def _mask_or_none(masks):
    """None for no mask, also for a list of Nones (one per output: a recurrent layer's states)."""
    if isinstance(masks, (list, tuple)) and all(m is None for m in graph.flatten(masks)):
        return None
    return masks


def _data(inputs):
    """The arrays of the input Values (as the layer's forward sees them)."""
    return graph.map_structure(lambda v: v.data if isinstance(v, Value) else v, inputs)


def _carried_mask(inputs):
    """The mask the input Value carries (a list, one per input, for several; None for none)."""
    masks = graph.map_structure(lambda v: getattr(v, "mask", None), inputs)
    return None if all(m is None for m in graph.flatten(masks)) else masks


def _set_masks(outputs, masks) -> None:
    """Each output Value carries its mask (Keras's ``_set_mask_metadata``: one mask per output)."""
    if masks is None:
        return
    flat_outputs = graph.flatten(outputs)
    flat_masks = graph.flatten(masks) if isinstance(masks, (list, tuple)) else [masks]
    for value, mask in zip(flat_outputs, flat_masks):
        if isinstance(value, Value) and value.mask is None:
            value.mask = mask


def _warn_mask_dropped(layer) -> None:
    warnings.warn(
        f"Layer {layer.name!r} ({type(layer).__name__}) received an input with a mask, but it does not "
        "support masking: the mask stops here and the layers (and the loss) after it do not see it",
        stacklevel=3,
    )


def _symbolic_inputs(input_shape):
    """Symbolic ``Value``s of ``input_shape``: one, or a list for a list of shapes."""
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return [Value(shape=tuple(s)) for s in input_shape]
    return Value(shape=tuple(input_shape))


def parameter_owners(layers) -> list:
    """Every layer or cell under ``layers`` (depth first, through ``sublayers()``)
    whose weights count, each weight dict once: a wrapper that shares its inner
    layer's dicts (TimeDistributed, RNN and its cell) appears once, as itself."""
    owners, seen, visited = [], set(), set()
    stack = list(layers)[::-1]  # a stack, not a recursive closure: no reference cycle left per call
    while stack:
        obj = stack.pop()
        if id(obj) in visited:
            continue
        visited.add(id(obj))
        if id(obj.params) not in seen:
            seen.add(id(obj.params))
            owners.append(obj)
        stack.extend(list(getattr(obj, "sublayers", list)())[::-1])
    return owners


def _has_weights(obj) -> bool:
    return isinstance(getattr(obj, "params", None), dict) and isinstance(getattr(obj, "grads", None), dict)


def _own_names(owner) -> list:
    weights = {**owner.params, **getattr(owner, "state", {})}
    return [k for k in owner.weight_names if k in weights]


def _own_weights(owner) -> list:
    weights = {**owner.params, **getattr(owner, "state", {})}
    return [weights[k] for k in _own_names(owner)]


@functools.cache
def _takes_mask(method) -> bool:
    return "mask" in inspect.signature(method).parameters


@functools.cache
def _takes_training(call) -> bool:
    parameters = inspect.signature(call).parameters
    return "training" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _initial_value(initializer, shape):
    if callable(initializer):
        return backend.asarray(initializer(shape), dtype=backend.floatx())
    functions = {"glorot_uniform": initializers.glorot_uniform, "zeros": initializers.zeros,
                 "ones": initializers.ones, "orthogonal": initializers.orthogonal}
    if initializer not in functions:
        close = difflib.get_close_matches(str(initializer), functions, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown initializer {initializer!r}{hint}: expected one of {', '.join(functions)} "
                         "or a function of the shape")
    return functions[initializer](shape)
