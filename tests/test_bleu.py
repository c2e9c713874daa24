"""BLEU against cases computed by hand (the arithmetic is in each test's docstring).

NLTK 3.10.4's ``nltk.translate.bleu_score`` (``sentence_bleu`` / ``corpus_bleu``, no smoothing, in a
scratch venv, not a dependency) gives the same numbers for every case here to 1e-15, e.g. 0.8801117367933934
for "2019-04-23" vs "2019-04-22" and 0.8382234324229999 for the corpus brevity case."""

import doctest
import math

import pytest

from tinyrnn import bleu
from tinyrnn.bleu import brevity_penalty, corpus_bleu, modified_precision, ngrams, sentence_bleu


def test_ngrams_count_repeats():
    assert ngrams("abab", 2) == {("a", "b"): 2, ("b", "a"): 1}
    assert ngrams(["the", "cat"], 3) == {}


def test_modified_precision_clips_counts_papineni():
    """Papineni et al.'s example: 7 x "the" against a reference with 2 "the": p_1 = 2/7."""
    candidate = "the the the the the the the".split()
    reference = "the cat is on the mat".split()
    assert modified_precision(candidate, reference, 1) == (2, 7)
    assert modified_precision(candidate, reference, 2) == (0, 6)


def test_one_wrong_character_at_the_end():
    """"2019-04-23" vs "2019-04-22": only the n-grams holding the last character miss,
    p_1 = 9/10, p_2 = 8/9, p_3 = 7/8, p_4 = 6/7, same length (BP = 1), so
    BLEU = (9/10 * 8/9 * 7/8 * 6/7)^(1/4) = 0.6^(1/4)."""
    for n, expected in zip(range(1, 5), [(9, 10), (8, 9), (7, 8), (6, 7)]):
        assert modified_precision("2019-04-23", "2019-04-22", n) == expected
    assert sentence_bleu("2019-04-23", "2019-04-22") == pytest.approx(0.6 ** 0.25, rel=1e-12)


def test_brevity_penalty():
    """"2019-04" against "2019-04-22": every n-gram matches (p_n = 1), c = 7 < r = 10,
    so BLEU = BP = exp(1 - 10/7)."""
    assert sentence_bleu("2019-04", "2019-04-22") == pytest.approx(math.exp(1 - 10 / 7), rel=1e-12)
    assert brevity_penalty(11, 10) == 1.0
    assert brevity_penalty(10, 10) == 1.0
    assert brevity_penalty(0, 10) == 0.0


def test_longer_candidate_has_no_penalty_but_loses_precision():
    """"2019-04-222" vs "2019-04-22": p_1 = 10/11 (a third "2"), p_2 = 9/10 ("22" once in the
    reference), p_3 = 8/9, p_4 = 7/8; c > r so BP = 1."""
    expected = (10 / 11 * 9 / 10 * 8 / 9 * 7 / 8) ** 0.25
    assert sentence_bleu("2019-04-222", "2019-04-22") == pytest.approx(expected, rel=1e-12)


def test_corpus_bleu_sums_counts_before_dividing():
    """Two sentences, one wrong at the end and one right: p_1 = 19/20, p_2 = 17/18, p_3 = 15/16,
    p_4 = 13/14 (sums of matches over sums of totals), not the mean of the sentence scores."""
    candidates, references = ["2019-04-23", "2019-04-22"], ["2019-04-22", "2019-04-22"]
    expected = (19 / 20 * 17 / 18 * 15 / 16 * 13 / 14) ** 0.25
    assert corpus_bleu(candidates, references) == pytest.approx(expected, rel=1e-12)


def test_corpus_brevity_penalty_uses_total_lengths():
    """A short candidate (7 of 10) and a right one: all p_n = 1, BP = exp(1 - 20/17) over the
    corpus, where the mean of the sentence scores would be (exp(1 - 10/7) + 1) / 2."""
    score = corpus_bleu(["2019-04", "2019-04-22"], ["2019-04-22", "2019-04-22"])
    assert score == pytest.approx(math.exp(1 - 20 / 17), rel=1e-12)
    assert score != pytest.approx((math.exp(1 - 10 / 7) + 1) / 2, abs=1e-3)


def test_perfect_and_hopeless():
    assert corpus_bleu(["2019-04-22", "1900-01-01"], ["2019-04-22", "1900-01-01"]) == 1.0
    assert sentence_bleu("abcd", "efgh") == 0.0
    assert sentence_bleu("abc", "abc") == 0.0          # no 4-grams at all: p_4 = 0/0, BLEU 0
    assert sentence_bleu("abc", "abc", max_n=3) == 1.0


def test_word_level_with_max_n_2():
    """Words: "the cat sat" vs "the cat sat down": p_1 = 3/3, p_2 = 2/2, BP = exp(1 - 4/3)."""
    score = sentence_bleu("the cat sat".split(), "the cat sat down".split(), max_n=2)
    assert score == pytest.approx(math.exp(1 - 4 / 3), rel=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="same length"):
        corpus_bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="max_n"):
        corpus_bleu(["a"], ["a"], max_n=0)


def test_doctests():
    assert doctest.testmod(bleu).failed == 0
