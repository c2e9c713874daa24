"""tinyrnn.text: the character tokenizer against Keras's TextVectorization, the shipped corpus and its
split, and the two ways of cutting text into training batches (stateless windows, stateful streams)."""

from __future__ import annotations

import json
import pathlib

import numpy
import pytest

from tinyrnn import seeding, text
from tinyrnn.text import CharTokenizer, StatefulBatches, WindowBatches

DATA = pathlib.Path(__file__).parent / "data"
KERAS = json.loads((DATA / "keras_text_vectorization.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shakespeare():
    return text.load_shakespeare()


# --- tokenizer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["shakespeare", "ties"])
def test_vocabulary_and_ids_equal_keras(case):
    source = text.shakespeare_text() if case == "shakespeare" else KERAS["ties_text"]
    tokenizer = CharTokenizer()
    tokenizer.adapt(source)
    assert tokenizer.get_vocabulary() == KERAS[case]["vocabulary"]
    assert tokenizer(KERAS["probe"]).tolist() == KERAS[case]["probe_ids"]   # unknowns -> 1, as Keras


def test_book_ids_are_keras_ids_minus_two(shakespeare):
    keras_style = CharTokenizer()
    keras_style.adapt(text.shakespeare_text())
    assert keras_style.vocabulary_size() == 41
    book = shakespeare.tokenizer
    assert book.vocabulary_size() == 39                               # the book's n_tokens
    assert book.get_vocabulary() == keras_style.get_vocabulary()[2:]
    sample = "First Citizen:\nBefore we proceed"
    numpy.testing.assert_array_equal(book(sample), keras_style(sample) - 2)
    assert shakespeare.train.min() == 0 and shakespeare.train.max() == 38


def test_round_trip_is_the_lowercased_text():
    tokenizer = CharTokenizer()
    tokenizer.adapt("Hello, World!\nhow are you?")
    for s in ("Hello", "WORLD!\n", "how ARE you, world?", ""):
        ids = tokenizer(s)
        assert ids.dtype == numpy.int64 and ids.shape == (len(s),)
        assert tokenizer.decode(ids) == s.lower()
    book = CharTokenizer(special_tokens=False)
    book.adapt("Hello, World!")
    assert book.decode(book("LoL, He")) == "lol, he"


def test_unknown_characters():
    tokenizer = CharTokenizer()
    tokenizer.adapt("abcab")
    ids = tokenizer("aXz€b")          # x, z and € were never seen; a and b tie: b (larger) first
    assert ids.tolist() == [3, 1, 1, 1, 2]
    assert tokenizer.decode(ids) == "a[UNK][UNK][UNK]b"
    book = CharTokenizer(special_tokens=False)
    book.adapt("abcab")
    with pytest.raises(ValueError, match=r"character 'z' at index 2 is not in the vocabulary"):
        book("abz")


def test_standardize_none_keeps_case():
    tokenizer = CharTokenizer(standardize=None)
    tokenizer.adapt("aAa")
    assert tokenizer.get_vocabulary() == ["", "[UNK]", "a", "A"]
    assert tokenizer.decode(tokenizer("Aa")) == "Aa"


def test_tokenizer_errors_teach():
    tokenizer = CharTokenizer()
    with pytest.raises(RuntimeError, match=r"adapt\(text\) before encode"):
        tokenizer("abc")
    with pytest.raises(ValueError, match="empty"):
        tokenizer.adapt("")
    with pytest.raises(TypeError, match="one string"):
        tokenizer.adapt(["abc"])
    with pytest.raises(ValueError, match="standardize"):
        CharTokenizer(standardize="lower_and_strip_punctuation")
    tokenizer.adapt("abc")
    with pytest.raises(ValueError, match=r"id 7 is outside \[0, 5\)"):
        tokenizer.decode([2, 7])
    with pytest.raises(ValueError, match="special_tokens=False"):
        tokenizer.decode([-2])
    with pytest.raises(TypeError, match="integer ids"):
        tokenizer.decode(numpy.array([2.0]))


def test_config_round_trip():
    tokenizer = CharTokenizer(special_tokens=False)
    tokenizer.adapt("the quick brown fox")
    copy = CharTokenizer.from_config(json.loads(json.dumps(tokenizer.get_config())))
    assert copy.get_vocabulary() == tokenizer.get_vocabulary()
    numpy.testing.assert_array_equal(copy("brown"), tokenizer("brown"))


# --- the corpus -----------------------------------------------------------------------------------
def test_corpus_ships_with_the_package_and_is_split_as_the_book(shakespeare):
    corpus = text.shakespeare_text()
    assert len(corpus) == text.SHAKESPEARE_CHARS == 1_115_394
    assert corpus.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    sizes = len(shakespeare.train), len(shakespeare.valid), len(shakespeare.test)
    assert sizes == (1_000_000, 60_000, 55_394)
    tokenizer = shakespeare.tokenizer
    assert tokenizer.decode(shakespeare.valid[:20]) == corpus[1_000_000:1_000_020].lower()
    assert tokenizer.decode(shakespeare.test[-20:]) == corpus[-20:].lower()


# --- stateless windows ---------------------------------------------------------------------------
def test_windows_are_every_shifted_window_once():
    ids = numpy.arange(23)
    batches = WindowBatches(ids, length=5, batch_size=4, seed=0)
    assert len(batches) == 5                                       # 23 - 5 = 18 windows, ceil(18 / 4)
    xs, ys = zip(*batches)
    assert [len(x) for x in xs] == [4, 4, 4, 4, 2]
    x, y = numpy.concatenate(xs), numpy.concatenate(ys)
    assert x.shape == y.shape == (18, 5)
    numpy.testing.assert_array_equal(y[:, :-1], x[:, 1:])           # target = input shifted by one
    numpy.testing.assert_array_equal(y[:, -1], x[:, -1] + 1)
    assert sorted(x[:, 0].tolist()) == list(range(18))             # each window start exactly once
    assert x[:, 0].tolist() != list(range(18))                     # shuffled


def test_windows_reshuffle_every_epoch_from_tinyrnn_generator():
    ids = numpy.arange(40)
    seeding.set_random_seed(3)
    batches = WindowBatches(ids, length=3, batch_size=8)
    first = numpy.concatenate([x for x, _ in batches])[:, 0]
    second = numpy.concatenate([x for x, _ in batches])[:, 0]
    assert first.tolist() != second.tolist()
    seeding.set_random_seed(3)
    again = numpy.concatenate([x for x, _ in WindowBatches(ids, length=3, batch_size=8)])[:, 0]
    numpy.testing.assert_array_equal(first, again)
    ordered = numpy.concatenate([x for x, _ in WindowBatches(ids, 3, 8, shuffle=False)])[:, 0]
    assert ordered.tolist() == list(range(37))


def test_book_window_count(shakespeare):
    batches = WindowBatches(shakespeare.train, length=100, batch_size=32)
    assert len(batches) == 31_247                                   # the book's steps per epoch
    x, y = next(iter(batches))
    assert x.shape == y.shape == (32, 100) and x.dtype == numpy.int64


def test_windows_refuse_too_little_text():
    with pytest.raises(ValueError, match="length \\+ 1 = 11 ids"):
        WindowBatches(numpy.arange(10), length=10)
    with pytest.raises(ValueError, match="1-D array of integer ids"):
        WindowBatches(numpy.zeros((2, 5)), length=2)


# --- stateful streams -----------------------------------------------------------------------------
def test_stateful_rows_continue_their_stream():
    ids = numpy.arange(103)
    batches = StatefulBatches(ids, length=4, batch_size=3)   # streams [0, 34), [34, 68), [68, 102)
    assert len(batches) == 8                                         # (34 - 1) // 4
    pairs = list(batches)
    assert len(pairs) == 8 and all(x.shape == y.shape == (3, 4) for x, y in pairs)
    numpy.testing.assert_array_equal(pairs[0][0][:, 0], [0, 34, 68])
    for (x0, y0), (x1, _) in zip(pairs, pairs[1:]):
        numpy.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)   # row b of batch k + 1 continues row b
        numpy.testing.assert_array_equal(y0[:, -1], x1[:, 0])       # the last target is the next first input
    for x, y in pairs:
        numpy.testing.assert_array_equal(y, x + 1)                  # target = input shifted by one
    stream = numpy.concatenate([x for x, _ in pairs], axis=1)       # each row reads its stream in order
    numpy.testing.assert_array_equal(stream[1], numpy.arange(34, 34 + 32))
    assert list(batches)[3][0].tolist() == pairs[3][0].tolist()       # the same order every epoch


def test_book_stateful_counts(shakespeare):
    assert len(StatefulBatches(shakespeare.train, 100, 32)) == 312
    assert len(StatefulBatches(shakespeare.train, 100, 1)) == 9_999


def test_stateful_refuses_too_many_streams():
    with pytest.raises(ValueError, match="fewer streams"):
        StatefulBatches(numpy.arange(20), length=5, batch_size=4)


# --- language-model figures ------------------------------------------------------------------------
def test_language_model_figures():
    figures = text.language_model_figures(1.4786)                  # the book's stateful figure
    assert figures["nats"] == 1.4786
    assert figures["bits_per_char"] == pytest.approx(2.1332, abs=1e-4)
    assert figures["perplexity"] == pytest.approx(4.3868, abs=1e-4)
    uniform = text.language_model_figures(numpy.log(39))          # guessing among 39 characters
    assert uniform["perplexity"] == pytest.approx(39)
    assert uniform["bits_per_char"] == pytest.approx(numpy.log2(39))


# --- generation -------------------------------------------------------------------------------------
def small_char_model(seed=0):
    """A small character model (Embedding(7, 3), GRU(4), Dense(7, softmax)) with random biases too."""
    from tinyrnn import Sequential
    from tinyrnn.layers import GRU, Dense, Embedding

    seeding.set_random_seed(seed)
    model = Sequential([Embedding(7, 3, input_shape=[None]), GRU(4, return_sequences=True),
                        Dense(7, activation="softmax")])
    model.build((None, None))
    rng = numpy.random.default_rng(seed)
    model.set_weights([w + rng.normal(scale=0.5, size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def test_stateful_copy_one_step_at_a_time_equals_the_whole_prefix():
    model = small_char_model()
    ids = numpy.random.default_rng(1).integers(0, 7, size=(1, 9))
    whole = model.predict(ids)                                      # (1, 9, 7): every prefix at once
    stepper = text.stateful_copy(model, batch_size=1)
    stepper.reset_states()
    first = stepper.predict(ids[:, :4], batch_size=1)               # the prompt, then one id per call
    numpy.testing.assert_allclose(first, whole[:, :4], rtol=1e-5, atol=1e-6)
    for t in range(4, 9):
        step = stepper.predict(ids[:, t:t + 1], batch_size=1)
        numpy.testing.assert_allclose(step[0, 0], whole[0, t], rtol=1e-5, atol=1e-6)
    stepper.reset_states()                                          # afresh: the first step again
    numpy.testing.assert_allclose(stepper.predict(ids[:, :1], batch_size=1)[0, 0], whole[0, 0], rtol=1e-5)
    assert not model.layers[1].stateful                             # the original is left as it was


def test_sample_next_temperature():
    p = numpy.array([0.1, 0.6, 0.3, 0.0])
    rng = numpy.random.default_rng(0)
    assert {text.sample_next(p, 1e-3, rng) for _ in range(50)} == {1}          # T -> 0: argmax
    draws = numpy.array([text.sample_next(p, 1.0, rng) for _ in range(4000)])
    numpy.testing.assert_allclose(numpy.bincount(draws, minlength=4) / 4000, p, atol=0.03)   # T = 1: p itself
    hot = numpy.array([text.sample_next(p, 100.0, rng) for _ in range(3000)])
    counts = numpy.bincount(hot, minlength=4) / 3000
    assert counts[3] == 0 and numpy.all(numpy.abs(counts[:3] - 1 / 3) < 0.04)  # T large: uniform, 0 stays 0
    with pytest.raises(ValueError, match="temperature must be > 0"):
        text.sample_next(p, 0.0)


def test_generate_extends_the_prompt_and_greedy_follows_argmax():
    tokenizer = CharTokenizer(special_tokens=False)
    tokenizer.adapt("abcdefg")
    model = small_char_model()
    rng = numpy.random.default_rng(0)
    out = text.generate(model, "Abc", 12, temperature=1.0, tokenizer=tokenizer, rng=rng)
    assert out.startswith("abc") and len(out) == 15 and set(out) <= set("abcdefg")
    greedy = text.generate(model, "abc", 6, temperature=1e-6, tokenizer=tokenizer)
    expected = list(tokenizer("abc"))              # argmax after the whole prefix, n^2 the slow way
    for _ in range(6):
        expected.append(int(model.predict(numpy.array([expected]))[0, -1].argmax()))
    assert greedy == tokenizer.decode(numpy.array(expected))
    seeding.set_random_seed(5)
    a = text.generate(model, "abc", 20, tokenizer=tokenizer)
    seeding.set_random_seed(5)
    assert text.generate(model, "abc", 20, tokenizer=tokenizer) == a   # tinyrnn's generator seeds it
    with pytest.raises(ValueError, match="tokenizer"):
        text.generate(model, "abc", 5)
    with pytest.raises(ValueError, match="at least one character"):
        text.generate(model, "", 5, tokenizer=tokenizer)
