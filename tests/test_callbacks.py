"""tinyrnn.callbacks against Keras 3: hook order, logs, EarlyStopping, ModelCheckpoint, LearningRateScheduler.

The Keras facts come from tests/data/keras_callbacks.json (made by tests/data/make_keras_callbacks.py).
"""

from __future__ import annotations

import json
import pathlib

import numpy
import pytest

import tinyrnn
from tinyrnn import Sequential, load_model
from tinyrnn.callbacks import (
    Callback,
    EarlyStopping,
    History,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ResetStatesCallback,
)
from tinyrnn.layers import Dense, SimpleRNN
from tinyrnn.optimizers import SGD

KERAS = json.loads((pathlib.Path(__file__).parent / "data" / "keras_callbacks.json").read_text())
B, T, D, H = 2, 5, 3, 4
rng = numpy.random.default_rng(7)
X, Y = rng.normal(size=(3 * B, D)).astype("float32"), rng.normal(size=(3 * B, 1)).astype("float32")
XS, YS = rng.normal(size=(3 * B, T, D)).astype("float32"), rng.normal(size=(3 * B, 1)).astype("float32")

HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end"]


def dense_model(seed=0, optimizer="sgd"):
    """The fixture's model: Dense(1) on D=3 features, MSE, SGD, metric mae."""
    tinyrnn.set_random_seed(seed)
    model = Sequential([Dense(1, input_shape=[D])])
    model.compile(loss="mse", optimizer=optimizer, metrics=["mae"])
    return model


def rnn_model(seed=0, optimizer="adam"):
    tinyrnn.set_random_seed(seed)
    model = Sequential([SimpleRNN(H, input_shape=[None, D]), Dense(1)])
    model.compile(loss="mse", optimizer=optimizer)
    model.build()
    return model


