"""``Bidirectional``: one recurrent layer reads the sequence forwards, a copy reads it backwards.

Forward (x (B, T, D); F the forward layer, R the backward one, each with H units):

    y_f = F(x)                          (B, T, H) with return_sequences, else (B, H)
    y_r = flip(R(flip(x)))              flip reverses the time axis; the outer flip only
                                        with return_sequences, so y_r[:, t] lines up with x[:, t]
    y   = merge(y_f, y_r)

with the merge one of

    concat: y = [y_f, y_r]      (..., 2H)     sum: y = y_f + y_r      ave: y = (y_f + y_r) / 2
    mul:    y = y_f * y_r                      None: the list [y_f, y_r]

As in Keras, R is a copy of F with ``go_backwards=True``: the inner flip (of the
sequence and of its mask) is R's own, the outer one is the wrapper's.

Backward (dy = dL/dy): the merge's own backward gives dy_f and dy_r,

    concat: dy_f = dy[..., :H], dy_r = dy[..., H:]     sum: dy_f = dy_r = dy
    ave:    dy_f = dy_r = dy / 2                         mul: dy_f = dy * y_r, dy_r = dy * y_f
                                                              (the product rule)

then each direction's own hand-written backward, and the input gradient is the
sum of both paths (R's backward flips its gradient back to the input's time order):

    dx = dF(dy_f) + flip(dR(flip(dy_r)))

With a mask (B, T) (``True`` = a real step), F reads it as it is and R reads
it flipped with the sequence, so for a right-padded batch R starts at each
sequence's last real step. With ``return_sequences`` the outputs of masked steps
are zero in both directions: as Keras, the wrapper sets both layers'
``zero_output_for_mask`` to ``return_sequences``.

Weights are Keras's: the forward layer's (``kernel``, ``recurrent_kernel``,
``bias``), then the backward layer's, so ``get_weights`` of a Keras
``Bidirectional`` loads unchanged.
"""

from __future__ import annotations

