"""Tests for tinyrnn.padding_experiment: its data, its padding, and the quick run end to end."""

from __future__ import annotations

import numpy
import pytest
from helpers import assert_close

from tinyrnn import padding_experiment as experiment

SMALL = experiment.Settings(min_length=2, max_length=6, last=2, units=3, n_train=8, n_valid=5, epochs=1,
                            padded_lengths=(6, 9))


def test_targets_are_the_sum_of_each_sequences_last_values():
    values, lengths, y = experiment.sequences(5, SMALL, seed=3)
    assert values.shape == (5, 6) and y.shape == (5, 1)
    assert ((lengths >= 2) & (lengths <= 6)).all()
    for i, n in enumerate(lengths):
        assert y[i, 0] == pytest.approx(values[i, n - 2] + values[i, n - 1], rel=1e-6)
    assert (values != 0).all()                                   # no real value looks like padding


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_pad_puts_the_zeros_after_or_before_the_data(padding):
    values, lengths, _ = experiment.sequences(4, SMALL, seed=1)
    x = experiment.pad(values, lengths, 9, padding)
    assert x.shape == (4, 9, 1) and x.dtype == numpy.float32
    for i, n in enumerate(lengths):
        data = x[i, :n, 0] if padding == "post" else x[i, 9 - n:, 0]
        zeros = x[i, n:, 0] if padding == "post" else x[i, :9 - n, 0]
        assert_close(data, values[i, :n].astype("float32"))
        assert (zeros == 0).all()


def test_a_masked_models_answer_does_not_depend_on_the_padding():
    """The point of the experiment: masked, extra padding changes nothing; unmasked, it does."""
    values, lengths, _ = experiment.sequences(6, SMALL, seed=2)
    for masked, changes in ((True, False), (False, True)):
        model = experiment.build_model(masked, units=3)
        short = model.predict(experiment.pad(values, lengths, 6, "post"), verbose=0)
        long = model.predict(experiment.pad(values, lengths, 20, "post"), verbose=0)
        assert (numpy.abs(short - long).max() > 1e-4) == changes, masked


def test_quick_run_returns_every_variant_and_draws_its_figure(tmp_path):
    result = experiment.run(quick=True, seed=0, log=lambda *a: None)
    assert set(result["results"]) == set(experiment.VARIANTS)
    settings = experiment.QUICK
    for r in result["results"].values():
        assert len(r["val_loss"]) == settings.epochs and all(numpy.isfinite(r["val_loss"]))
        assert set(r["by_total_length"]) == {str(n) for n in settings.padded_lengths}
        assert sum(count for *_, count in r["by_padding"]) == settings.n_valid
    masked = result["results"]["masked, right-padded"]["by_total_length"]
    assert len(set(masked.values())) == 1                        # padding longer changes nothing
    table = experiment.summary_table(result)
    assert table.count("\n") == 1 + len(experiment.VARIANTS)
    experiment.plot(result, tmp_path / "padding.png")
    assert (tmp_path / "padding.png").stat().st_size > 10_000
