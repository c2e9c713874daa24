"""The text chapter: its quick mode end to end (the real run is slow-marked), stateful validation,
and ``python -m tinyrnn chapter --only text``."""

from __future__ import annotations

import dataclasses
import json

import numpy
import pytest

from tinyrnn import __main__ as cli
from tinyrnn import chapter, losses, text, text_chapter
from tinyrnn.text_chapter import BOOK, QUICK, RECIPE


@pytest.fixture(scope="module")
def quick_result():
    return text_chapter.run_text(quick=True, log=lambda message: None)


def test_the_model_is_the_books():
    model = text_chapter.char_model(stateful=True, batch_size=4)
    model.build((4, None))
    embedding, gru, dense = model.layers
    assert (embedding.input_dim, embedding.output_dim) == (39, 16)
    assert gru.units == 128 and gru.return_sequences and gru.stateful and gru.batch_size == 4
    assert dense.units == 39 and dense.activation.name == "softmax"
    assert model.count_params() == 39 * 16 + (16 * 384 + 128 * 384 + 2 * 384) + (128 * 39 + 39)


def test_stateful_validation_in_one_stream_is_the_whole_text_at_once():
    """Windows read by a stateful copy, one stream, states carried: the same loss as the whole text in
    one sequence through the stateless model (row b of batch k + 1 continues row b of batch k)."""
    model = text_chapter.char_model()
    ids = text.load_shakespeare().valid[:401]
    model.build((None, None))
    loss, accuracy = text_chapter.evaluate_streams(model, ids, streams=1, length=50)   # 8 windows of 50
    probabilities = model.predict(ids[None, :400])                                   # (1, 400, 39) at once
    targets = ids[None, 1:401]
    expected = float(losses.get("sparse_categorical_crossentropy")(targets.astype("float32"), probabilities))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert accuracy == pytest.approx(float(numpy.mean(probabilities.argmax(-1) == targets)))


def test_quick_run_trains_evaluates_and_samples(quick_result):
    r = quick_result
    assert r.quick and r.verdict == "-" and r.recipe == QUICK
    assert len(r.history["val_loss"]) == QUICK.epochs and r.history["loss"][-1] < r.history["loss"][0]
    assert r.val_loss == r.history["val_loss"][-1] < numpy.log(39)                  # better than uniform
    figures = r.figures
    assert figures["bits_per_char"] == pytest.approx(r.val_loss / numpy.log(2))
    assert figures["perplexity"] == pytest.approx(numpy.exp(r.val_loss))
    assert set(r.samples) == {0.01, 1.0, 2.0}
    for sample in r.samples.values():
        assert sample.startswith(text_chapter.PROMPT.lower())
        assert len(sample) == len(text_chapter.PROMPT) + QUICK.sample_length
    json.dumps(r.to_dict())                                                         # results.json can hold it


def test_report_section_has_the_figures_the_issue_asks_for(quick_result):
    report = "\n".join(text_chapter.report_lines(quick_result, "curves.png"))
    for needed in ("val loss (nats)", "bits/char", "perplexity", "Temperature 0.01", "Temperature 1",
                   "Temperature 2", "1.4786", "0.5420", "![Character model: learning curves](curves.png)",
                   "QUICK MODE"):
        assert needed in report, needed
    text_chapter.plot_curves(quick_result)                                           # draws without error


def test_verdict_applies_both_bounds(quick_result):
    book = BOOK["stateful"]
    good = dataclasses.replace(quick_result, quick=False, val_loss=1.05 * book["val_loss"] - 1e-9,
                               val_accuracy=0.97 * book["val_acc"] + 1e-9)
    assert good.verdict == "PASS"
    assert dataclasses.replace(good, val_loss=1.56).verdict == "FAIL"
    assert dataclasses.replace(good, val_accuracy=0.52).verdict == "FAIL"


def test_only_text_names():
    assert chapter.split_text(None) == (None, True)
    assert chapter.split_text(["text"]) == ([], True)
    assert chapter.split_text(["gru,text", "lstm"]) == (["gru", "lstm"], True)
    assert chapter.split_text("gru") == (["gru"], False)


def test_cli_only_text_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    assert cli.main(["chapter", "--only", "text", "--quick", "--out", str(out), "--threads", "0"]) == 0
    report = (out / "report.md").read_text()
    assert "## Text: the character model on tiny Shakespeare" in report and "## Results" not in report
    assert (out / "text_learning_curves.png").stat().st_size > 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["extras"]["text"]["verdict"] == "-" and payload["results"] == []
    assert "bits/char" in capsys.readouterr().out


def test_cli_refuses_seeds_with_text():
    with pytest.raises(SystemExit):
        cli.main(["chapter", "--only", "text", "--seeds", "3"])


@pytest.mark.slow
def test_the_recipe_meets_the_books_figures_in_20_minutes():
    """The real run (about 15-20 minutes on 2 cores): val loss <= 1.05 x 1.4786, accuracy >= 0.97 x 0.5420."""
    result = text_chapter.run_text(recipe=RECIPE)
    assert result.verdict == "PASS", text_chapter.summary(result)
    assert result.seconds <= 20 * 60


def test_time_limit_stops_between_epochs_and_the_report_says_so():
    recipe = dataclasses.replace(QUICK, time_limit_s=0.0)
    result = text_chapter.run_text(recipe=recipe, quick=True, log=lambda message: None)
    assert len(result.history["loss"]) == 1 < recipe.epochs
    line = text_chapter.verdict_line(dataclasses.replace(result, quick=False))
    assert "stopped after 1 of 2 epochs" in line
