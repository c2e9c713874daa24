"""fit / evaluate / predict on an iterable of (x, y) batches (tinyrnn.batches), with Keras's epoch rules."""

from __future__ import annotations

import gc
import itertools
import re
import tracemalloc

import numpy
import pytest

import tinyrnn
from tinyrnn import Input, Model, Sequential
from tinyrnn.layers import GRU, Add, Dense, SimpleRNN

B, T, D, H = 2, 5, 3, 4
rng = numpy.random.default_rng(12)
X = rng.normal(size=(4 * B, T, D)).astype("float32")          # 4 batches of B rows
Y = rng.normal(size=(4 * B, 1)).astype("float32")
X_VAL = rng.normal(size=(3 * B, T, D)).astype("float32")
Y_VAL = rng.normal(size=(3 * B, 1)).astype("float32")


def model_and_weights(seed=3, optimizer="adam", metrics=("mae",)):
    tinyrnn.set_random_seed(seed)
    model = Sequential([GRU(H, input_shape=[None, D]), Dense(1)])
    model.compile(loss="mse", optimizer=optimizer, metrics=list(metrics))
    model.build()
    return model


def batches(x, y, size=B, log=None):
    """A one-shot generator of (x, y) batches of ``size`` rows; ``log`` records the batch indices given."""
    for k, start in enumerate(range(0, len(x), size)):
        if log is not None:
            log.append(k)
        yield x[start:start + size], y[start:start + size]


