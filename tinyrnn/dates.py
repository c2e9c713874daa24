"""Dates written by people -> ISO 8601: a translation task that needs no download.

An encoder-decoder learns to read "Monday, April 22nd, 2019", "22/04/2019" or
"22 APR 2019" and write "2019-04-22" (the exercise of the book's chapter on
encoder-decoders and attention). Everything is generated here, from a seed:

- ``generate_dates(n, seed)``: n (human date, ISO date) pairs, each date drawn
  uniformly from 1900-01-01 .. 2099-12-31 and written in one of ``FORMATS``;
- ``load_dates(seed)``: train / validation / test splits with no input string
  shared between them;
- ``CharVocabulary``: characters <-> ids, with a padding id 0 (so that
  ``Embedding(mask_zero=True)`` masks it), a start id 1 and an end id 2 for
  the decoder; ``input_vocabulary()`` holds every character a format can
  write, ``target_vocabulary()`` the digits and "-".

Month and weekday names are English and written by this module (never by
``strftime``, whose names follow the machine's locale), so one seed gives the
same data everywhere.

Examples
--------
>>> from tinyrnn import dates
>>> x, y = dates.generate_dates(2, seed=0)
>>> [len(iso) for iso in y]
[10, 10]
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)


def _ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, 22nd, 23rd, ..., 31st."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _fields(date: datetime.date) -> dict:
    """The pieces a format may use, for one date."""
    month, weekday = MONTHS[date.month - 1], WEEKDAYS[date.weekday()]
    return {"year": date.year, "month": date.month, "day": date.day, "Month": month, "Mon": month[:3],
            "Weekday": weekday, "Wkd": weekday[:3], "nth": _ordinal(date.day)}


FORMATS = (
    "{Month} {day}, {year}",                   # April 22, 2019
    "{Mon} {day}, {year}",                     # Apr 22, 2019
    "{Month} {nth}, {year}",                   # April 22nd, 2019
    "{day} {Month} {year}",                    # 22 April 2019
    "{day} {Mon} {year}",                      # 22 Apr 2019
    "{Weekday}, {day} {Mon} {year}",           # Monday, 22 Apr 2019
    "{Weekday}, {Month} {nth}, {year}",        # Monday, April 22nd, 2019
    "{Wkd} {day} {Month} {year}",              # Mon 22 April 2019
    "the {nth} of {Month}, {year}",            # the 22nd of April, 2019
    "{day:02d}/{month:02d}/{year}",            # 22/04/2019 (day first: no month-first numeric format)
    "{day}/{month}/{year}",                    # 22/4/2019
    "{day:02d}.{month:02d}.{year}",            # 22.04.2019
    "{year}/{month:02d}/{day:02d}",            # 2019/04/22
    "{month_lower} {day} {year}",              # april 22 2019
    "{day} {MON} {year}",                      # 22 APR 2019
)
"""The human formats, as ``str.format`` templates over ``_fields`` (plus lower / upper case names).

