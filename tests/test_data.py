"""Tests for tinyrnn.data: the course's series, targets and splits."""

from pathlib import Path

import numpy
import pytest

from tinyrnn import data

REFERENCE = Path(__file__).parent / "data" / "series_seed42.npz"


@pytest.fixture(scope="module")
def reference():
    with numpy.load(REFERENCE) as ref:
        return {key: ref[key] for key in ref.files}


@pytest.fixture(scope="module")
def series60():
    return data.generate_time_series(10000, 60, seed=42)


def assert_same_bits(mine, ref, what):
    assert mine.shape == ref.shape, f"{what}: shape mine {mine.shape} vs reference {ref.shape}"
    assert mine.dtype == ref.dtype, f"{what}: dtype mine {mine.dtype} vs reference {ref.dtype}"
    diff = numpy.flatnonzero(mine.view(numpy.uint32) != ref.view(numpy.uint32))
    assert diff.size == 0, (
        f"{what}: {diff.size} values differ; first at flat index {diff[0]}: "
        f"mine {mine.ravel()[diff[0]]!r} vs reference {ref.ravel()[diff[0]]!r}"
    )


# --- generate_time_series -----------------------------------------------------------------


def test_seed42_matches_book_51_steps(reference):
    series = data.generate_time_series(10000, 51, seed=42)
    assert series.shape == (10000, 51, 1) and series.dtype == numpy.float32
    assert_same_bits(series[:5], reference["steps51_first5"], "steps51 first 5")
    assert_same_bits(series[-5:], reference["steps51_last5"], "steps51 last 5")


def test_seed42_matches_book_60_steps(reference, series60):
    assert series60.shape == (10000, 60, 1) and series60.dtype == numpy.float32
    assert_same_bits(series60[:5], reference["steps60_first5"], "steps60 first 5")
    assert_same_bits(series60[-5:], reference["steps60_last5"], "steps60 last 5")


def test_seed_none_draws_from_global_generator():
    saved = numpy.random.get_state()
    try:
        numpy.random.seed(42)
        from_global = data.generate_time_series(50, 20)
        numpy.random.seed(42)
        after_second = data.generate_time_series(50, 20, seed=None)
    finally:
        numpy.random.set_state(saved)
    from_seed = data.generate_time_series(50, 20, seed=42)
    assert_same_bits(from_global, from_seed, "seed=None after np.random.seed(42)")
    assert_same_bits(after_second, from_seed, "second global draw")


def test_seed_leaves_global_generator_untouched():
    saved = numpy.random.get_state()
    try:
        numpy.random.seed(7)
        expected = numpy.random.rand(3)
        numpy.random.seed(7)
        data.generate_time_series(20, 10, seed=42)
        assert numpy.array_equal(numpy.random.rand(3), expected)
    finally:
        numpy.random.set_state(saved)


def test_seed_is_reproducible_and_seeds_differ():
    a = data.generate_time_series(4, 11, seed=3)
    b = data.generate_time_series(4, 11, seed=3)
    c = data.generate_time_series(4, 11, seed=4)
    assert numpy.array_equal(a, b)
    assert not numpy.array_equal(a, c)


def test_shapes_dtype_and_range():
    series = data.generate_time_series(3, 7, seed=0)
    assert series.shape == (3, 7, 1)
    assert series.dtype == numpy.float32
    assert numpy.all(numpy.abs(series) <= 0.5 + 0.2 + 0.05)  # the waves' amplitudes plus the noise


def test_numpy_integer_arguments_accepted():
    series = data.generate_time_series(numpy.int64(2), numpy.int32(5), seed=numpy.int64(1))
    assert series.shape == (2, 5, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0, "n_steps": 5}, r"batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.5, "n_steps": 5}, r"batch_size must be an integer >= 1, got 2\.5 \(float\)"),
        ({"batch_size": True, "n_steps": 5}, r"batch_size must be an integer"),
        ({"batch_size": 2, "n_steps": -1}, r"n_steps must be an integer >= 1, got -1"),
        ({"batch_size": 2, "n_steps": "60"}, r"n_steps must be an integer >= 1, got '60' \(str\)"),
        ({"batch_size": 2, "n_steps": 5, "seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"batch_size": 2, "n_steps": 5, "seed": 2**32}, r"seed must be an integer in \[0, 2\*\*32 - 1\]"),
        ({"batch_size": 2, "n_steps": 5, "seed": 1.0}, r"seed must be an integer"),
    ],
)
def test_generate_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.generate_time_series(**kwargs)


# --- split --------------------------------------------------------------------------------


def test_split_default_sizes(series60):
    train, valid, test = data.split(series60)
    assert (len(train), len(valid), len(test)) == (7000, 2000, 1000)
    assert numpy.array_equal(numpy.concatenate([train, valid, test]), series60)


def test_split_custom_sizes():
    array = numpy.arange(10)
    train, valid, test = data.split(array, n_train=6, n_valid=3)
    assert train.tolist() == [0, 1, 2, 3, 4, 5]
    assert valid.tolist() == [6, 7, 8]
    assert test.tolist() == [9]


def test_split_not_enough_rows():
    with pytest.raises(
        ValueError, match=r"more than n_train \+ n_valid = 7000 \+ 2000 = 9000 rows.*got 9000"
    ):
        data.split(numpy.zeros((9000, 2)))
    with pytest.raises(ValueError, match=r"n_train must be an integer >= 1, got 0"):
        data.split(numpy.zeros(10), n_train=0)


# --- targets ------------------------------------------------------------------------------


def test_one_step_ahead_shapes_and_values():
    series = data.generate_time_series(2, 6, seed=1)
    X, y = data.one_step_ahead(series)
    assert X.shape == (2, 5, 1) and y.shape == (2, 1)
    assert numpy.array_equal(X, series[:, :5])
    assert numpy.array_equal(y[:, 0], series[:, 5, 0])


