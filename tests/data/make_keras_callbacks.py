"""Make tests/data/keras_callbacks.json: what Keras 3's callbacks do, for tests/test_callbacks.py.

Run with TensorFlow and Keras 3 installed (the tests never need them)::

    python tests/data/make_keras_callbacks.py        # from the repository root

Recorded:

- ``hooks``: every hook a recording callback receives (name, index, sorted log keys) in
  ``model.fit`` of a Dense model on 6 rows in batches of 2 (3 batches), 2 epochs, validation
  data of 4 rows (2 batches); ``hooks_evaluate`` the same for ``model.evaluate``;
  ``hooks_stop`` for a fit whose callback sets ``model.stop_training`` at epoch 0, batch 1.
- ``early_stopping``: scripted sequences of a monitored value fed to Keras's ``EarlyStopping``
  (on a stand-in model whose weights are the epoch number), for several settings: the epochs
  that ran, ``stopped_epoch``, ``best_epoch`` and the weights restored at the end.
- ``checkpoint``: Keras's ``ModelCheckpoint`` on scripted logs: the epochs saved and the
  formatted file names.
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent

HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end"]


class Recorder(keras.callbacks.Callback):
    """Records (hook, index or None, sorted log keys) for every hook, the old batch aliases too."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.calls, self.stop_at = [], stop_at
        for name in HOOKS:
            setattr(self, name, self._recorder(name))

    def _recorder(self, name):
        def record(*args, **kwargs):
            index = args[0] if args and isinstance(args[0], int) else None
            logs = kwargs.get("logs", args[-1] if args and isinstance(args[-1], dict) else None)
            self.calls.append([name, index, sorted(logs) if logs else []])
            epoch = sum(c[0] == "on_epoch_begin" for c in self.calls) - 1
            if name == "on_train_batch_end" and self.stop_at == (epoch, index):
                self.model.stop_training = True
        return record


def dense_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd", metrics=["mae"])
    return model


def hook_calls():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    xv, yv = x[:4], y[:4]
    out = {}
    recorder = Recorder()
    dense_model().fit(x, y, batch_size=2, epochs=2, validation_data=(xv, yv), shuffle=False, verbose=0,
                      callbacks=[recorder])
    out["hooks"] = recorder.calls
    recorder = Recorder()
    dense_model().evaluate(xv, yv, batch_size=2, verbose=0, callbacks=[recorder])
    out["hooks_evaluate"] = recorder.calls
    recorder = Recorder(stop_at=(0, 1))
    dense_model().fit(x, y, batch_size=2, epochs=2, validation_data=(xv, yv), shuffle=False, verbose=0,
                      callbacks=[recorder])
    out["hooks_stop"] = recorder.calls
    return out


class StandIn:
    """A model for a callback driven by hand: its weights are [the epoch just ended]."""

    def __init__(self):
        self.stop_training, self.weights, self.restored, self.saved = False, [np.array(-1.0)], None, []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.restored = float(weights[0])

    def save(self, filepath, overwrite=True):
        self.saved.append(filepath)


RESTORE = dict(restore_best_weights=True)
EARLY_STOPPING_CASES = [
    dict(values=[1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.87], kwargs=dict(patience=2)),
    dict(values=[1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.87], kwargs=dict(patience=2, **RESTORE)),
    dict(values=[1.0, 1.1, 0.9], kwargs=dict(patience=0)),
    dict(values=[1.0, 0.99, 0.985, 0.98, 0.7], kwargs=dict(patience=1, min_delta=0.02, **RESTORE)),
    dict(values=[0.5, 0.6, 0.7, 0.65, 0.9],
         kwargs=dict(monitor="val_accuracy", patience=1, mode="max", **RESTORE)),
    dict(values=[0.5, 0.6, 0.55, 0.54, 0.9], kwargs=dict(monitor="val_accuracy", patience=1, mode="max")),
    dict(values=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5], kwargs=dict(patience=2, baseline=0.75, **RESTORE)),
    dict(values=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5], kwargs=dict(patience=3, baseline=0.1, **RESTORE)),
    dict(values=[1.0, 2.0, 3.0, 4.0, 0.5, 0.6, 0.7], kwargs=dict(patience=1, start_from_epoch=3, **RESTORE)),
    dict(values=[1.0, 0.9, 0.8, 0.7], kwargs=dict(patience=1, **RESTORE)),
]


def early_stopping():
    results = []
    for case in EARLY_STOPPING_CASES:
        kwargs = dict(case["kwargs"])
        monitor = kwargs.setdefault("monitor", "val_loss")
        callback, model = keras.callbacks.EarlyStopping(**kwargs), StandIn()
        callback.set_model(model)
        callback.on_train_begin()
        ran = []
        for epoch, value in enumerate(case["values"]):
            callback.on_epoch_begin(epoch)
            model.weights = [np.array(float(epoch))]
            callback.on_epoch_end(epoch, {"loss": 0.0, monitor: value})
            ran.append(epoch)
            if model.stop_training:
                break
        callback.on_train_end()
        results.append({**case, "ran": ran, "stopped_epoch": callback.stopped_epoch,
                        "best_epoch": callback.best_epoch, "restored": model.restored})
    return results


def checkpoint(tmp="ckpt"):
    values = [1.0, 0.8, 0.9, 0.8, 0.5, 0.7]
    results = []
    for kwargs in [dict(save_best_only=True), dict(save_best_only=False),
                   dict(save_best_only=True, monitor="val_accuracy", mode="max")]:
        callback, model = keras.callbacks.ModelCheckpoint(f"{tmp}/m-{{epoch:02d}}-{{val_loss:.4f}}.keras",
                                                          **kwargs), StandIn()
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            callback.on_epoch_begin(epoch)
            callback.on_epoch_end(epoch, {"loss": 0.0, "val_loss": value, "val_accuracy": 1.0 - value})
        results.append({"kwargs": kwargs, "values": values, "saved": model.saved})
    return results


def main():
    data = {"keras": keras.__version__, **hook_calls(), "early_stopping": early_stopping(),
            "checkpoint": checkpoint()}
    (HERE / "keras_callbacks.json").write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