def endless(x, y, size=B, log=None):
    """Keras's usual generator: cycles through the batches for ever."""
    n = -(-len(x) // size)
    for k in itertools.count():
        if log is not None:
            log.append(k)
        start = (k % n) * size
        yield x[start:start + size], y[start:start + size]


def assert_same_weights(a, b):
    for i, (wa, wb) in enumerate(zip(a.get_weights(), b.get_weights(), strict=True)):
        numpy.testing.assert_array_equal(wa, wb, err_msg=f"weight {i}")


# --- the same training, from arrays or from batches -----------------------------------------------
def test_a_generator_trains_exactly_as_the_same_batches_given_as_arrays():
    from_arrays, from_generator = model_and_weights(), model_and_weights()
    h_arrays = from_arrays.fit(X, Y, batch_size=B, epochs=1, shuffle=False, verbose=0,
                               validation_data=(X_VAL, Y_VAL)).history
    h_gen = from_generator.fit(batches(X, Y), epochs=1, verbose=0,
                               validation_data=batches(X_VAL, Y_VAL)).history
    assert_same_weights(from_generator, from_arrays)
    assert h_gen == h_arrays  # loss, mae, grad_norm, val_loss, val_mae: the same numbers


def test_a_list_of_batches_is_iterated_again_each_epoch():
    from_arrays, from_list = model_and_weights(), model_and_weights()
    h_arrays = from_arrays.fit(X, Y, batch_size=B, epochs=3, shuffle=False, verbose=0).history
    listed = list(batches(X, Y))
    h_list = from_list.fit(listed, epochs=3, verbose=0, validation_data=list(batches(X_VAL, Y_VAL))).history
    assert_same_weights(from_list, from_arrays)
    assert h_list["loss"] == h_arrays["loss"] and len(h_list["val_loss"]) == 3


class Pipeline:
    """A re-iterable data pipeline: each ``iter()`` starts a new pass (counted)."""

    def __init__(self, x, y):
        self.x, self.y, self.passes = x, y, 0

    def __iter__(self):
        self.passes += 1
        return batches(self.x, self.y)


def test_an_object_with_iter_starts_a_new_pass_each_epoch():
    from_arrays, from_pipeline = model_and_weights(), model_and_weights()
    from_arrays.fit(X, Y, batch_size=B, epochs=2, shuffle=False, verbose=0)
    pipeline = Pipeline(X, Y)
    history = from_pipeline.fit(pipeline, epochs=2, verbose=0)
    assert pipeline.passes == 2 and history.epoch == [0, 1]
    assert_same_weights(from_pipeline, from_arrays)


def test_functional_model_with_two_inputs_trains_from_batches_of_lists():
    def build():
        tinyrnn.set_random_seed(5)
        a, b = Input(shape=[None, D]), Input(shape=[None, D])
        out = Dense(1)(SimpleRNN(H)(Add()([a, b])))
        model = Model(inputs=[a, b], outputs=out)
        model.compile(loss="mse", optimizer="sgd")
        return model

    X2 = X[::-1].copy()
    from_arrays, from_generator = build(), build()
    from_arrays.fit([X, X2], Y, batch_size=B, shuffle=False, verbose=0)
    from_generator.fit((([X[s:s + B], X2[s:s + B]], Y[s:s + B]) for s in range(0, len(X), B)), verbose=0)
    for wa, wb in zip(from_arrays.get_weights(), from_generator.get_weights(), strict=True):
        numpy.testing.assert_array_equal(wa, wb)


class ArrayLike:
    """Iterable, but array data (as a pandas DataFrame is): NumPy converts it with ``__array__``."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)

    def __iter__(self):
        return iter(self.a)


def test_an_iterable_that_numpy_converts_is_array_data_not_batches():
    from_arrays, from_array_likes = model_and_weights(), model_and_weights()
    from_arrays.fit(X, Y, batch_size=B, shuffle=False, verbose=0)
    from_array_likes.fit(ArrayLike(X), ArrayLike(Y), batch_size=B, shuffle=False, verbose=0)
    assert_same_weights(from_array_likes, from_arrays)


# --- steps_per_epoch and running out -----------------------------------------------------------
def test_steps_per_epoch_takes_the_next_batches_of_one_running_generator():
    log = []
    model = model_and_weights()
    history = model.fit(endless(X, Y, log=log), epochs=3, steps_per_epoch=3, verbose=0)
    assert log == list(range(9))  # epochs continue where the last stopped: batches 0..8, no batch skipped
    assert history.epoch == [0, 1, 2]
    # the same 9 batches as arrays (batches 0..3, 0..3, 0) train the same weights
    reference = model_and_weights()
    order = numpy.concatenate([numpy.arange(k % 4 * B, k % 4 * B + B) for k in range(9)])
    reference.fit(X[order], Y[order], batch_size=B, shuffle=False, verbose=0)
    assert_same_weights(model, reference)


def test_steps_per_epoch_with_a_re_iterable_starts_a_new_pass_when_one_ends():
    pipeline = Pipeline(X, Y)  # 4 batches a pass
    model = model_and_weights()
    model.fit(pipeline, epochs=3, steps_per_epoch=3, verbose=0)  # 9 batches: passes of 4, 4, 1
    assert pipeline.passes == 3
    reference = model_and_weights()
    order = numpy.concatenate([numpy.arange(k % 4 * B, k % 4 * B + B) for k in range(9)])
    reference.fit(X[order], Y[order], batch_size=B, shuffle=False, verbose=0)
    assert_same_weights(model, reference)


def test_an_exhausted_generator_stops_training_with_keras_warning():
    model = model_and_weights()
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        history = model.fit(batches(X, Y), epochs=3, verbose=0)
    assert history.epoch == [0] and len(history.history["loss"]) == 1


def test_a_generator_running_out_mid_epoch_ends_that_epoch_short_then_stops():
    log = []
    model = model_and_weights()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(batches(X, Y, log=log), epochs=5, steps_per_epoch=3, verbose=0)
    assert log == [0, 1, 2, 3] and history.epoch == [0, 1]  # 3 batches, then the last one
    reference = model_and_weights()
    reference.fit(X, Y, batch_size=B, shuffle=False, verbose=0)
    assert_same_weights(model, reference)


def test_a_generator_long_enough_for_all_epochs_gives_no_warning(recwarn):
    model_and_weights().fit(batches(X, Y), epochs=2, steps_per_epoch=2, verbose=0)
    assert not [w for w in recwarn if "ran out" in str(w.message)]


def test_an_empty_generator_is_a_clear_error():
    with pytest.raises(ValueError, match="x yielded no batch"):
        model_and_weights().fit(iter([]), verbose=0)


# --- validation, evaluate, predict ----------------------------------------------------------------
def test_validation_from_an_endless_generator_with_validation_steps():
    log = []
    model = model_and_weights()
    history = model.fit(X, Y, batch_size=B, epochs=2, shuffle=False, verbose=0,
                        validation_data=endless(X_VAL, Y_VAL, log=log), validation_steps=3)
    assert log == list(range(6))  # 3 validation batches per epoch, continuing
    # the second epoch's validation saw batches 3, 4, 5 = validation batches 0, 1, 2 again
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(X_VAL, Y_VAL, batch_size=B)[0],
                                                            rel=1e-6)


def test_a_one_shot_validation_generator_used_up_is_a_clear_error():
    model = model_and_weights()
    with pytest.raises(ValueError, match="validation_data ran out of batches after 1 pass.*re-iterable"):
        model.fit(X, Y, epochs=2, verbose=0, validation_data=batches(X_VAL, Y_VAL))


def test_evaluate_and_predict_take_batches_and_agree_with_arrays():
    model = model_and_weights()
    assert model.evaluate(batches(X_VAL, Y_VAL)) == model.evaluate(X_VAL, Y_VAL, batch_size=B)
    # batches of unequal sizes are weighted by their rows, as arrays are
    uneven = [(X_VAL[:1], Y_VAL[:1]), (X_VAL[1:], Y_VAL[1:])]
    assert model.evaluate(uneven) == pytest.approx(model.evaluate(X_VAL, Y_VAL), rel=1e-6)
    first_two = model.evaluate(endless(X_VAL, Y_VAL), steps=2, return_dict=True)
    assert first_two == model.evaluate(X_VAL[:2 * B], Y_VAL[:2 * B], batch_size=B, return_dict=True)
    expected = model.predict(X_VAL)
    numpy.testing.assert_allclose(model.predict(x for x, _ in batches(X_VAL, Y_VAL)), expected, rtol=1e-6)
    numpy.testing.assert_allclose(model.predict(batches(X_VAL, Y_VAL)), expected, rtol=1e-6)  # y ignored
    numpy.testing.assert_allclose(model.predict([(X_VAL[:B],), (X_VAL[B:],)]), expected, rtol=1e-6)
    numpy.testing.assert_allclose(model.predict(endless(X_VAL, Y_VAL), steps=1), expected[:B], rtol=1e-6)


def test_the_progress_bar_counts_to_the_known_number_of_steps(capsys):
    model = model_and_weights()
    model.fit(endless(X, Y), epochs=1, steps_per_epoch=3, verbose=1)
    assert re.search(r"\| *\d/3 \[", capsys.readouterr().err)  # tqdm's "| 0/3 [": a total of 3 steps
    model.fit(list(batches(X, Y)), epochs=1, verbose=1)  # a list has a length
    assert re.search(r"\| *\d/4 \[", capsys.readouterr().err)
    model.fit(batches(X, Y), epochs=1, verbose=1)  # a generator's length is unknown: the bar counts up
    err = capsys.readouterr().err
    assert re.search(r": *\dbatch \[", err) and not re.search(r"\d/\d+ \[", err)


# --- bad batches: the errors of arrays, naming the batch ------------------------------------------
def test_a_generator_yielding_non_tuples_is_a_clear_error():
    with pytest.raises(TypeError, match=r"x must yield \(x, y\) tuples, but batch 0 is a ndarray of shape "
                                        r"\(2, 5, 3\): yield x_batch, y_batch"):
        model_and_weights().fit((x for x, _ in batches(X, Y)), verbose=0)
    with pytest.raises(TypeError, match="batch 0 is a list"):
        model_and_weights().fit([[X[:B], Y[:B]]], verbose=0)
    with pytest.raises(ValueError, match=r"batch 0 is a tuple of 3 item\(s\) \(sample weights are not"):
        model_and_weights().fit(iter([(X[:B], Y[:B], Y[:B])]), verbose=0)


def arrays_error(x, y):
    with pytest.raises((ValueError, TypeError)) as info:
        model_and_weights().fit(x, y, verbose=0)
    return str(info.value)


@pytest.mark.parametrize("bad", ["rows", "features", "target_shape", "nan", "integers"])
def test_a_bad_batch_gets_the_error_arrays_get_naming_the_batch(bad):
    x, y = X[:B].copy(), Y[:B].copy()
    if bad == "rows":
        y = Y[:B + 1]
    elif bad == "features":
        x = X[:B, :, :2]
    elif bad == "target_shape":
        y = numpy.zeros((B, 2), "float32")
    elif bad == "nan":
        x[1, 2, 0] = numpy.nan
    else:
        x = numpy.ones((B, T, D), "int64")
    good = list(batches(X[:2 * B], Y[:2 * B]))  # two good batches first: a shape seen before is checked too
    with pytest.raises((ValueError, TypeError)) as info:
        model_and_weights().fit(good + [(x, y)], verbose=0)
    assert str(info.value).replace(" of batch 2", "") == arrays_error(x, y)
    assert "batch 2" in str(info.value)


def test_targets_given_beside_a_generator_or_missing_beside_arrays_are_clear_errors():
    with pytest.raises(ValueError, match="holds the targets too: give y=None"):
        model_and_weights().fit(batches(X, Y), Y, verbose=0)
    with pytest.raises(ValueError, match="targets are missing"):
        model_and_weights().fit(X, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
        model_and_weights().fit(endless(X, Y), steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        model_and_weights().fit(X, Y, validation_data=X_VAL, verbose=0)


# --- memory is flat in the number of batches ----------------------------------------------------------
def fill_tuple_free_lists():
    """CPython keeps up to 2,000 freed tuples of each small size for reuse, and tracemalloc counts
    them as allocated; fill those lists first, so that what is measured is the training loop."""
    for size in range(1, 10):
        kept = [tuple([i] * size) for i in range(2100)]
        del kept


def peak_bytes_training_on(n_batches: int) -> int:
    """tracemalloc's peak (bytes) while fitting a small recurrent model on a generator of
    ``n_batches`` tiny batches (B=2, T=5, D=3), each a fresh copy as a real pipeline's would be."""
    tinyrnn.set_random_seed(0)
    model = Sequential([SimpleRNN(H, input_shape=[None, D]), Dense(1)])
    model.compile(loss="mse", optimizer="adam", metrics=["mae"])
    x, y = X[:B], Y[:B]
    model.fit(x, y, verbose=0)  # built, optimizer slots made: only the loop is measured

    def fresh_batches():
        for _ in range(n_batches):
            yield x.copy(), y.copy()

    gc.collect()
    fill_tuple_free_lists()
    tracemalloc.start()
    try:
        model.fit(fresh_batches(), epochs=1, verbose=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_flat(few, many):
    small, large = peak_bytes_training_on(few), peak_bytes_training_on(many)
    # one float kept per batch (in a list) is 32 bytes a batch; one batch kept is hundreds
    assert large - small < 16 * (many - few), f"peak {small} B for {few} batches, {large} B for {many}"


def test_memory_is_flat_in_the_number_of_batches_200_vs_1000():
    assert_flat(200, 1000)


@pytest.mark.slow
def test_memory_is_flat_in_the_number_of_batches_1000_vs_10000():
    assert_flat(1000, 10000)


if __name__ == "__main__":  # the numbers of docs/pages/data-and-callbacks.md
    import time

    for n in (1000, 10000):
        start = time.perf_counter()
        peak = peak_bytes_training_on(n)
        print(f"{n:>6} batches: tracemalloc peak {peak:,} bytes ({time.perf_counter() - start:.1f} s traced)")
