"""Tests for tinyrnn.gradcheck: the checker must catch broken backward passes,
name the wrong array, and leave the checked layer as it found it."""

from __future__ import annotations

import numpy
import pytest
from helpers import DATA, randomize_params

from tinyrnn import backend, gradcheck, seeding
from tinyrnn.layers import LSTM, RNN, Dense, SimpleRNN, SimpleRNNCell

B, T, D, H = 2, 5, 3, 4


def inputs(seed=0):
    return numpy.random.default_rng(seed).normal(size=(B, T, D))


def rnn_of(cell, seed=2, **kwargs):
    with backend.float_precision("float64"):
        layer = RNN(cell, return_sequences=True, **kwargs)
        layer.build((None, None, D))
    randomize_params(layer, seed=seed)
    return layer


class ForgetsTheDerivativeCell(SimpleRNNCell):
    """A student's bug: backprop through tanh without multiplying by tanh'(z)."""

    def step_backward(self, t, dstates, tape):
        dz = tape.dZ[t]
        dz[...] = dstates[0]                                   # missing: * (1 - h_t^2)
        return [self.params["recurrent_kernel"] @ dz]


class DoublesTheRecurrentGradientCell(SimpleRNNCell):
    """A bug confined to one parameter: dU counted twice."""

    def accumulate_grads(self, *args):
        super().accumulate_grads(*args)
        self.grads["recurrent_kernel"] *= 2.0


def test_a_correct_cell_passes():
    report = gradcheck(rnn_of(SimpleRNNCell(H)), inputs())
    report.assert_ok(1e-7)
    assert report.worst.error < 1e-8


def test_catches_a_backward_that_drops_a_factor():
    report = gradcheck(rnn_of(ForgetsTheDerivativeCell(H)), inputs())
    assert report.worst.error > 1e-2
    with pytest.raises(AssertionError, match="gradient check failed"):
        report.assert_ok(1e-7)


def test_names_the_wrong_parameter():
    layer = rnn_of(DoublesTheRecurrentGradientCell(H))
    report = gradcheck(layer, inputs())
    assert report.worst.name == f"{layer.name}/recurrent_kernel"
    assert report.worst.error > 0.1                             # analytic = 2 x numeric: error 1/2
    errors = {c.name.split("/")[-1]: c.error for c in report.checks}
    assert max(errors["input"], errors["kernel"], errors["bias"]) < 1e-7   # the rest is right
    with pytest.raises(AssertionError, match=f"{layer.name}/recurrent_kernel"):
        report.assert_ok()


def test_report_lists_every_array():
    layer = rnn_of(SimpleRNNCell(H))
    report = gradcheck(layer, inputs())
    assert [c.name for c in report.checks] == ["input"] + [f"{layer.name}/{k}" for k in layer.params]
    assert [c.shape for c in report.checks] == [(B, T, D), (D, H), (H, H), (H,)]
    text = str(report)
    for c in report.checks:
        assert c.name in text and str(c.shape) in text


def test_restores_the_float32_parameters_unchanged():
    layer = LSTM(H, return_sequences=True)                     # float32, as for training
    layer.build((None, None, D))
    randomize_params(layer, seed=1)
    before = {k: v.copy() for k, v in layer.params.items()}
    arrays = {k: v for k, v in layer.params.items()}
    seeding.set_random_seed(11)
    rng_state = seeding.get_state()

    gradcheck(layer, inputs()).assert_ok(1e-7)                 # the check itself runs in float64

    for k, v in layer.params.items():
        assert v is arrays[k], f"{k}: the layer's own array was replaced"
        assert v.dtype == numpy.float32 and layer.grads[k].dtype == numpy.float32
        numpy.testing.assert_array_equal(v, before[k])
    assert seeding.get_state() == rng_state                    # the user's random stream is untouched
    assert backend.floatx() == numpy.float32
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(numpy.ones((B, T, H), numpy.float32))    # no cache left behind
    assert layer.forward(backend.asarray(inputs())).dtype == numpy.float32


def test_builds_an_unbuilt_layer():
    layer = SimpleRNN(H)
    gradcheck(layer, inputs()).assert_ok(1e-7)
    assert layer.built and layer.params["kernel"].shape == (D, H)


