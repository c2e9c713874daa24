"""Optimizers: SGD (with momentum, Nesterov), Adam, AdamW, Nadam, RMSprop and Adagrad, with gradient clipping.

An optimizer turns gradients into parameter updates::

    optimizer.apply_gradients([(key, param, grad), ...])

``key`` names a parameter for good (e.g. ``"lstm/kernel"``); per-parameter
state (momentum, Adam's moments) lives in dicts keyed by it. Each ``param`` is
updated in place (``param -= ...``), so the arrays a layer holds stay the
arrays it trains; ``grad`` arrays are only read.

Gradient clipping is the optimizer's job (never the loss's or a layer's), so
a gradient check always sees the true gradient. As in Keras 3, at most one
of these may be set, and it acts on copies of the gradients before the update:

- ``clipvalue=v``: each entry is clipped to [-v, v];
- ``clipnorm=c``: each parameter's gradient g becomes g * c / max(||g||, c),
  so its L2 norm is at most c;
- ``global_clipnorm=c``: all gradients are scaled together by
  c / max(||(g_1, ..., g_n)||, c), so their joint L2 norm is at most c and
  their directions relative to each other are kept.

Hyperparameters are kept as Python floats: a float32 parameter stays float32
(a NumPy float64 scalar would silently compute the update in float64).

``get_state()`` / ``set_state()`` save and restore the step count and every
slot array exactly, so training resumed after a save continues bit for bit.
"""

from __future__ import annotations

import math
import numbers

import numpy

from tinyrnn import backend