def test_n_steps_ahead_shapes_and_values():
    series = data.generate_time_series(2, 9, seed=1)
    X, Y = data.n_steps_ahead(series, n_ahead=3)
    assert X.shape == (2, 6, 1) and Y.shape == (2, 3)
    assert numpy.array_equal(X, series[:, :6])
    assert numpy.array_equal(Y, series[:, 6:, 0])


@pytest.mark.parametrize("n_ahead, n_inputs", [(3, None), (3, 4), (1, None), (6, 2)])
def test_seq2seq_targets_match_explicit_loop(n_ahead, n_inputs):
    series = numpy.random.RandomState(5).rand(2, 9, 1).astype(numpy.float32)
    Y = data.seq2seq_targets(series, n_ahead=n_ahead, n_inputs=n_inputs)
    T = 9 - n_ahead if n_inputs is None else n_inputs
    expected = numpy.empty((2, T, n_ahead), dtype=numpy.float32)
    for b in range(2):
        for t in range(T):
            for k in range(1, n_ahead + 1):
                expected[b, t, k - 1] = series[b, t + k, 0]
    assert Y.shape == expected.shape and Y.dtype == numpy.float32
    assert numpy.array_equal(Y, expected)


def test_seq2seq_last_step_equals_n_steps_ahead(series60):
    small = series60[:300]
    _, Y10 = data.n_steps_ahead(small, 10)
    Y = data.seq2seq_targets(small, 10)
    assert Y.shape == (300, 50, 10)
    assert numpy.array_equal(Y[:, -1], Y10)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: data.one_step_ahead(s[:, :1]), r"1 time steps, but one_step_ahead needs at least 2"),
        (lambda s: data.one_step_ahead(s[..., 0]), r"3-D array of shape \(B, T, 1\).*got shape \(2, 8\)"),
        (
            lambda s: data.n_steps_ahead(s, 8),
            r"8 time steps, but n_steps_ahead with n_ahead=8 needs at least 9",
        ),
        (lambda s: data.n_steps_ahead(s, 0), r"n_ahead must be an integer >= 1, got 0"),
        (
            lambda s: data.seq2seq_targets(s, 3, n_inputs=6),
            r"exceeds the series length 8; pass n_inputs <= 5",
        ),
        (lambda s: data.seq2seq_targets(s, 3, n_inputs=0), r"n_inputs must be an integer >= 1, got 0"),
        (lambda s: data.seq2seq_targets([[1.0]], 3), r"3-D array.*got shape None"),
    ],
)
def test_target_bad_arguments(call, match):
    series = data.generate_time_series(2, 8, seed=0)
    with pytest.raises(ValueError, match=match):
        call(series)


# --- load_course_data ---------------------------------------------------------------------


def test_load_course_data_full_size_ten_steps(series60):
    parts = data.load_course_data("ten_steps")
    shapes = {name: (X.shape, Y.shape) for name, (X, Y) in parts.items()}
    assert shapes == {
        "train": ((7000, 50, 1), (7000, 10)),
        "valid": ((2000, 50, 1), (2000, 10)),
        "test": ((1000, 50, 1), (1000, 10)),
    }
    X_valid, Y_valid = parts["valid"]
    assert X_valid.dtype == numpy.float32 and Y_valid.dtype == numpy.float32
    assert numpy.array_equal(X_valid, series60[7000:9000, :50])
    assert numpy.array_equal(Y_valid, series60[7000:9000, 50:, 0])


@pytest.mark.parametrize(
    "task, y_shape",
    [("one_step", (1,)), ("ten_steps", (10,)), ("seq2seq", (50, 10))],
)
def test_load_course_data_small(task, y_shape):
    parts = data.load_course_data(task, n_series=100)
    sizes = {"train": 70, "valid": 20, "test": 10}
    assert list(parts) == ["train", "valid", "test"]
    for name, (X, Y) in parts.items():
        assert X.shape == (sizes[name], 50, 1)
        assert Y.shape == (sizes[name], *y_shape)
        assert X.dtype == numpy.float32 and Y.dtype == numpy.float32


def test_load_course_data_uses_seed():
    n_steps = data.TASKS["one_step"]
    series = data.generate_time_series(10, n_steps, seed=3)
    parts = data.load_course_data("one_step", seed=3, n_series=10)
    X_train, y_train = parts["train"]
    assert numpy.array_equal(X_train, series[:7, :-1])
    assert numpy.array_equal(y_train, series[:7, -1])
    assert [len(parts[name][0]) for name in ("train", "valid", "test")] == [7, 2, 1]


def test_load_course_data_seq2seq_last_step_is_ten_steps_target():
    seq = data.load_course_data("seq2seq", n_series=20)
    ten = data.load_course_data("ten_steps", n_series=20)
    for name in ("train", "valid", "test"):
        assert numpy.array_equal(seq[name][0], ten[name][0])
        assert numpy.array_equal(seq[name][1][:, -1], ten[name][1])


def test_course_split_sizes():
    assert data.course_split_sizes(10000) == (7000, 2000, 1000)
    assert data.course_split_sizes(100) == (70, 20, 10)
    assert data.course_split_sizes(15) == (10, 3, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"task": "two_steps"},
            r"unknown task 'two_steps'; expected one of 'one_step', 'ten_steps', 'seq2seq'",
        ),
        ({"task": "one_step", "n_series": 5}, r"n_series must be an integer >= 10, got 5"),
        ({"task": "seq2seq", "seed": -3}, r"seed must be an integer >= 0, got -3"),
    ],
)
def test_load_course_data_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_course_data(**kwargs)
