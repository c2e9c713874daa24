"""fit cannot silently go wrong: one seed, one run; a non-finite step stops training and
keeps the last finite weights; Ctrl-C leaves a consistent model and History."""

import os
import signal
import sys

import numpy
import pytest

from tinyrnn import Sequential, TrainingError, losses, optimizers, seeding
from tinyrnn.layers import GRU, LSTM, BatchNormalization, Dense, Dropout

N, T, D, BATCH = 12, 5, 3, 4  # 3 batches per epoch


def data(seed=0, n=N):
    rng = numpy.random.default_rng(seed)
    return rng.normal(size=(n, T, D)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def build(seed, loss="mse", optimizer="adam"):
    """Dropout on inputs, recurrent state and activations, BatchNorm statistics, Adam moments:
    every piece of state a run has."""
    seeding.set_random_seed(seed)
    model = Sequential([
        LSTM(6, return_sequences=True, input_shape=[None, D], dropout=0.2, recurrent_dropout=0.2),
        BatchNormalization(),
        GRU(4),
        Dropout(0.3),
        Dense(1),
    ])
    model.compile(loss=loss, optimizer=optimizer, metrics=["mae"])
    return model


def everything(model):
    """Weights (BatchNorm statistics included) and optimizer state, as host arrays."""
    return model.get_weights() + list(model.optimizer.get_state().values())


def assert_identical(mine, reference):
    mine, reference = everything(mine), everything(reference)
    assert len(mine) == len(reference)
    for i, (a, b) in enumerate(zip(mine, reference)):
        assert a.dtype == b.dtype and numpy.array_equal(a, b), f"array {i} differs"


def twin_after(seed, batches, **build_kwargs):
    """The same model trained (shuffle=False) for exactly ``batches`` updates, without incident."""
    model = build(seed, **build_kwargs)
    x, y = data()
    per_epoch = N // BATCH
    for _ in range(batches // per_epoch):
        model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    rest = (batches % per_epoch) * BATCH
    if rest:
        model.fit(x[:rest], y[:rest], batch_size=BATCH, shuffle=False, verbose=0)
    return model


# --- determinism ---------------------------------------------------------------------------------
def run(seed):
    model = build(seed)
    history = model.fit(*data(), epochs=3, batch_size=BATCH, validation_data=data(1, n=5), verbose=0)
    return history, model


def test_same_seed_same_history_and_weights_bit_for_bit():
    first, model_a = run(7)
    second, model_b = run(7)
    assert first.history == second.history and first.epoch == second.epoch
    assert set(first.history) == {"loss", "mae", "grad_norm", "val_loss", "val_mae"}
    assert_identical(model_a, model_b)
    seeding.set_random_seed(3)
    mc_a = model_a.predict(data(2)[0], training=True)  # MC dropout draws from the same generator
    seeding.set_random_seed(3)
    numpy.testing.assert_array_equal(mc_a, model_b.predict(data(2)[0], training=True))


def test_another_seed_gives_another_run():
    assert run(7)[0].history["loss"] != run(8)[0].history["loss"]


# --- non-finite loss or gradient -----------------------------------------------------------------
overflow_expected = pytest.mark.filterwarnings("ignore:(overflow|invalid value):RuntimeWarning")


@overflow_expected
def test_non_finite_loss_stops_fit_and_keeps_the_last_finite_weights():
    x, y = data()
    y[2 * BATCH] = 1e30  # batch 3: (y_pred - 1e30)^2 overflows float32
    model = build(0)
    message = (r"non-finite loss at epoch 1, batch 3 \(loss inf.*the weights of the last finite step were "
               r"kept.*clipnorm=1\.0.*lower learning rate")
    with pytest.raises(TrainingError, match=message):
        model.fit(x, y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 2
    assert_identical(model, twin_after(0, 2))  # BatchNorm's statistics too: the failed step never happened
    assert model.history.epoch == []


@overflow_expected
def test_non_finite_gradient_stops_fit_with_a_finite_loss():
    class SpikyMSE(losses.MeanSquaredError):
        """MSE whose gradient is infinite for errors above 100 (the loss stays finite)."""

        def elementwise_grad(self, e):
            return numpy.where(numpy.abs(e) > 100, numpy.inf, 2.0 * e).astype(e.dtype)

    x, y = data()
    y[BATCH] = 1000.0  # batch 2
    model = build(0, loss=SpikyMSE())
    with pytest.raises(TrainingError, match=r"non-finite gradient at epoch 1, batch 2 \(loss [0-9.e+]+, "
                                            r"gradient norm (inf|nan)\)"):
        model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    assert_identical(model, twin_after(0, 1, loss=SpikyMSE()))


def test_non_finite_step_in_a_later_epoch_keeps_the_finished_epochs():
    class FailsOnCall(losses.MeanSquaredError):
        calls = 0

        def __call__(self, y_true, y_pred):
            FailsOnCall.calls += 1
            value = super().__call__(y_true, y_pred)
            return value * numpy.nan if FailsOnCall.calls == 5 else value  # epoch 2, batch 2

    model = build(0, loss=FailsOnCall())
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 2, batch 2"):
        model.fit(*data(), epochs=3, batch_size=BATCH, shuffle=False, verbose=0)
    assert model.history.epoch == [0] and all(len(v) == 1 for v in model.history.history.values())
    assert_identical(model, twin_after(0, 4, loss=FailsOnCall()))
    model.fit(*data(), batch_size=BATCH, verbose=0)  # training can go on from the kept weights


def test_grad_norm_of_huge_but_finite_gradients_is_finite():
    model = build(0, optimizer=optimizers.SGD(1e-30))
    model.build()
    for _, _, grad in model.trainable_variables():
        grad[...] = 3e19  # squares overflow float32, not float64
    n = sum(grad.size for _, _, grad in model.trainable_variables())
    assert model.global_grad_norm() == pytest.approx(3e19 * n**0.5, rel=1e-6)


def test_grad_norm_is_the_euclidean_norm_of_every_gradient():
    model = build(0)
    model.build()
    rng = numpy.random.default_rng(3)
    for _, _, grad in model.trainable_variables():
        grad[...] = rng.normal(size=grad.shape)
    every = numpy.concatenate([grad.ravel() for _, _, grad in model.trainable_variables()]).astype(float)
    assert model.global_grad_norm() == pytest.approx(numpy.linalg.norm(every), rel=1e-6)


# --- Ctrl-C -------------------------------------------------------------------------------------------
pytestmark_posix = pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to itself")


@pytestmark_posix
def test_ctrl_c_during_the_update_is_held_until_the_update_is_whole(capsys):
    model = build(0)
    update_step = model.optimizer.update_step
    interrupted = []

    def update_step_hit_by_ctrl_c(key, param, grad):
        if model.optimizer.iterations == 4 and not interrupted:  # the 5th update: epoch 2, batch 2
            interrupted.append(key)
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-update
        update_step(key, param, grad)

    model.optimizer.update_step = update_step_hit_by_ctrl_c
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        model.fit(*data(), epochs=3, batch_size=BATCH, shuffle=False, verbose=0)
    assert interrupted, "the interrupt was never sent"
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C works as before afterwards
    assert model.optimizer.iterations == 5  # the interrupted update was applied to every parameter
    assert_identical(model, twin_after(0, 5))
    assert model.history.epoch == [0] and all(numpy.isfinite(v[0]) for v in model.history.history.values())
    assert "training interrupted after 1 complete epoch(s)" in capsys.readouterr().out


def test_ctrl_c_during_the_forward_pass_leaves_the_last_update(monkeypatch):
    model = build(0)
    dense = model.layers[-1]
    forward = dense.forward
    training_calls = []

    def forward_hit_by_ctrl_c(x, training=False):
        if training:
            training_calls.append(x.shape)
            if len(training_calls) == 5:  # epoch 2, batch 2, after BatchNorm updated its statistics
                raise KeyboardInterrupt
        return forward(x, training=training)

    monkeypatch.setattr(dense, "forward", forward_hit_by_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        model.fit(*data(), epochs=3, batch_size=BATCH, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 4
    assert_identical(model, twin_after(0, 4))  # BatchNorm's statistics put back too
    assert model.history.epoch == [0]
    monkeypatch.undo()
    model.fit(*data(), batch_size=BATCH, verbose=0)  # a consistent model trains on