from tinyrnn import backend
from tinyrnn.layers.base import Layer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _removeprefix(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


def _copy_of(layer, name: str, **changes):
    """A fresh layer of ``layer``'s configuration (fresh weights, no state), named ``name``,
    with ``changes`` to its configuration."""
    from tinyrnn.layers import deserialize, serialize  # the registry knows every layer class

    spec = serialize(layer)
    spec["config"].update(name=name, **changes)
    copy = deserialize(spec)
    if copy.input_shape is None and layer.input_shape is not None:
        copy.input_shape = layer.input_shape
    return copy


def flip_time(a):
    """a[:, ::-1]: the sequence axis reversed, (B, T, ...) -> (B, T, ...); None stays None."""
    return None if a is None else a[:, ::-1]


class Bidirectional(Layer):
    """Run a recurrent layer over the sequence in both directions and merge the two outputs.

    Shapes: x (B, T, D) -> y (B, T, 2H) for concat with ``return_sequences``,
    (B, 2H) without it; (B, [T,] H) for sum, mul and ave. With ``return_state``
    the output is followed by the forward layer's final states, then the backward
    layer's (Keras's order): ``[y, h_f, c_f, h_r, c_r]`` for an LSTM.

    Parameters
    ----------
    layer : RNN
        The forward layer's configuration (``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN(cell)``).
        As in Keras, the wrapper builds two fresh layers from it, ``forward_<name>`` and
        ``backward_<name>``: weights already in ``layer`` are not reused.
    merge_mode : {"concat", "sum", "mul", "ave", None}
        How the two outputs combine; ``None`` returns them as a list ``[y_f, y_r]``.
    backward_layer : RNN, optional
        The layer that reads the reversed sequence (default: a copy of ``layer``).
        It must agree with ``layer`` on ``return_sequences``, ``return_state`` and ``stateful``.
    weights : list of arrays, optional
        Initial weights in ``get_weights`` order (forward's, then backward's),
        loaded when the layer is built.

    Examples
    --------
    >>> model = Sequential([Bidirectional(LSTM(10, return_sequences=True), input_shape=[None, 3]),
    ...                     Bidirectional(LSTM(10)), Dense(5, activation="softmax")])
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, weights=None, **kwargs):
        for what, candidate in (("layer", layer), ("backward_layer", backward_layer)):
            recurrent = isinstance(candidate, Layer) and hasattr(candidate, "return_sequences")
            if candidate is not None and not recurrent:
                raise TypeError(f"Bidirectional: {what} must be a recurrent layer (SimpleRNN, LSTM, GRU, "
                                f"RNN(cell)), got {type(candidate).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: unknown merge_mode {merge_mode!r}; expected one of "
                             f"{', '.join(map(repr, MERGE_MODES))} (None returns both outputs as a list)")
        if kwargs.get("input_shape") is None and layer.input_shape is not None:
            kwargs["input_shape"] = layer.input_shape[1:]
        super().__init__(**kwargs)
        self.forward_layer = _copy_of(layer, f"forward_{_removeprefix(layer.name, 'forward_')}")
        self.backward_layer = backward_layer if backward_layer is not None else \
            _copy_of(layer, f"backward_{_removeprefix(layer.name, 'backward_')}",
                     go_backwards=not layer.go_backwards)
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError(f"Bidirectional: the forward and the backward layer both have go_backwards="
                             f"{self.forward_layer.go_backwards}; the backward layer must read the sequence "
                             "the other way (give it go_backwards=True, or leave out backward_layer)")
        for attribute in ("return_sequences", "return_state", "stateful"):
            forward = getattr(self.forward_layer, attribute, False)
            backward = getattr(self.backward_layer, attribute, False)
            if forward != backward:
                raise ValueError(f"Bidirectional: the forward layer has {attribute}={forward} but the "
                                 f"backward layer {attribute}={backward}; give both the same value")
        for direction in (self.forward_layer, self.backward_layer):   # Keras: masked steps output 0
            direction.zero_output_for_mask = direction.return_sequences  # with return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = self.forward_layer.stateful
        self.initial_weights = None if weights is None else list(weights)
        self.trainable = self._trainable                 # to both directions
        self.batch_size = self._batch_size               # from batch_size= or batch_input_shape=

    def __call__(self, inputs, *args, initial_state=None, training=None, **kwargs):
        """``layer(x)``, or Keras's ``layer(x, initial_state=[h_f, c_f, h_r, c_r])`` (the forward
        layer's states, then the backward layer's): the layer then runs on ``[x, *initial_state]``."""
        if initial_state is not None:
            inputs = [inputs, *initial_state]
        return super().__call__(inputs, *args, training=training, **kwargs)

    # --- building ---------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value) -> None:
        """Freezing the wrapper freezes both directions (the weights live in them)."""
        self._trainable = bool(value)
        for direction in (self.__dict__.get("forward_layer"), self.__dict__.get("backward_layer")):
            if direction is not None:
                direction.trainable = self._trainable

    def build(self, input_shape):
        if input_shape and isinstance(input_shape[0], (list, tuple)):    # [x, *initial_states]
            input_shape = input_shape[0]
        for direction in (self.forward_layer, self.backward_layer):
            if not direction.built:
                direction.build(tuple(input_shape))
                direction.built = True
        super().build(input_shape)
        if self.initial_weights is not None:
            weights, self.initial_weights = self.initial_weights, None
            self.set_weights(weights)

    def compute_output_shape(self, input_shape):
        if input_shape and isinstance(input_shape[0], (list, tuple)):    # [x, *initial_states]
            input_shape = input_shape[0]
        shape = self.forward_layer.compute_output_shape(tuple(input_shape))
        y, states = (shape[0], list(shape[1:])) if self.return_state else (shape, [])
        if self.merge_mode == "concat":
            outputs = [(*y[:-1], 2 * y[-1])]
        elif self.merge_mode is None:
            outputs = [y, y]
        else:
            outputs = [y]
        backward_states = list(self.backward_layer.compute_output_shape(tuple(input_shape))[1:]) \
            if self.return_state else []
        shapes = outputs + states + backward_states
        return shapes[0] if len(shapes) == 1 else shapes

    @staticmethod
    def _n_states(direction) -> int:
        return len(direction._state_sizes())

    def compute_mask(self, inputs, mask=None):
        """Keras's: the input mask for each output sequence, None for a last output and the states."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        masks = [output_mask, output_mask] if self.merge_mode is None else [output_mask]
        if self.return_state:
            masks += [None] * (self._n_states(self.forward_layer) + self._n_states(self.backward_layer))
        return masks[0] if len(masks) == 1 else masks

    # --- forward ----------------------------------------------------------
    def forward(self, x, training=False, mask=None):
        """x (B, T, D), or [x, *initial_states] (the forward layer's states, then the backward
        layer's, as Keras's ``initial_state``); mask (B, T) bool or None -> the merged output
        (and the final states with ``return_state``)."""
        x, states_f, states_r = self._split_inputs(x)
        mask = self._check_mask(x, mask)
        y_f, final_f = self._split(self._run(self.forward_layer, x, states_f, training, mask))
        y_r, final_r = self._split(self._run(self.backward_layer, x, states_r, training, mask))  # flips x
        if self.return_sequences:
            y_r = flip_time(y_r)                        # back to the input's time order
        self._remember((y_f, y_r, len(final_f), states_f is not None))
        outputs = self._merge(y_f, y_r)
        if not self.return_state:
            return outputs
        return [*(outputs if self.merge_mode is None else [outputs]), *final_f, *final_r]

    def _split_inputs(self, inputs):
        """x, or [x, *initial_states] -> (x, the forward layer's states, the backward layer's)."""
        if not isinstance(inputs, (list, tuple)):
            return inputs, None, None
        x, *states = inputs
        n_f, n_r = self._n_states(self.forward_layer), self._n_states(self.backward_layer)
        if len(states) != n_f + n_r:
            raise ValueError(f"{self.name}: initial_state must be the forward layer's {n_f} state(s), "
                             f"then the backward layer's {n_r} (Keras's order), {n_f + n_r} arrays (B, H); "
                             f"got {len(states)}")
        return x, states[:n_f], states[n_f:]

    @staticmethod
    def _run(direction, x, states, training, mask):
        return direction.forward(x if states is None else [x, *states], training=training, mask=mask)

    def _split(self, result):
        """A direction's result -> (its output, its final states)."""
        return (result[0], list(result[1:])) if self.return_state else (result, [])

    def _merge(self, y_f, y_r):
        if self.merge_mode == "concat":
            return backend.xp.concatenate([y_f, y_r], axis=-1)
        if self.merge_mode == "sum":
            return y_f + y_r
        if self.merge_mode == "ave":
            return (y_f + y_r) / 2
        if self.merge_mode == "mul":
            return y_f * y_r
        return [y_f, y_r]

    # --- backward ---------------------------------------------------------
    def backward(self, dy):
        """dL/d(outputs) -> dx (B, T, D) (and, for given initial states, [dx, *their gradients]):
        the merge's backward, then both directions' own."""
        y_f, y_r, n_states, states_given = self._recall()
        dy = list(dy) if self.return_state or self.merge_mode is None else [dy]
        n_outputs = 2 if self.merge_mode is None else 1
        d_outputs, d_states = dy[:n_outputs], dy[n_outputs:]
        dy_f, dy_r = self._merge_backward(d_outputs, y_f, y_r)
        if self.return_sequences:
            dy_r = flip_time(dy_r)                          # through the outer flip
        dx_f = self.forward_layer.backward(self._with_states(dy_f, d_states[:n_states]))
        dx_r = self.backward_layer.backward(self._with_states(dy_r, d_states[n_states:]))
        if not states_given:
            return dx_f + dx_r                              # both paths (R flips its own back)
        (dx_f, *d_start_f), (dx_r, *d_start_r) = dx_f, dx_r
        return [dx_f + dx_r, *d_start_f, *d_start_r]

    def _merge_backward(self, d_outputs, y_f, y_r):
        """dL/dy -> (dL/dy_f, dL/dy_r), the merge's own derivative (None: no gradient arrived)."""
        zeros = backend.xp.zeros_like
        if self.merge_mode is None:
            return tuple(zeros(y) if d is None else d for d, y in zip(d_outputs, (y_f, y_r)))
        dy = d_outputs[0]
        if dy is None:
            return zeros(y_f), zeros(y_r)
        if self.merge_mode == "concat":
            H = y_f.shape[-1]
            return dy[..., :H], dy[..., H:]                  # y = [y_f, y_r]: each its own columns
        if self.merge_mode == "sum":
            return dy, dy                                    # dy/dy_f = dy/dy_r = 1
        if self.merge_mode == "ave":
            return dy / 2, dy / 2                            # dy/dy_f = dy/dy_r = 1/2
        return dy * y_r, dy * y_f                            # mul, the product rule

    def _with_states(self, dy, d_states):
        return [dy, *d_states] if self.return_state else dy

    # --- checks and configuration ----------------------------------------------------
    def _check_mask(self, x, mask):
        if mask is None:
            return None
        mask = backend.xp.asarray(mask)
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"{self.name}: the mask must have shape (B, T) = {tuple(x.shape[:2])} "
                             f"like the input's first two axes, got {tuple(mask.shape)}")
        return mask.astype(bool)

    @property
    def batch_size(self):
        """A stateful layer's fixed batch size (both directions share it), or None."""
        return self._batch_size if self.__dict__.get("forward_layer") is None else \
            self.forward_layer.batch_size

    @batch_size.setter
    def batch_size(self, value) -> None:
        """``batch_size=`` / ``batch_input_shape=`` given to the wrapper fix both directions'."""
        self._batch_size = value
        for direction in (self.__dict__.get("forward_layer"), self.__dict__.get("backward_layer")):
            if direction is not None and value is not None:
                direction.batch_size = value

    @property
    def states(self):
        """A stateful layer's carried states, as Keras's: the forward layer's, then the backward
        layer's (None before the first batch)."""
        if self.forward_layer.states is None or self.backward_layer.states is None:
            return None
        return [*self.forward_layer.states, *self.backward_layer.states]

    @states.setter
    def states(self, value) -> None:
        n = self._n_states(self.forward_layer)
        self.forward_layer.states = None if value is None else list(value[:n])
        self.backward_layer.states = None if value is None else list(value[n:])

    def reset_states(self) -> None:
        """Zero both directions' carried states (a stateful layer's), as Keras's ``reset_states``."""
        for direction in (self.forward_layer, self.backward_layer):
            direction.reset_states()

    reset_state = reset_states                           # Keras 3's spelling

    def sublayers(self) -> list:
        return [self.forward_layer, self.backward_layer]

    def get_config(self):
        from tinyrnn.layers import serialize  # local import: serialize knows every layer

        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": serialize(self.forward_layer), "backward_layer": serialize(self.backward_layer)}