def _check_number(name: str, value, *, low=0.0, low_inclusive=False, high=None, allow_none=False):
    """``value`` as a Python float after checking it is a finite number in range."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if value < low or (value == low and not low_inclusive):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {bound} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return value


class Optimizer:
    """Base class: clipping, the step counter, slots, state and config.

    Parameters
    ----------
    learning_rate : float > 0
    clipnorm, clipvalue, global_clipnorm : float > 0 or None
        Gradient clipping (at most one; see the module docstring).
    lr : float, optional
        The old Keras spelling of ``learning_rate`` (give one or the other).
    name : str, optional

    Notes
    -----
    Subclasses list their per-parameter arrays in ``slot_names`` and
    implement ``update_step(key, param, grad)``.
    """

    slot_names: tuple[str, ...] = ()
    default_learning_rate = 0.01

    def __init__(
        self, learning_rate=None, clipnorm=None, clipvalue=None, global_clipnorm=None, lr=None, name=None
    ):
        if lr is not None and learning_rate is not None:
            raise ValueError(
                "give learning_rate or its old Keras spelling lr, not both "
                f"(got learning_rate={learning_rate!r}, lr={lr!r})"
            )
        if learning_rate is None:
            learning_rate = self.default_learning_rate if lr is None else lr
        self.learning_rate = learning_rate  # validated by the property
        self.clipnorm = _check_number("clipnorm", clipnorm, allow_none=True)
        self.clipvalue = _check_number("clipvalue", clipvalue, allow_none=True)
        self.global_clipnorm = _check_number("global_clipnorm", global_clipnorm, allow_none=True)
        n_clip = sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm))
        if n_clip > 1:
            raise ValueError(
                "only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras); "
                f"got clipnorm={clipnorm!r}, clipvalue={clipvalue!r}, global_clipnorm={global_clipnorm!r}"
            )
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.slots: dict[str, dict] = {s: {} for s in self.slot_names}

    # --- the learning rate (``lr`` is the old Keras name) ------------------
    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self._learning_rate = _check_number("learning_rate", value)

    lr = learning_rate

    # --- one training step -------------------------------------------------
    def apply_gradients(self, params_and_grads) -> None:
        """Update every parameter in place from its gradient, then count one step.

        ``params_and_grads``: a list of ``(key, param, grad)``; ``grad`` has
        ``param``'s shape and is not modified (clipping works on copies). An
        empty list is a no-op that does not count a step (as in Keras).
        """
        items = list(params_and_grads)
        if not items:
            return
        keys = set()
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) != 3:
                raise ValueError(f"apply_gradients expects (key, param, grad) triples, got {item!r}")
            key, param, grad = item
            if not isinstance(key, str):
                raise TypeError(f"parameter key must be a str, got {key!r}")
            if key in keys:
                raise ValueError(f"parameter key {key!r} appears twice in one apply_gradients call")
            keys.add(key)
            if not backend.is_array(param):
                raise TypeError(
                    f"{key}: param must be an array (it is updated in place), got {type(param).__name__}"
                )
            if tuple(grad.shape) != tuple(param.shape):
                raise ValueError(
                    f"{key}: gradient shape {tuple(grad.shape)} does not match parameter shape "
                    f"{tuple(param.shape)}"
                )
        grads = self.clip_gradients([grad for _, _, grad in items])
        self.begin_step()
        for (key, param, _), grad in zip(items, grads, strict=True):
            self.update_step(key, param, grad)
        self.iterations += 1

    def clip_gradients(self, grads: list) -> list:
        """The gradients after this optimizer's clipping option (new arrays when it acts)."""
        xp = backend.xp
        if self.clipvalue is not None:
            v = self.clipvalue
            return [xp.clip(g, -v, v) for g in grads]
        if self.clipnorm is not None:
            c = self.clipnorm
            # g * c / max(||g||, c): unchanged when ||g|| <= c, norm c otherwise.
            return [g * (c / xp.maximum(xp.sqrt(xp.sum(g * g)), c)) for g in grads]
        if self.global_clipnorm is not None:
            c = self.global_clipnorm
            global_norm = xp.sqrt(sum(xp.sum(g * g) for g in grads))
            scale = c / xp.maximum(global_norm, c)  # NaN if a gradient holds inf/NaN, as in Keras
            return [g * scale for g in grads]
        return grads

    def begin_step(self) -> None:
        """Work done once per step before the parameters are updated (Nadam's schedule); none here."""

    def update_step(self, key: str, param, grad) -> None:
        """Update ``param`` in place from its (clipped) ``grad``."""
        raise NotImplementedError

    def _slot(self, slot: str, key: str, param, initial: float = 0.0):
        """The ``slot`` array of parameter ``key``, ``initial`` everywhere (like ``param``) on first use."""
        table = self.slots[slot]
        if key not in table:
            table[key] = backend.xp.full_like(param, initial)
        elif table[key].shape != param.shape:
            raise ValueError(
                f"{key}: optimizer slot {slot!r} has shape {tuple(table[key].shape)} but the parameter has "
                f"shape {tuple(param.shape)}; was the state loaded for another model?"
            )
        return table[key]

    # --- saving ------------------------------------------------------------
    def get_state(self) -> dict:
        """``{"iterations": ..., "<slot>/<key>": array, ...}`` as NumPy copies."""
        state = {"iterations": numpy.array(self.iterations, dtype=numpy.int64)}
        for slot, table in self.slots.items():
            for key, value in table.items():
                state[f"{slot}/{key}"] = backend.to_numpy(value).copy()
        return state

    def set_state(self, state: dict) -> None:
        """Restore exactly what ``get_state`` returned (replacing the current state)."""
        state = dict(state)
        if "iterations" not in state:
            raise ValueError("optimizer state has no 'iterations' entry")
        slots: dict[str, dict] = {s: {} for s in self.slot_names}
        for name, value in state.items():
            if name == "iterations":
                continue
            slot, sep, key = name.partition("/")
            if not sep or slot not in slots:
                expected = ", ".join(f"'{s}/<key>'" for s in self.slot_names) or "no slot arrays"
                raise ValueError(
                    f"{type(self).__name__} state entry {name!r} is not recognised: expected "
                    f"'iterations' and {expected}"
                )
            host = numpy.asarray(backend.to_numpy(value))
            slots[slot][key] = backend.xp.array(host, dtype=host.dtype, copy=True)
        self.iterations = int(backend.to_numpy(state["iterations"]))
        self.slots = slots

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this optimizer (without its state)."""
        return {
            "name": self.name,
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name" and v is not None)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum; Keras 3's rule.

    With learning rate lr, momentum mu and gradient g:

    - mu == 0:   p <- p - lr * g
    - otherwise: m <- mu * m - lr * g              (velocity, starts at 0)
                 p <- p + m                         (classical momentum)
                 p <- p + mu * m - lr * g           (nesterov=True, with the new m)

    Parameters
    ----------
    learning_rate : float > 0, default 0.01
    momentum : float in [0, 1], default 0
    nesterov : bool, default False
    clipnorm, clipvalue, global_clipnorm, lr, name : see ``Optimizer``.
    """

    default_learning_rate = 0.01

    def __init__(
        self,
        learning_rate=None,
        momentum=0.0,
        nesterov=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        lr=None,
        name=None,
    ):
        self.momentum = _check_number("momentum", momentum, low_inclusive=True, high=1.0)
        if not isinstance(nesterov, (bool, numpy.bool_)):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum != 0 else ()
        super().__init__(
            learning_rate,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            lr=lr,
            name=name,
        )

    def update_step(self, key, param, grad):
        lr, mu = self.learning_rate, self.momentum
        if mu == 0:
            param -= lr * grad
            return
        m = self._slot("momentum", key, param)
        m *= mu
        m -= lr * grad  # m = mu * m - lr * g
        if self.nesterov:
            param += mu * m - lr * grad
        else:
            param += m

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba), in Keras 3's form.

    At step t = iterations + 1, with gradient g::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m <- m + (g - m) * (1 - beta_1)          # = beta_1 m + (1 - beta_1) g
        v <- v + (g*g - v) * (1 - beta_2)        # = beta_2 v + (1 - beta_2) g^2
        p <- p - alpha * m / (sqrt(v) + epsilon)

    This is the paper's "efficient" form: it equals the bias-corrected
    ``p <- p - lr * m_hat / (sqrt(v_hat) + eps_hat)`` with
    m_hat = m / (1 - beta_1**t), v_hat = v / (1 - beta_2**t) and
    eps_hat = epsilon / sqrt(1 - beta_2**t) (so Keras's epsilon is not
    PyTorch's, except at epsilon = 0).

    Parameters
    ----------
    learning_rate : float > 0, default 0.001
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float >= 0, default 1e-7
    clipnorm, clipvalue, global_clipnorm, lr, name : see ``Optimizer``.
    """

    slot_names = ("m", "v")
    default_learning_rate = 0.001

    def __init__(
        self,
        learning_rate=None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        lr=None,
        name=None,
    ):
        self.beta_1 = _check_number("beta_1", beta_1, low_inclusive=True)
        self.beta_2 = _check_number("beta_2", beta_2, low_inclusive=True)
        for name_, beta in (("beta_1", self.beta_1), ("beta_2", self.beta_2)):
            if beta >= 1:
                raise ValueError(f"{name_} must be in [0, 1), got {beta!r}")
        self.epsilon = _check_number("epsilon", epsilon, low_inclusive=True)
        super().__init__(
            learning_rate,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            lr=lr,
            name=name,
        )

    def update_step(self, key, param, grad):
        xp = backend.xp
        t = self.iterations + 1
        # Python floats: a float32 parameter stays float32.
        alpha = self.learning_rate * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        m = self._slot("m", key, param)
        v = self._slot("v", key, param)
        m += (grad - m) * (1.0 - self.beta_1)
        v += (grad * grad - v) * (1.0 - self.beta_2)
        param -= (m * alpha) / (xp.sqrt(v) + self.epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


def _check_fraction(name: str, value) -> float:
    """``value`` as a Python float in [0, 1) (a decay rate such as beta_1 or rho)."""
    value = _check_number(name, value, low_inclusive=True)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), in Keras 3's form.

    At step t, before Adam's update and after clipping, every parameter
    decays towards zero, independently of its gradient::

        p <- p - p * weight_decay * lr
        (then Adam's step, see ``Adam``: m, v and p -= alpha * m / (sqrt(v) + epsilon))

    As in Keras, the decay reaches every parameter given (biases included).
    PyTorch's ``AdamW`` computes the same decay as ``p * (1 - lr * weight_decay)``
    and places epsilon after bias correction, like its ``Adam``.

    Parameters
    ----------
    learning_rate : float > 0, default 0.001
    weight_decay : float >= 0, default 0.004
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float >= 0, default 1e-7
    clipnorm, clipvalue, global_clipnorm, lr, name : see ``Optimizer``.
    """

    def __init__(
        self,
        learning_rate=None,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        lr=None,
        name=None,
    ):
        self.weight_decay = _check_number("weight_decay", weight_decay, low_inclusive=True)
        super().__init__(
            learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            lr=lr,
            name=name,
        )

    def update_step(self, key, param, grad):
        param -= param * self.weight_decay * self.learning_rate  # Keras's order: (p * wd) * lr
        super().update_step(key, param, grad)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight_decay": self.weight_decay}


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat), in Keras 3's form.

    The momentum factor follows a schedule (Keras's "momentum cache", decay
    0.96); at step t = iterations + 1, with gradient g::

        u_t     = beta_1 * (1 - 0.5 * 0.96**t)
        u_next  = beta_1 * (1 - 0.5 * 0.96**(t + 1))
        P_t     = u_1 * u_2 * ... * u_t                 (kept as ``u_product``)
        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g*g - v) * (1 - beta_2)
        m_hat = u_next * m / (1 - P_t * u_next) + (1 - u_t) * g / (1 - P_t)
        v_hat = v / (1 - beta_2**t)
        p <- p - lr * m_hat / (sqrt(v_hat) + epsilon)

    PyTorch's ``NAdam`` is the same rule with ``momentum_decay=1`` (its
    schedule is 0.96**(t * momentum_decay), default momentum_decay 0.004).
    The product P_t is a Python float (Keras keeps it in the parameters'
    dtype); it is part of ``get_state()`` so a resumed run continues exactly.

    Parameters
    ----------
    learning_rate : float > 0, default 0.001
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float >= 0, default 1e-7
    clipnorm, clipvalue, global_clipnorm, lr, name : see ``Optimizer``.
    """

    slot_names = ("m", "v")
    default_learning_rate = 0.001
    momentum_cache_decay = 0.96

    def __init__(
        self,
        learning_rate=None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        lr=None,
        name=None,
    ):
        self.beta_1 = _check_fraction("beta_1", beta_1)
        self.beta_2 = _check_fraction("beta_2", beta_2)
        self.epsilon = _check_number("epsilon", epsilon, low_inclusive=True)
        super().__init__(
            learning_rate,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            lr=lr,
            name=name,
        )
        self.u_product = 1.0

    def _momentum_factor(self, t: int) -> float:
        """u_t = beta_1 * (1 - 0.5 * 0.96**t)."""
        return self.beta_1 * (1.0 - 0.5 * self.momentum_cache_decay**t)

    def begin_step(self):
        self.u_product *= self._momentum_factor(self.iterations + 1)  # P_t, once per step

    def update_step(self, key, param, grad):
        xp = backend.xp
        t = self.iterations + 1
        u_t, u_next = self._momentum_factor(t), self._momentum_factor(t + 1)
        product, product_next = self.u_product, self.u_product * u_next
        m = self._slot("m", key, param)
        v = self._slot("v", key, param)
        # the rule above, operation for operation, in place: two temporaries a and b
        a = xp.subtract(grad, m)                                     # m += (g - m)(1 - beta_1)
        a *= 1.0 - self.beta_1
        m += a
        b = xp.multiply(grad, grad)                                  # v += (g g - v)(1 - beta_2)
        b -= v
        b *= 1.0 - self.beta_2
        v += b
        m_hat = xp.multiply(m, u_next / (1.0 - product_next), out=a)
        m_hat += xp.multiply(grad, (1.0 - u_t) / (1.0 - product), out=b)
        m_hat *= self.learning_rate
        denominator = xp.divide(v, 1.0 - self.beta_2**t, out=b)     # v_hat
        xp.sqrt(denominator, out=denominator)
        denominator += self.epsilon
        m_hat /= denominator
        param -= m_hat

    def get_state(self) -> dict:
        """The base state plus ``"u_product"``, the momentum schedule's running product."""
        return {**super().get_state(), "u_product": numpy.array(self.u_product, dtype=numpy.float64)}

    def set_state(self, state: dict) -> None:
        state = dict(state)
        if "u_product" not in state:
            raise ValueError("Nadam state has no 'u_product' entry (the momentum schedule's product)")
        u_product = float(backend.to_numpy(state.pop("u_product")))
        super().set_state(state)
        self.u_product = u_product

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop (Hinton), in Keras 3's form.

    With gradient g, a running mean of squares v (and of gradients a when
    ``centered``), epsilon inside the square root::

        v <- rho * v + (1 - rho) * g*g
        a <- rho * a + (1 - rho) * g                     (centered only)
        d  = sqrt(v - a*a + epsilon)   if centered else  sqrt(v + epsilon)
        momentum == 0:  p <- p - lr * g / d
        otherwise:      s <- momentum * s + lr * g / d;   p <- p - s

    PyTorch's ``RMSprop`` (``alpha`` = rho) puts epsilon outside the root,
    d = sqrt(v) + epsilon, so the two agree only as epsilon -> 0.

    Parameters
    ----------
    learning_rate : float > 0, default 0.001
    rho : float in [0, 1), default 0.9
    momentum : float in [0, 1], default 0
    epsilon : float >= 0, default 1e-7
    centered : bool, default False
    clipnorm, clipvalue, global_clipnorm, lr, name : see ``Optimizer``.
    """

    default_learning_rate = 0.001

    def __init__(
        self,
        learning_rate=None,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        lr=None,
        name=None,
    ):
        self.rho = _check_fraction("rho", rho)
        self.momentum = _check_number("momentum", momentum, low_inclusive=True, high=1.0)
        self.epsilon = _check_number("epsilon", epsilon, low_inclusive=True)
        if not isinstance(centered, (bool, numpy.bool_)):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = bool(centered)
        self.slot_names = (
            ("velocity",) + (("momentum",) if self.momentum > 0 else ())
            + (("average_gradient",) if self.centered else ())
        )
        super().__init__(
            learning_rate,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            lr=lr,
            name=name,
        )

    def update_step(self, key, param, grad):
        xp = backend.xp
        rho = self.rho
        velocity = self._slot("velocity", key, param)
        velocity *= rho
        velocity += (1.0 - rho) * (grad * grad)
        if self.centered:
            average = self._slot("average_gradient", key, param)
            average *= rho
            average += (1.0 - rho) * grad
            denominator = velocity - average * average + self.epsilon
        else:
            denominator = velocity + self.epsilon
        increment = (self.learning_rate * grad) / xp.sqrt(denominator)
        if self.momentum > 0:
            step = self._slot("momentum", key, param)
            step *= self.momentum
            step += increment
            param -= step
        else:
            param -= increment

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), in Keras 3's form.

    Each parameter's accumulator starts at ``initial_accumulator_value`` and
    sums the squared gradients; with gradient g::

        s <- s + g*g
        p <- p - lr * g / sqrt(s + epsilon)

    PyTorch's ``Adagrad`` puts epsilon outside the root, sqrt(s) + epsilon.

    Parameters
    ----------
    learning_rate : float > 0, default 0.001
    initial_accumulator_value : float >= 0, default 0.1
    epsilon : float >= 0, default 1e-7
    clipnorm, clipvalue, global_clipnorm, lr, name : see ``Optimizer``.
    """

    slot_names = ("accumulator",)
    default_learning_rate = 0.001

    def __init__(
        self,
        learning_rate=None,
        initial_accumulator_value=0.1,
        epsilon=1e-7,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        lr=None,
        name=None,
    ):
        self.initial_accumulator_value = _check_number(
            "initial_accumulator_value", initial_accumulator_value, low_inclusive=True
        )
        self.epsilon = _check_number("epsilon", epsilon, low_inclusive=True)
        super().__init__(
            learning_rate,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            lr=lr,
            name=name,
        )

    def update_step(self, key, param, grad):
        accumulator = self._slot("accumulator", key, param, initial=self.initial_accumulator_value)
        accumulator += grad * grad
        param -= (self.learning_rate * grad) / backend.xp.sqrt(accumulator + self.epsilon)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


OPTIMIZERS = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "nadam": Nadam, "rmsprop": RMSprop, "adagrad": Adagrad,
}
"""Accepted names (case-insensitive) and the class each builds with its defaults."""


def get(identifier) -> Optimizer:
    """An ``Optimizer`` from an instance, a name (a key of ``OPTIMIZERS``) or ``{"class_name", "config"}``."""
    if isinstance(identifier, Optimizer):
        return identifier
    names = ", ".join(repr(k) for k in OPTIMIZERS)
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = OPTIMIZERS.get(str(identifier["class_name"]).lower())
        if cls is None:
            raise ValueError(f"unknown optimizer class {identifier['class_name']!r}: expected one of {names}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = OPTIMIZERS.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"unknown optimizer {identifier!r}: expected an Optimizer instance or one of {names}"
            )
        return cls()
    raise TypeError(
        f"optimizer must be an Optimizer instance or one of {names}; "
        f"got {type(identifier).__name__} {identifier!r}"
    )
