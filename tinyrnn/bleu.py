"""BLEU: how many of a translation's n-grams a reference has, with a penalty for brevity.

Papineni et al. (2002), the score d2l and the book use for translations. For a
candidate c and its reference r (sequences of tokens: words, or characters for
the date task):

- the modified n-gram precision ``p_n`` counts each n-gram of c at most as many
  times as it appears in r ("the the the" earns one "the" against "the cat"):

      p_n = sum_g min(count_c(g), count_r(g)) / sum_g count_c(g)      (g: the n-grams of c)

- the brevity penalty ``BP`` punishes a candidate shorter than its reference
  (precision alone would reward writing one sure word):

      BP = 1 if len(c) > len(r), else exp(1 - len(r) / len(c))

- BLEU = BP * exp(sum_{n=1..N} w_n log p_n), with uniform weights w_n = 1 / N, N = 4.

``corpus_bleu`` adds the clipped counts and the totals of every sentence
*before* dividing (and the lengths before the penalty), as the paper does;
``sentence_bleu`` is the same on a corpus of one. A precision of 0 makes BLEU 0
(no smoothing), as NLTK's ``corpus_bleu`` without a smoothing function.

Examples
--------
>>> round(sentence_bleu("2019-04-22", "2019-04-22"), 6)
1.0
>>> sentence_bleu("2019-04-23", "1900-01-01")
0.0
"""

from __future__ import annotations

import math
from collections import Counter


def ngrams(tokens, n: int) -> Counter:
    """The n-grams of ``tokens`` (a string or a list), with their counts: Counter of n-tuples."""
    tokens = tuple(tokens)
    return Counter(tokens[i:i + n] for i in range(len(tokens) - n + 1))


def modified_precision(candidate, reference, n: int) -> tuple:
    """(clipped matches, total) for the n-grams of ``candidate``: each n-gram counts at most as
    often as ``reference`` has it. p_n = matches / total."""
    counts, reference_counts = ngrams(candidate, n), ngrams(reference, n)
    matches = sum(min(count, reference_counts[g]) for g, count in counts.items())
    return matches, sum(counts.values())


def brevity_penalty(candidate_length: int, reference_length: int) -> float:
    """1 if the candidate is longer than the reference, else exp(1 - r / c) (0 for an empty candidate)."""
    if candidate_length > reference_length:
        return 1.0
    if candidate_length == 0:
        return 0.0
    return math.exp(1 - reference_length / candidate_length)


def corpus_bleu(candidates, references, max_n: int = 4) -> float:
    """BLEU of a list of candidates against their references (one reference each), in [0, 1].

    Parameters
    ----------
    candidates, references : lists of the same length, of token sequences (strings are read
        character by character; give lists of words for word-level BLEU).
    max_n : the longest n-gram (4, the usual BLEU-4); the weights are 1 / max_n each.
    """
    candidates, references = list(candidates), list(references)
    if isinstance(candidates, str) or len(candidates) != len(references):
        raise ValueError(f"corpus_bleu takes two lists of the same length (one reference per candidate), "
                         f"got {len(candidates)} candidates and {len(references)} references")
    if not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"max_n must be a positive integer, got {max_n!r}")
    matches, totals = [0] * max_n, [0] * max_n
    for c, r in zip(candidates, references):
        for n in range(1, max_n + 1):
            m, t = modified_precision(c, r, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if any(m == 0 for m in matches):         # a zero precision (or no n-grams at all): log 0
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    c_len, r_len = sum(len(c) for c in candidates), sum(len(r) for r in references)
    return brevity_penalty(c_len, r_len) * math.exp(log_precision)


def sentence_bleu(candidate, reference, max_n: int = 4) -> float:
    """BLEU of one candidate against one reference: ``corpus_bleu([candidate], [reference])``."""
    return corpus_bleu([candidate], [reference], max_n=max_n)