class Recorder(Callback):
    """Records (hook, index or None, sorted log keys) for every hook, as the Keras fixture's does,
    and the logs themselves (copies)."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.calls, self.logs, self.stop_at = [], [], stop_at
        for name in HOOKS:
            setattr(self, name, self._recorder(name))

    def _recorder(self, name):
        def record(*args, **kwargs):
            index = args[0] if args and isinstance(args[0], int) else None
            logs = kwargs.get("logs", args[-1] if args and isinstance(args[-1], dict) else None)
            self.calls.append([name, index, sorted(k for k in logs or {} if k != "grad_norm")])
            self.logs.append((name, index, dict(logs or {})))
            epoch = sum(c[0] == "on_epoch_begin" for c in self.calls) - 1
            if name == "on_train_batch_end" and self.stop_at == (epoch, index):
                self.model.stop_training = True
        return record


# --- the order of hooks and what they receive --------------------------------------------------------
def test_fit_calls_the_hooks_in_keras_order_with_keras_log_keys():
    recorder = Recorder()
    dense_model().fit(X, Y, batch_size=B, epochs=2, validation_data=(X[:2 * B], Y[:2 * B]), shuffle=False,
                      verbose=0, callbacks=[recorder])
    assert recorder.calls == KERAS["hooks"]


def test_evaluate_calls_the_test_hooks_in_keras_order():
    recorder = Recorder()
    dense_model().evaluate(X[:2 * B], Y[:2 * B], batch_size=B, callbacks=[recorder])
    assert recorder.calls == KERAS["hooks_evaluate"]


def test_stop_training_ends_the_epoch_after_the_current_batch_as_keras():
    recorder = Recorder(stop_at=(0, 1))
    model = dense_model()
    history = model.fit(X, Y, batch_size=B, epochs=2, validation_data=(X[:2 * B], Y[:2 * B]), shuffle=False,
                        verbose=0, callbacks=[recorder])
    assert recorder.calls == KERAS["hooks_stop"]
    assert history.epoch == [0] and model.stop_training


def test_logs_are_what_fit_reports():
    recorder = Recorder()
    model = dense_model()
    history = model.fit(X, Y, batch_size=B, epochs=2, validation_data=(X[:2 * B], Y[:2 * B]), shuffle=False,
                        verbose=0, callbacks=[recorder])
    epoch_logs = [logs for name, _, logs in recorder.logs if name == "on_epoch_end"]
    assert [logs for name, _, logs in recorder.logs if name == "on_train_end"] == [epoch_logs[-1]]
    for key, values in history.history.items():
        assert values == [logs[key] for logs in epoch_logs], key
    last_batch = [logs for name, index, logs in recorder.logs if name == "on_train_batch_end" and index == 2]
    test_end = [logs for name, _, logs in recorder.logs if name == "on_test_end"]
    for epoch, logs in enumerate(epoch_logs):
        # a batch's logs are the running means: the epoch's last batch has the epoch's training logs
        assert last_batch[epoch] == {k: v for k, v in logs.items() if not k.startswith("val_")}
        assert test_end[epoch] == {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
    assert test_end[-1]["loss"] == pytest.approx(model.evaluate(X[:2 * B], Y[:2 * B])[0], rel=1e-6)
    # the first batch's logs are that batch's own loss
    first = next(logs for name, _, logs in recorder.logs if name == "on_train_batch_end")
    assert first["loss"] > 0 and set(first) == {"loss", "mae", "grad_norm"}


def test_the_old_batch_hook_names_are_called_by_the_default_train_batch_hooks():
    seen = []

    class OldStyle(Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, sorted(logs)))

    dense_model().fit(X, Y, batch_size=3 * B, epochs=2, verbose=0, callbacks=[OldStyle()])
    assert seen == [("begin", 0), ("end", 0, ["grad_norm", "loss", "mae"])] * 2


def test_history_is_the_last_callback_and_the_models_history():
    order = []

    class AddsToLogs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            order.append(dict(self.model.history.history))  # History has not yet seen this epoch
            logs["mine"] = float(epoch)

    model = dense_model()
    history = model.fit(X, Y, epochs=2, verbose=0, callbacks=[AddsToLogs()])
    assert model.history is history and isinstance(history, History)
    assert history.history["mine"] == [0.0, 1.0]  # added by a callback before History recorded the logs
    assert order[0] == {}
    mine = History()
    assert model.fit(X, Y, epochs=1, verbose=0, callbacks=[mine]) is mine and model.history is mine


def test_initial_epoch_counts_epochs_from_it():
    recorder = Recorder()
    history = dense_model().fit(X, Y, epochs=4, initial_epoch=2, verbose=0, callbacks=[recorder])
    assert history.epoch == [2, 3]
    assert [index for name, index, _ in recorder.calls if name == "on_epoch_begin"] == [2, 3]


def test_callbacks_must_be_a_list_of_callbacks():
    with pytest.raises(TypeError, match="callbacks must be a list"):
        dense_model().fit(X, Y, verbose=0, callbacks=EarlyStopping())
    with pytest.raises(TypeError, match="Callback instances, got function"):
        dense_model().fit(X, Y, verbose=0, callbacks=[lambda epoch, logs: None])


def test_lambda_callback_replaces_the_hooks_it_is_given():
    epochs, batches = [], []
    callback = LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append((epoch, sorted(logs))),
                              on_train_batch_end=lambda batch, logs: batches.append(batch))
    dense_model().fit(X, Y, batch_size=B, epochs=2, verbose=0, callbacks=[callback])
    assert epochs == [(0, ["grad_norm", "loss", "mae"]), (1, ["grad_norm", "loss", "mae"])]
    assert batches == [0, 1, 2, 0, 1, 2]


# --- EarlyStopping: Keras's rules -------------------------------------------------------------------
class StandIn:
    """The fixture's stand-in model: its weights are [the epoch just ended]."""

    def __init__(self):
        self.stop_training, self.weights, self.restored = False, [numpy.array(-1.0)], None

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.restored = float(weights[0])


@pytest.mark.parametrize("case", KERAS["early_stopping"], ids=lambda c: json.dumps(c["kwargs"]))
def test_early_stopping_decides_as_keras_on_scripted_values(case):
    kwargs = dict(case["kwargs"])
    monitor = kwargs.setdefault("monitor", "val_loss")
    callback, model = EarlyStopping(**kwargs), StandIn()
    callback.set_model(model)
    callback.on_train_begin()
    ran = []
    for epoch, value in enumerate(case["values"]):
        callback.on_epoch_begin(epoch)
        model.weights = [numpy.array(float(epoch))]
        callback.on_epoch_end(epoch, {"loss": 0.0, monitor: value})
        ran.append(epoch)
        if model.stop_training:
            break
    callback.on_train_end()
    assert (ran, callback.stopped_epoch, callback.best_epoch, model.restored) == \
        (case["ran"], case["stopped_epoch"], case["best_epoch"], case["restored"])


