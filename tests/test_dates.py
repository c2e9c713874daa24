"""The date-translation task: generated pairs, splits, and the character vocabulary."""

import datetime
import doctest
import re

import numpy
import pytest

from tinyrnn import dates
from tinyrnn.dates import CharVocabulary

APRIL_22_2019 = datetime.date(2019, 4, 22)   # a Monday


@pytest.mark.parametrize("pattern, expected", [
    ("{Month} {day}, {year}", "April 22, 2019"),
    ("{day:02d}/{month:02d}/{year}", "22/04/2019"),
    ("{Weekday}, {day} {Mon} {year}", "Monday, 22 Apr 2019"),
    ("{Weekday}, {Month} {nth}, {year}", "Monday, April 22nd, 2019"),
    ("the {nth} of {Month}, {year}", "the 22nd of April, 2019"),
    ("{day} {MON} {year}", "22 APR 2019"),
    ("{month_lower} {day} {year}", "april 22 2019"),
    ("{year}/{month:02d}/{day:02d}", "2019/04/22"),
])
def test_formats_write_the_date_as_people_do(pattern, expected):
    assert pattern in dates.FORMATS
    assert dates.format_date(APRIL_22_2019, pattern) == expected


@pytest.mark.parametrize("day, written", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"),
                                          (12, "12th"), (13, "13th"), (21, "21st"), (22, "22nd"),
                                          (23, "23rd"), (31, "31st")])
def test_ordinals(day, written):
    assert dates.format_date(datetime.date(2000, 1, day), "{nth}") == written


def test_generated_pairs_are_seeded_and_right():
    x, y = dates.generate_dates(500, seed=3)
    assert (x, y) == dates.generate_dates(500, seed=3)
    assert x != dates.generate_dates(500, seed=4)[0]
    for human, iso in zip(x, y):
        date = datetime.date.fromisoformat(iso)
        assert dates.FIRST_DAY <= date <= dates.LAST_DAY
        assert human in {dates.format_date(date, p) for p in dates.FORMATS}
    used = {p for human, iso in zip(x, y) for p in dates.FORMATS
            if dates.format_date(datetime.date.fromisoformat(iso), p) == human}
    assert used == set(dates.FORMATS)                      # 500 draws use all 15 formats
    assert len({iso[:4] for iso in y}) > 150               # years spread over 1900..2099


def test_numeric_day_month_formats_put_the_day_first():
    """No input is ambiguous: 04/05 is always the 4th of May."""
    may_4 = datetime.date(2010, 5, 4)
    written = [dates.format_date(may_4, p) for p in dates.FORMATS]
    numeric = [s for s in written if re.fullmatch(r"[\d/.]+", s)]
    assert numeric and all(re.search(r"(^|\D)0?4\D0?5\D|^2010/05/04$", s) for s in numeric), numeric


def test_splits_are_disjoint_and_sized():
    data = dates.load_dates(n_train=300, n_valid=50, n_test=60, seed=1)
    assert (len(data.x_train), len(data.x_valid), len(data.x_test)) == (300, 50, 60)
    assert [len(data.y_train), len(data.y_valid), len(data.y_test)] == [300, 50, 60]
    train, valid, test = set(data.x_train), set(data.x_valid), set(data.x_test)
    assert len(train) == 300 and not train & valid and not train & test and not valid & test
    assert data == dates.load_dates(n_train=300, n_valid=50, n_test=60, seed=1)
    assert data.x_test != dates.load_dates(n_train=300, n_valid=50, n_test=60, seed=2).x_test


def test_the_input_vocabulary_covers_every_format():
    vocabulary = dates.input_vocabulary()
    x, _ = dates.generate_dates(2000, seed=5)
    vocabulary.check(x)
    assert set(vocabulary.characters) == {c for text in x for c in text}     # all used, none missing
    assert len(vocabulary) == 3 + len(vocabulary.characters)


def test_encode_pads_with_zero_and_adds_start_and_end():
    v = dates.target_vocabulary()
    ids = v.encode(["2019-04-22", "1999-1"], start=True, end=True)
    assert ids.shape == (2, 12) and ids.dtype == numpy.int64
    assert ids[0, 0] == v.START and ids[0, 11] == v.END and ids[1, 7] == v.END
    assert (ids[1, 8:] == v.PAD).all()
    assert v.tokens[ids[0, 1]] == "2" and v.tokens[ids[0, 5]] == "-"
    assert v.encode(["12"], length=4).tolist() == [[v.ids["1"], v.ids["2"], 0, 0]]
    assert v.decode(ids) == ["2019-04-22", "1999-1"]


def test_decode_stops_at_the_first_end():
    v = CharVocabulary("ab")
    assert v.decode([[1, 3, 4, 2, 3, 3], [3, 0, 4, 0, 0, 0]]) == ["ab", "ab"]
    assert v.decode([3, 3, 4]) == ["aab"]


@pytest.mark.parametrize("texts", [["2019-04-22", "Monday"], ["22/04/2019"]])
def test_unknown_characters_are_named_with_the_vocabulary(texts):
    with pytest.raises(ValueError, match=r"unknown character.*'0123456789-'") as error:
        dates.target_vocabulary().encode(texts)
    unknown = sorted({c for t in texts for c in t} - set("0123456789-"))
    assert all(repr(c) in str(error.value) for c in unknown)


def test_input_vocabulary_rejects_characters_no_format_writes():
    with pytest.raises(ValueError, match=r"unknown character\(s\) '!', 'é'"):
        dates.input_vocabulary().encode(["Mé 22, 2019!"])


def test_bad_arguments_are_clear_errors():
    v = dates.target_vocabulary()
    with pytest.raises(ValueError, match="more than length=3"):
        v.encode(["2019"], length=3)
    with pytest.raises(TypeError, match=r"encode\(\[text\]\)"):
        v.encode("2019")
    with pytest.raises(ValueError, match=r"id 99 is outside"):
        v.decode([[3, 99]])
    with pytest.raises(ValueError, match="single characters"):
        CharVocabulary(["ab"])
    with pytest.raises(ValueError, match="non-negative integer"):
        dates.generate_dates(-1)


def test_the_examples_in_the_docstrings_run():
    assert doctest.testmod(dates).failed == 0