Every numeric format with the day and the month side by side puts the day first, so that
no input is ambiguous ("04/05/2019" is the 4th of May, always)."""


def format_date(date: datetime.date, pattern: str) -> str:
    """``date`` written with one of ``FORMATS`` (or any template over the same fields)."""
    fields = _fields(date)
    fields.update(month_lower=fields["Month"].lower(), MON=fields["Mon"].upper())
    return pattern.format(**fields)


def generate_dates(n: int, seed: int = 0, formats=FORMATS):
    """``n`` pairs (human date, ISO date), from ``seed``.

    Each date is drawn uniformly between 1900-01-01 and 2099-12-31 and written in a
    format drawn uniformly from ``formats``. The same seed gives the same pairs.

    Returns
    -------
    (inputs, targets) : two lists of n strings, e.g. "Monday, 22 Apr 2019" and "2019-04-22".
    """
    if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not formats:
        raise ValueError("formats must hold at least one format, e.g. dates.FORMATS")
    rng = numpy.random.default_rng(seed)
    span = (LAST_DAY - FIRST_DAY).days + 1
    days = rng.integers(0, span, size=n)
    which = rng.integers(0, len(formats), size=n)
    inputs, targets = [], []
    for offset, k in zip(days, which):
        date = FIRST_DAY + datetime.timedelta(days=int(offset))
        inputs.append(format_date(date, formats[int(k)]))
        targets.append(date.isoformat())
    return inputs, targets


@dataclasses.dataclass
class DateSplits:
    """Train / validation / test pairs of (human date, ISO date), as lists of strings."""

    x_train: list
    y_train: list
    x_valid: list
    y_valid: list
    x_test: list
    y_test: list


def load_dates(n_train: int = 10_000, n_valid: int = 2_000, n_test: int = 2_000,
               seed: int = 42) -> DateSplits:
    """Seeded splits of the date task, with no input string in two splits.

    Pairs are generated until there are ``n_train + n_valid + n_test`` distinct input
    strings (a repeated string is drawn again), then cut in that order, so a model is
    never tested on a string it was trained on.
    """
    total = n_train + n_valid + n_test
    pairs, seen, round_ = [], set(), 0
    while len(pairs) < total:
        xs, ys = generate_dates(total - len(pairs), seed=numpy.random.SeedSequence([seed, round_]))
        for x, y in zip(xs, ys):
            if x not in seen:
                seen.add(x)
                pairs.append((x, y))
        round_ += 1
    x, y = (list(column) for column in zip(*pairs)) if pairs else ([], [])
    cut1, cut2 = n_train, n_train + n_valid
    return DateSplits(x[:cut1], y[:cut1], x[cut1:cut2], y[cut1:cut2], x[cut2:], y[cut2:])


# --- characters <-> ids -------------------------------------------------------------------------
class CharVocabulary:
    """Characters <-> integer ids, with the three special tokens of a sequence-to-sequence model.

    Ids: 0 padding (``PAD``; ``Embedding(mask_zero=True)`` masks it), 1 start (``START``,
    the decoder's first input), 2 end (``END``, what the decoder writes when it is done),
    then one id per character in the order given.

    Examples
    --------
    >>> v = CharVocabulary("0123456789-")
    >>> v.encode(["2019-04-22"], end=True).tolist()
    [[5, 3, 4, 12, 13, 3, 7, 13, 5, 5, 2]]
    >>> v.decode(v.encode(["2019-04-22"], start=True, end=True))
    ['2019-04-22']
    """

    PAD, START, END = 0, 1, 2
    SPECIAL = ("<pad>", "<start>", "<end>")

    def __init__(self, characters):
        characters = list(dict.fromkeys(characters))          # unique, first order kept
        if not characters or any(not isinstance(c, str) or len(c) != 1 for c in characters):
            raise ValueError("CharVocabulary takes single characters, e.g. CharVocabulary('0123456789-')")
        self.characters = "".join(characters)
        self.tokens = [*self.SPECIAL, *characters]
        self.ids = {c: i for i, c in enumerate(self.tokens)}

    def __len__(self) -> int:
        """The number of ids (the special tokens included): ``Embedding(input_dim=len(vocabulary))``."""
        return len(self.tokens)

    def __repr__(self):
        return f"CharVocabulary({self.characters!r})"

    def check(self, texts) -> None:
        """A ValueError naming every character of ``texts`` outside the vocabulary, and the vocabulary."""
        unknown = sorted({c for text in texts for c in text if c not in self.ids or c in self.SPECIAL})
        if unknown:
            where = next(text for text in texts if any(c in unknown for c in text))
            raise ValueError(
                f"unknown character(s) {', '.join(repr(c) for c in unknown)} (first in {where!r}): "
                f"the vocabulary has {self.characters!r}; clean the text, or build the vocabulary "
                "with these characters")

    def encode(self, texts, start: bool = False, end: bool = False, length: int | None = None):
        """Token ids (B, T) int64 for a list of B strings, padded with 0 on the right.

        ``start`` puts the start id first, ``end`` the end id last (a decoder's inputs are
        ``encode(y, start=True)``, its targets ``encode(y, end=True)``, both one longer than y).
        T is the longest text's length (with the tokens added), or ``length`` if given.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; for one string: encode([text])")
        texts = list(texts)
        self.check(texts)
        rows = [[self.START] * start + [self.ids[c] for c in text] + [self.END] * end for text in texts]
        longest = max((len(r) for r in rows), default=0)
        if length is None:
            length = longest
        elif longest > length:
            raise ValueError(f"a text needs {longest} ids (start and end tokens included), more than "
                             f"length={length}: give a larger length, or None for the longest")
        ids = numpy.zeros((len(rows), length), dtype=numpy.int64)
        for b, row in enumerate(rows):
            ids[b, :len(row)] = row
        return ids

    def decode(self, ids) -> list:
        """Strings from token ids (B, T): each row read up to its first end id, padding and start skipped."""
        ids = numpy.asarray(ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = int(ids[(ids < 0) | (ids >= len(self))][0])
            raise ValueError(f"id {bad} is outside this vocabulary's [0, {len(self)}) ({self!r})")
        texts = []
        for row in ids.tolist():
            row = row[:row.index(self.END)] if self.END in row else row
            texts.append("".join(self.tokens[i] for i in row if i >= len(self.SPECIAL)))
        return texts


def input_vocabulary(formats=FORMATS) -> CharVocabulary:
    """Every character ``formats`` can write (sorted), for the encoder's inputs.

    Found by writing, in every format, the first seven days of every month (every month
    and weekday name, every ordinal suffix but "nd" / "rd", which the 2nd / 3rd bring), plus
    the ten digits."""
    sample = [datetime.date(2001, month, day) for month in range(1, 13) for day in range(1, 8)]
    characters = {c for date in sample for p in formats for c in format_date(date, p)}
    return CharVocabulary(sorted(characters | set("0123456789")))


def target_vocabulary() -> CharVocabulary:
    """The characters of an ISO date: the digits and "-", for the decoder."""
    return CharVocabulary("0123456789-")