def scripted(key, values):
    """A callback that overwrites logs[key] with values[epoch] (placed before the one under test)."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__(key, values[epoch]))


def test_early_stopping_in_fit_stops_at_keras_epoch_and_restores_the_best_weights():
    case = KERAS["early_stopping"][1]  # patience 2, restore_best_weights; Keras: best epoch 1, stops after 3
    weights_at = []
    model = rnn_model()
    history = model.fit(XS, YS, epochs=len(case["values"]), verbose=0, validation_data=(XS, YS), callbacks=[
        scripted("val_loss", case["values"]),
        LambdaCallback(on_epoch_end=lambda epoch, logs: weights_at.append(model.get_weights())),
        EarlyStopping(**case["kwargs"]),
    ])
    assert history.epoch == case["ran"] == [0, 1, 2, 3]
    assert history.history["val_loss"] == case["values"][:4]
    for now, best in zip(model.get_weights(), weights_at[case["best_epoch"]], strict=True):
        numpy.testing.assert_array_equal(now, best)
    assert not numpy.array_equal(weights_at[1][0], weights_at[3][0])  # so restoring did change them


def test_early_stopping_without_restoring_keeps_the_last_weights():
    model = rnn_model()
    weights_at = []
    model.fit(XS, YS, epochs=5, verbose=0, validation_data=(XS, YS), callbacks=[
        scripted("val_loss", [1.0, 1.1, 1.2, 1.3, 1.4]),
        LambdaCallback(on_epoch_end=lambda epoch, logs: weights_at.append(model.get_weights())),
        EarlyStopping(patience=1),
    ])
    assert len(weights_at) == 2
    numpy.testing.assert_array_equal(model.get_weights()[0], weights_at[-1][0])


def test_monitor_modes_follow_the_metric_name_and_unknown_names_need_a_mode():
    model = dense_model()
    with pytest.raises(ValueError, match="monitor=val_mine.*Pass mode='max'"):
        model.fit(X, Y, epochs=2, verbose=0, validation_data=(X, Y),
                  callbacks=[scripted("val_mine", [1.0, 2.0]), EarlyStopping(monitor="val_mine")])
    rising = EarlyStopping(monitor="val_accuracy", patience=0)  # accuracy: "auto" maximizes
    model.fit(X, Y, epochs=4, verbose=0, callbacks=[scripted("val_accuracy", [0.5, 0.6, 0.7, 0.8]), rising])
    assert rising.stopped_epoch == 0 and rising.best == 0.8
    falling = EarlyStopping(monitor="val_output_0_mae", patience=0)  # an error metric: minimized
    model.fit(X, Y, epochs=4, verbose=0,
              callbacks=[scripted("val_output_0_mae", [0.5, 0.6, 0.7, 0.8]), falling])
    assert falling.stopped_epoch == 1 and falling.best == 0.5
    with pytest.warns(UserWarning, match="metric `val_loss` which is not available. Available metrics are: "
                                         "loss,mae,grad_norm"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[EarlyStopping()])


# --- ModelCheckpoint -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", KERAS["checkpoint"], ids=lambda c: json.dumps(c["kwargs"]))
def test_model_checkpoint_saves_when_keras_does_and_the_files_load(tmp_path, case):
    values = case["values"]
    weights_at = []
    model = rnn_model()
    checkpoint = ModelCheckpoint(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.4f}.npz", **case["kwargs"])
    model.fit(XS, YS, epochs=len(values), verbose=0, validation_data=(XS, YS), callbacks=[
        scripted("val_loss", values),
        scripted("val_accuracy", [1.0 - v for v in values]),
        LambdaCallback(on_epoch_end=lambda epoch, logs: weights_at.append(model.get_weights())),
        checkpoint,
    ])
    expected = [pathlib.Path(p).name.replace(".keras", ".npz") for p in case["saved"]]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == expected
    for name in expected:
        epoch = int(name[2:4]) - 1
        loaded = load_model(tmp_path / "ckpt" / name)
        for a, b in zip(loaded.get_weights(), weights_at[epoch], strict=True):
            numpy.testing.assert_array_equal(a, b)


def test_model_checkpoint_best_only_overwrites_one_file_only_when_better(tmp_path):
    path = tmp_path / "best.npz"
    saved = []
    model = rnn_model()
    original_save = model.save
    model.save = lambda p: (saved.append(p), original_save(p))
    weights_at = []
    model.fit(XS, YS, epochs=4, verbose=0, validation_data=(XS, YS), callbacks=[
        scripted("val_loss", [1.0, 0.5, 0.7, 0.6]),
        LambdaCallback(on_epoch_end=lambda epoch, logs: weights_at.append(model.get_weights())),
        ModelCheckpoint(path, save_best_only=True),
    ])
    assert len(saved) == 2  # epochs 0 and 1 improved; 2 and 3 did not beat 0.5
    for a, b in zip(load_model(path).get_weights(), weights_at[1], strict=True):
        numpy.testing.assert_array_equal(a, b)


def test_model_checkpoint_weights_only_and_bad_paths(tmp_path):
    model = rnn_model()
    model.fit(XS, YS, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "w.weights.npz",
                                                                      save_weights_only=True)])
    with numpy.load(tmp_path / "w.weights.npz") as f:
        stored = [f[k] for k in f.files]
    for a, b in zip(stored, model.get_weights(), strict=True):
        numpy.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="ending in '.npz'"):
        ModelCheckpoint(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="ending in '.weights.npz'"):
        ModelCheckpoint(tmp_path / "m.npz", save_weights_only=True)
    with pytest.raises(KeyError, match="val_los") as info:
        model.fit(XS, YS, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "{val_los}.npz")])
    assert "is not in the epoch" in str(info.value) and "(they hold loss, grad_norm)" in str(info.value)


# --- LearningRateScheduler, ResetStatesCallback ------------------------------------------------------
def test_learning_rate_scheduler_sets_the_rate_each_epoch_and_training_uses_it():
    rates = [0.1, 0.05, 0.02]
    seen = []
    model = dense_model(optimizer=SGD(learning_rate=0.3))
    history = model.fit(X, Y, batch_size=B, epochs=3, shuffle=False, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch, lr: (seen.append(lr), rates[epoch])[1]),
    ])
    assert seen == [0.3, 0.1, 0.05]  # the schedule gets the rate in force
    assert history.history["learning_rate"] == rates and model.optimizer.learning_rate == 0.02
    # the same epochs with the rate set by hand give the same weights
    reference = dense_model(optimizer=SGD(learning_rate=0.3))
    for rate in rates:
        reference.optimizer.learning_rate = rate
        reference.fit(X, Y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        numpy.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_takes_keras_older_one_argument_schedule_and_refuses_non_floats():
    model = dense_model()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))])
    assert model.optimizer.learning_rate == 0.02
    with pytest.raises(ValueError, match="should be a float. Got: '0.1'"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: "0.1")])


def test_reset_states_callback_resets_at_each_epoch_start_before_the_first_batch():
    # Model.reset_states comes with stateful RNNs (another part of issue 12): counted here on the instance
    events = []
    model = rnn_model()
    model.reset_states = lambda: events.append("reset")
    model.fit(XS, YS, batch_size=3 * B, epochs=3, verbose=0, callbacks=[
        ResetStatesCallback(),
        LambdaCallback(on_train_batch_begin=lambda batch, logs: events.append("batch")),
    ])
    assert events == ["reset", "batch"] * 3


def test_reset_states_callback_on_a_stateful_model_trains_as_resetting_by_hand():
    """Streams cut into consecutive windows (batch k+1 continues batch k): with the callback each
    epoch starts from zero states, as resetting by hand between one-epoch fits does."""
    from tinyrnn.layers import GRU

    stream = rng.normal(size=(B, 3 * T, D)).astype("float32")
    target = rng.normal(size=(B, 3 * T, 1)).astype("float32")
    windows = [(stream[:, k * T:(k + 1) * T], target[:, k * T:(k + 1) * T]) for k in range(3)]

    def stateful_model():
        tinyrnn.set_random_seed(4)
        model = Sequential([GRU(H, stateful=True, return_sequences=True, batch_input_shape=[B, None, D]),
                            Dense(1)])
        model.compile(loss="mse", optimizer="adam")
        model.build()  # the weights are drawn now, from the seed
        return model

    with_callback, by_hand, never_reset = stateful_model(), stateful_model(), stateful_model()
    with_callback.fit(windows, epochs=3, verbose=0, callbacks=[ResetStatesCallback()])
    for _ in range(3):
        by_hand.reset_states()
        by_hand.fit(windows, epochs=1, verbose=0)
    never_reset.fit(windows, epochs=3, verbose=0)
    for a, b in zip(with_callback.get_weights(), by_hand.get_weights(), strict=True):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(with_callback.get_weights()[0], never_reset.get_weights()[0])