def test_checks_a_sequential_model():
    models = pytest.importorskip("tinyrnn.models")
    model = models.Sequential([SimpleRNN(H, return_sequences=True, input_shape=[None, D]), Dense(2)])
    with backend.float_precision("float64"):
        model.build()
    for i, layer in enumerate(model.layers):
        randomize_params(layer, seed=2 + i)
    report = gradcheck(model, inputs())
    report.assert_ok(1e-7)
    names = [c.name for c in report.checks]
    assert names == ["input"] + [f"{layer.name}/{k}" for layer in model.layers for k in layer.params]


def test_catches_a_bug_inside_a_model():
    models = pytest.importorskip("tinyrnn.models")
    bad = RNN(DoublesTheRecurrentGradientCell(H), return_sequences=True)
    model = models.Sequential([bad, Dense(2)])
    report = gradcheck(model, inputs())
    assert report.worst.name == f"{bad.name}/recurrent_kernel"


def test_a_correct_backward_passes_whatever_the_seed():
    # This LSTM matches Keras and PyTorch to 1e-15 (test_recurrent.py); only the seed differs.
    with backend.float_precision("float64"):
        layer = LSTM(H, return_sequences=True, return_state=True, dropout=0.3, recurrent_dropout=0.4)
        layer.build((None, None, D))
    randomize_params(layer, seed=6)
    report = gradcheck(layer, inputs(), training=True)
    w = report.worst
    assert abs(w.analytic - w.numeric) < 1e-11                 # they agree to rounding...
    report.assert_ok(1e-7)                                     # ...and the floor keeps rounding out


# --- the printed report: its tolerance and its verdict ------------------------------------------------


def test_report_states_its_tolerance_and_pass():
    report = gradcheck(rnn_of(SimpleRNNCell(H)), inputs())
    lines = str(report).splitlines()
    assert "result" in lines[0]
    assert all(line.endswith("PASS") for line in lines[1:-1]) and len(lines) == len(report.checks) + 2
    assert lines[-1].startswith(f"PASS: all {len(report.checks)} arrays within the tolerance 1e-07")
    assert report.tolerance == 1e-7 and report.passed()


def test_report_states_fail_and_the_rows_that_fail():
    layer = rnn_of(DoublesTheRecurrentGradientCell(H))
    text = str(gradcheck(layer, inputs()))
    rows = {line.split()[0]: line.split()[-1] for line in text.splitlines()[1:-1]}
    assert rows == {"input": "PASS", f"{layer.name}/kernel": "PASS", f"{layer.name}/recurrent_kernel": "FAIL",
                    f"{layer.name}/bias": "PASS"}
    assert text.splitlines()[-1].startswith(f"FAIL: 1 of 4 arrays above the tolerance 1e-07 (worst "
                                            f"{layer.name}/recurrent_kernel")


def test_the_tolerance_given_is_the_one_stated_and_applied():
    report = gradcheck(rnn_of(SimpleRNNCell(H)), inputs(), tolerance=1e-30)    # no check is that exact
    assert not report.passed() and "FAIL" in str(report) and "tolerance 1e-30" in str(report)
    assert report.passed(1e-7) and "tolerance 1e-07" in report.format(1e-7)
    with pytest.raises(AssertionError, match="> 1e-30"):
        report.assert_ok()


def test_large_weights_pass_high_derivatives_are_not_a_failure():
    # Saturated units (large weights, as after training) have large high derivatives: one Richardson
    # step leaves ~2e-7 of eps^4 truncation error here (a false FAIL), two steps ~2e-10.
    layer = rnn_of(SimpleRNNCell(H), seed=1)
    for value in layer.params.values():
        value *= 6.0
    x = numpy.random.default_rng(2).normal(size=(B, T, D))
    gradcheck(layer, x).assert_ok(1e-8)


def test_the_readme_example_passes_on_its_trained_weights():
    # README's python block trains in float32 for 20 epochs, then prints this check: the weights it
    # trains are in tests/data (made by tests/data/make_readme_model_weights.py).
    models, data = pytest.importorskip("tinyrnn.models"), pytest.importorskip("tinyrnn.data")
    model = models.Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
                               SimpleRNN(20), Dense(1)])
    model.build()
    weights = numpy.load(DATA / "readme_model_weights.npz")
    model.set_weights([weights[f"w{i}"] for i in range(len(weights.files))])
    assert all(w.dtype == numpy.float32 for w in model.get_weights())
    x = data.load_course_data("one_step")["valid"][0][:2].astype("float64")
    report = gradcheck(model, x)
    text = str(report)
    assert "tolerance 1e-07" in text and text.splitlines()[-1].startswith("PASS: all 9 arrays")
    assert report.passed()
