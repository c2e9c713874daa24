"""Finite-difference gradient checking: prove a layer's hand-written backward.

``gradcheck(layer_or_model, x)`` compares the analytic gradients (from
``backward``) of the scalar

    L = sum(y * u)          y = forward(x), u a *random* upstream gradient

with central differences in float64,

    D(h) = (L(p + h) - L(p - h)) / (2 h),

refined by two Richardson steps: R(h) = (4 D(h/2) - D(h)) / 3 cancels the
eps^2 error term, and dL/dp ~ (16 R(eps/2) - R(eps)) / 15 the eps^4 term,
so eps can be large enough (2e-3) that rounding stays near 1e-12 while the
truncation error, O(eps^6), stays below it even for trained weights (large
weights and saturated units have large high derivatives: with one step, the
README's trained model showed 1.5e-7 of pure truncation error). This is done
for every entry of the input and of every parameter, and the report gives the
worst relative error per array,

    err = |analytic - numeric| / max(|analytic|, |numeric|, floor),

where the floor (1e-4) keeps entries that are zero or tiny in exact arithmetic
from dividing by rounding noise: the finite differences resolve about 1e-12
absolutely, so entries below the floor are judged on an absolute scale of
1e-4 x tolerance. A correct float64 backward scores about 1e-9 or better; a
wrong line scores about 1 on every entry of ordinary size. A random upstream gradient matters: with u = 1
some gradients cancel to zero identically and a bug hides.

An input of integers (an Embedding's token ids) has no gradient: it gets no
row, and only the parameters are checked.

The layer's own parameters are restored afterwards (the check works on
float64 copies).
"""

from __future__ import annotations

import dataclasses

import numpy

from tinyrnn import backend, seeding
from tinyrnn.layers.base import parameter_owners

DEFAULT_TOLERANCE = 1e-7


@dataclasses.dataclass
class ParamCheck:
    """The worst entry of one array: its index, both gradients, their relative error."""

    name: str
    shape: tuple
    error: float
    index: tuple
    analytic: float
    numeric: float


@dataclasses.dataclass
class GradcheckReport:
    """Per-array results of ``gradcheck``; ``worst`` is the largest error.

    An array passes when its worst relative error is at most ``tolerance``;
    ``passed``, ``assert_ok`` and the printed report use it (or the tolerance
    given to them).
    """

    checks: list
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def worst(self) -> ParamCheck:
        return max(self.checks, key=lambda c: c.error)

    def passed(self, tolerance: float | None = None) -> bool:
        return self.worst.error <= (self.tolerance if tolerance is None else tolerance)

    def assert_ok(self, tolerance: float | None = None) -> None:
        """Raise AssertionError naming the worst entry if any error exceeds ``tolerance``."""
        tolerance = self.tolerance if tolerance is None else tolerance
        if not self.passed(tolerance):
            w = self.worst
            raise AssertionError(
                f"gradient check failed: {w.name}{list(w.index)} analytic {w.analytic:.10g} vs numeric "
                f"{w.numeric:.10g} (relative error {w.error:.2e} > {tolerance:.0e})\n{self.format(tolerance)}"
            )

    def format(self, tolerance: float | None = None) -> str:
        """One row per array (worst relative error, where, PASS or FAIL), then the verdict."""
        tolerance = self.tolerance if tolerance is None else tolerance
        rows = [f"{'array':<40} {'shape':<14} {'worst rel. error':>16}  {'worst entry':<14} result"]
        for c in self.checks:
            result = "PASS" if c.error <= tolerance else "FAIL"
            entry = str(list(c.index))
            rows.append(f"{c.name:<40} {str(c.shape):<14} {c.error:>16.2e}  {entry:<14} {result}")
        failed = [c.name for c in self.checks if c.error > tolerance]
        w, n = self.worst, len(self.checks)
        if failed:
            rows.append(f"FAIL: {len(failed)} of {n} arrays above the tolerance {tolerance:.0e} (worst "
                        f"{w.name}{list(w.index)}: analytic {w.analytic:.10g}, numeric {w.numeric:.10g})")
        else:
            rows.append(f"PASS: all {n} arrays within the tolerance {tolerance:.0e} "
                        f"(worst relative error {w.error:.2e}, {w.name})")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.format()


def gradcheck(target, x, seed: int = 0, eps: float = 2e-3, floor: float = 1e-4,
              training: bool = False, tolerance: float = DEFAULT_TOLERANCE) -> GradcheckReport:
    """Check ``target`` (a Layer or a Sequential model) at input ``x``.

    Parameters
    ----------
    target : Layer or model (Sequential or Model), built or not (it is built on ``x``).
        Every weight of the layers it holds is checked (a custom layer's sublayers,
        a Keras-protocol cell's pieces).
    x : array (B, ...) the input, or a list of arrays for a layer or model with several inputs.
    seed : seeds the upstream gradient and, before every forward pass, tinyrnn's
        generator, so dropout masks are the same in every evaluation.
    training : run forward in training mode (dropout, batch statistics).
    tolerance : the largest worst relative error that passes (the report states it).

    Returns
    -------
    GradcheckReport
        One row for the input and one per parameter, and the verdict at ``tolerance``.
    """
    xp = backend.xp
    several = isinstance(x, (list, tuple))
    xs = [_input_copy(a) for a in (x if several else [x])]
    x = xs if several else xs[0]
    with backend.float_precision("float64"), _float64_copies(target, x, seed):
        def loss():
            seeding.set_random_seed(seed)
            ys = _as_list(target.forward(x, training=training))
            return float(sum(float((y * u).sum()) for y, u in zip(ys, upstream)))

        seeding.set_random_seed(seed)
        outputs = _as_list(target.forward(x, training=training))
        rng = numpy.random.default_rng(seed)
        upstream = [xp.asarray(rng.normal(size=y.shape)) for y in outputs]
        _zero_grads(target)
        seeding.set_random_seed(seed)
        target.forward(x, training=training)
        dx = target.backward(upstream if len(upstream) > 1 else upstream[0])
        dxs = list(dx) if several else [dx]
        names = [f"input[{k}]" for k in range(len(xs))] if several else ["input"]
        checks = [_check_array(name, a, d, loss, eps, floor) for name, a, d in zip(names, xs, dxs)
                  if a.dtype.kind == "f"]              # integer inputs (token ids) have no gradient
        for name, params, grads in _named_params(target):
            for key in params:
                checks.append(_check_array(f"{name}/{key}", params[key], grads[key], loss, eps, floor))
    return GradcheckReport(checks, tolerance)


def _input_copy(a):
    """A float64 copy of an input; integer inputs (token ids) stay integers, and are not checked."""
    a = backend.to_numpy(a)
    return backend.xp.asarray(a, dtype=a.dtype if a.dtype.kind in "iu" else numpy.float64).copy()


def _check_array(name, array, analytic, loss, eps, floor) -> ParamCheck:
    """Richardson-refined central differences for every entry of ``array`` (perturbed in place):
    D(h) = L' + c2 h^2 + c4 h^4 + ..., so R(h) = (4 D(h/2) - D(h)) / 3 = L' + O(h^4), and
    (16 R(h/2) - R(h)) / 15 = L' + O(h^6)."""
    analytic = backend.to_numpy(analytic)
    numeric = numpy.zeros(array.shape)

    def central_difference(index, h):
        original = float(array[index])
        array[index] = original + h
        plus = loss()
        array[index] = original - h
        minus = loss()
        array[index] = original
        return (plus - minus) / (2 * h)

    for index in numpy.ndindex(*array.shape):
        d1, d2, d4 = (central_difference(index, eps / k) for k in (1, 2, 4))   # D(eps), D(eps/2), D(eps/4)
        r1, r2 = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3                            # R(eps), R(eps/2)
        numeric[index] = (16 * r2 - r1) / 15
    scale = numpy.maximum(numpy.maximum(abs(analytic), abs(numeric)), floor)
    errors = abs(analytic - numeric) / scale
    worst = numpy.unravel_index(int(numpy.argmax(errors)), errors.shape) if errors.size else ()
    return ParamCheck(name, tuple(array.shape), float(errors.max()) if errors.size else 0.0,
                      tuple(int(i) for i in worst), float(analytic[worst]) if errors.size else 0.0,
                      float(numeric[worst]) if errors.size else 0.0)


def _as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _layers(target):
    return list(target.layers) if hasattr(target, "layers") else [target]


def _owners(target):
    """Every layer or cell whose weights ``target`` uses, each once."""
    return parameter_owners(_layers(target))


def _named_params(target):
    for owner in _owners(target):
        if owner.params:
            yield owner.name, owner.params, owner.grads


def _zero_grads(target):
    for _, _, grads in _named_params(target):
        for g in grads.values():
            g[...] = 0


class _float64_copies:
    """Swap every parameter, gradient and state array for a float64 copy; restore on exit."""

    def __init__(self, target, x, seed):
        self.target, self.x, self.seed = target, x, seed

    def __enter__(self):
        seeding_state = seeding.get_state()
        if not getattr(self.target, "built", False) or _needs_build(self.target):
            seeding.set_random_seed(self.seed)
            self.target(self.x)          # built by its first call, as in Keras (call()-only layers too)
        self.saved = [(owner, dict(owner.params), dict(owner.grads), dict(getattr(owner, "state", {})))
                      for owner in _owners(self.target)]
        for layer, params, grads, state in self.saved:
            stores = ((layer.params, params), (layer.grads, grads), (getattr(layer, "state", {}), state))
            for d, src in stores:
                for k, v in src.items():
                    d[k] = backend.xp.asarray(v, dtype=numpy.float64).copy()
        self.seeding_state = seeding_state
        return self

    def __exit__(self, *exc):
        for layer, params, grads, state in self.saved:
            layer.params.update(params)
            layer.grads.update(grads)
            getattr(layer, "state", {}).update(state)
            layer._cache = None
        seeding.set_state(self.seeding_state)
        return False


def _needs_build(target):
    return any(not layer.built for layer in _layers(target))
