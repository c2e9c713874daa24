"""model.save / tinyrnn.load_model: exact round trips, refused files, atomic writes, exact resume."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading

import numpy
import pytest

import tinyrnn
from tinyrnn import Sequential, backend, load_model, metrics, saving, seeding
from tinyrnn.layers import (
    GRU,
    LSTM,
    RNN,
    BatchNormalization,
    Conv1D,
    Dense,
    Dropout,
    Flatten,
    InputLayer,
    LayerNormalization,
    LNSimpleRNNCell,
    PeepholeLSTMCell,
    RepeatVector,
    SimpleRNN,
    TimeDistributed,
    serialize,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
B, T, D = 8, 6, 3


def data(seed=0, n=B, t=T, d=D, out=(1,)):
    rng = numpy.random.default_rng(seed)
    return rng.normal(size=(n, t, d)).astype("float32"), rng.normal(size=(n, *out)).astype("float32")


def recurrent_model():
    return Sequential([
        LSTM(5, return_sequences=True, input_shape=[None, D], dropout=0.2, recurrent_dropout=0.1),
        BatchNormalization(),
        GRU(4, return_sequences=True, reset_after=False),
        SimpleRNN(3, return_sequences=True),
        RNN(PeepholeLSTMCell(3), return_sequences=True),
        RNN(LNSimpleRNNCell(4)),
        Dropout(0.3),
        Dense(1),
    ])


def conv_model():
    return Sequential([
        InputLayer(input_shape=[T, D]),
        Conv1D(4, 2, padding="causal", dilation_rate=2, activation="relu"),
        LayerNormalization(),
        Conv1D(3, 3, strides=2, padding="same"),
        TimeDistributed(Dense(2, activation="tanh")),
        Flatten(),
        Dense(2),
        RepeatVector(2),
        GRU(3),
        Dense(1),
    ], name="wavenet_ish")


def trained(build, seed=0, epochs=2, **compile_kwargs):
    seeding.set_random_seed(seed)
    model = build()
    model.compile(**{"loss": "mse", "optimizer": "adam", "metrics": ["mae"], **compile_kwargs})
    model.fit(*data(seed), epochs=epochs, batch_size=3, verbose=0)
    return model


def assert_same_model(mine, reference):
    """Architecture, weights, trainable flags, compile config and optimizer state all equal."""
    assert mine.name == reference.name and mine.input_shape == reference.input_shape
    assert [serialize(a) for a in mine.layers] == [serialize(b) for b in reference.layers]
    assert [a.trainable for a in mine.layers] == [b.trainable for b in reference.layers]
    for a, b in zip(mine.get_weights(), reference.get_weights(), strict=True):
        assert a.dtype == b.dtype and numpy.array_equal(a, b)
    if reference.loss is None:
        assert mine.loss is None
        return
    assert type(mine.loss) is type(reference.loss) and mine.loss.get_config() == reference.loss.get_config()
    assert type(mine.optimizer) is type(reference.optimizer)
    assert mine.optimizer.get_config() == reference.optimizer.get_config()
    state, expected = mine.optimizer.get_state(), reference.optimizer.get_state()
    assert state.keys() == expected.keys()
    assert all(numpy.array_equal(state[k], expected[k]) for k in expected)
    assert [(n, f) for n, f in mine.metrics] == [(n, f) for n, f in reference.metrics]


# --- round trips ------------------------------------------------------------------------
@pytest.mark.parametrize("build", [recurrent_model, conv_model])
def test_round_trip_is_exact(tmp_path, build):
    model = trained(build, optimizer=tinyrnn.optimizers.Adam(0.01, clipnorm=1.0), loss="huber")
    model.layers[1].trainable = False
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    assert_same_model(loaded, model)
    x = data(1)[0]
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_round_trip_float64_and_sgd(tmp_path):
    with backend.float_precision("float64"):
        model = trained(recurrent_model, optimizer=tinyrnn.optimizers.SGD(0.01, momentum=0.9, nesterov=True))
    assert model.get_weights()[0].dtype == numpy.float64
    model.save(tmp_path / "m.npz")
    assert_same_model(load_model(tmp_path / "m.npz"), model)  # built in float64 though floatx is float32


def test_uncompiled_and_unbuilt_models_round_trip(tmp_path):
    seeding.set_random_seed(0)
    built = recurrent_model()
    built.build()
    unbuilt = Sequential([SimpleRNN(3), Dense(1)], name="later")
    for model in (built, unbuilt):
        model.save(tmp_path / "m.npz")
        loaded = load_model(tmp_path / "m.npz")
        assert_same_model(loaded, model)
        assert loaded.built == model.built and loaded.loss is None
    loaded.compile()
    loaded.fit(*data(), verbose=0)  # an unbuilt model builds on its first data, as before saving


def test_file_reads_without_pickle_and_holds_a_json_header(tmp_path):
    trained(recurrent_model).save(tmp_path / "m.npz")
    with numpy.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        header = npz[saving.HEADER]
        assert header.dtype == numpy.uint8
        spec = json.loads(header.tobytes().decode())
        assert all(npz[name].dtype != object for name in npz.files)
    assert spec["format"] == saving.FORMAT and spec["format_version"] == saving.FORMAT_VERSION
    assert spec["compile"]["loss"]["class_name"] == "MeanSquaredError"
    assert spec["compile"]["metrics"] == [{"name": "mae", "builtin": True}]
    layers = spec["model"]["layers"]
    assert [item["layer"]["class_name"] for item in layers[:2]] == ["LSTM", "BatchNormalization"]


def test_saving_does_not_touch_the_random_generator_and_loading_restores_it(tmp_path):
    model = trained(recurrent_model)
    before = seeding.get_state()
    model.save(tmp_path / "m.npz")
    assert seeding.get_state() == before
    seeding.set_random_seed(123)
    other = seeding.get_state()
    load_model(tmp_path / "m.npz", restore_random_state=False)
    assert seeding.get_state() == other  # building the loaded model drew nothing
    load_model(tmp_path / "m.npz")
    assert seeding.get_state() == before


def test_path_must_end_in_npz(tmp_path):
    with pytest.raises(ValueError, match=r"ending in '\.npz'.*my_model\.keras"):
        trained(recurrent_model).save(tmp_path / "my_model.keras")
    assert list(tmp_path.iterdir()) == []


# --- user functions -----------------------------------------------------------------------
def last_step_error(y_true, y_pred):
    return metrics.mean_absolute_error(y_true, y_pred)


def test_user_metric_is_left_out_with_a_warning_unless_given(tmp_path):
    model = trained(recurrent_model, metrics=["mse", last_step_error])
    model.save(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match=r"'last_step_error'.*custom_objects=\{'last_step_error'"):
        loaded = load_model(tmp_path / "m.npz")
    assert [name for name, _ in loaded.metrics] == ["mse"]
    loaded = load_model(tmp_path / "m.npz", custom_objects={"last_step_error": last_step_error})
    assert loaded.metrics == model.metrics
    x, y = data(2)
    assert loaded.evaluate(x, y) == model.evaluate(x, y)


def test_user_loss_class_needs_custom_objects(tmp_path):
    class DoubledMSE(tinyrnn.losses.MeanSquaredError):
        def elementwise(self, e):
            return 2.0 * e * e

        def elementwise_grad(self, e):
            return 4.0 * e

    model = trained(recurrent_model, loss=DoubledMSE())
    model.save(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match=r"'DoubledMSE'.*loaded uncompiled.*custom_objects"):
        assert load_model(tmp_path / "m.npz").loss is None
    loaded = load_model(tmp_path / "m.npz", custom_objects={"DoubledMSE": DoubledMSE})
    assert_same_model(loaded, model)


# --- refused files ----------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    trained(recurrent_model).save(path)
    return path


@pytest.mark.parametrize("keep", [0, 10, 0.5, -22, -1])
def test_truncated_file_is_refused(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:int(keep * len(raw)) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match="not a readable tinyrnn model file: it is truncated, corrupted"):
        load_model(saved)


def test_flipped_bit_in_a_weight_is_refused(saved):
    raw = bytearray(saved.read_bytes())
    with numpy.load(saved, allow_pickle=False) as npz:
        kernel = npz["weights/0/0"].tobytes()
    at = raw.index(kernel) + len(kernel) // 2
    raw[at] ^= 0x01  # one bit of one float
    saved.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="truncated, corrupted"):  # the zip's CRC-32 sees it
        load_model(saved)


def test_edited_weights_are_refused_by_the_checksum(saved):
    with numpy.load(saved, allow_pickle=False) as npz:
        entries = {name: npz[name] for name in npz.files}
    entries["weights/0/0"] = entries["weights/0/0"] + numpy.float32(1e-3)  # a plausible edit
    with open(saved, "wb") as f:
        numpy.savez(f, **entries)  # a valid .npz, with a stale checksum
    with pytest.raises(ValueError, match="does not match its SHA-256 checksum: the file was edited"):
        load_model(saved)


def rewrite_header(path, **changes):
    """Change header fields and store a fresh checksum, so only the change itself can be refused."""
    with numpy.load(path, allow_pickle=False) as npz:
        entries = {name: npz[name] for name in npz.files}
    header = {**json.loads(entries[saving.HEADER].tobytes().decode()), **changes}
    entries[saving.HEADER] = numpy.frombuffer(json.dumps(header).encode(), dtype=numpy.uint8)
    entries[saving.CHECKSUM] = numpy.frombuffer(saving.checksum(entries).encode(), dtype=numpy.uint8)
    with open(path, "wb") as f:
        numpy.savez(f, **entries)


def test_wrong_format_version_is_refused(saved):
    rewrite_header(saved, format_version=saving.FORMAT_VERSION + 1, tinyrnn_version="9.9")
    with pytest.raises(ValueError, match=r"version 2 \(written by tinyrnn 9\.9\).*reads version 1 only"):
        load_model(saved)


def test_rewritten_header_with_fresh_checksum_still_loads(saved):
    rewrite_header(saved)  # the helper alone changes nothing that matters
    assert load_model(saved).built


@pytest.mark.parametrize("content", ["npz_of_arrays", "npy", "text", "other_format"])
def test_files_that_are_not_tinyrnn_models_are_refused(tmp_path, saved, content):
    path = tmp_path / "other.npz"
    if content == "npz_of_arrays":
        numpy.savez(path, x=numpy.ones(3))
        match = "not a tinyrnn model file .*no 'tinyrnn/header' entry"
    elif content == "npy":
        with open(path, "wb") as f:
            numpy.save(f, numpy.ones(3))
        match = "not a tinyrnn model: it holds a single array"
    elif content == "text":
        path.write_text("epoch,loss\n1,0.5\n")
        match = "not a readable tinyrnn model file"
    else:
        path.write_bytes(saved.read_bytes())
        rewrite_header(path, format="keras.Model")
        match = "not a tinyrnn model file .*does not declare the format"
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing.npz")


# --- atomic writes -----------------------------------------------------------------------------
def test_failed_save_leaves_the_previous_file_and_no_temporary(saved, monkeypatch):
    before = saved.read_bytes()
    model = trained(conv_model)

    def broken_savez(file, **entries):
        file.write(b"PK half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(saving.numpy, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


KILLED_CHILD = """
import os, sys, time
import numpy
import tinyrnn
from tinyrnn.layers import LSTM, Dense

path, where = sys.argv[1], sys.argv[2]
tinyrnn.set_random_seed(0)
model = tinyrnn.Sequential([LSTM(64, input_shape=[None, 3]), Dense(1)])
model.build()
model.save(path)                                     # the save that must survive
model.set_weights([w + 1 for w in model.get_weights()])


def stall(original):
    def stalled(*args, **kwargs):
        result = original(*args, **kwargs)
        print("writing", flush=True)                 # tell the parent: kill me now
        time.sleep(60)
        return result
    return stalled


if where == "during_write":                          # after the first array of the second save
    numpy.lib.format.write_array = stall(numpy.lib.format.write_array)
else:                                                # all bytes written, before the rename
    os.fsync = stall(os.fsync)
model.save(path)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("where", ["during_write", "before_rename"])
def test_kill_mid_save_leaves_the_previous_file_intact(tmp_path, where):
    path = tmp_path / "model.npz"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(path), where], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )
    watchdog = threading.Timer(120, child.kill)  # never hang the suite on a stuck child
    watchdog.start()
    try:
        assert child.stdout.readline().strip() == "writing", "the child died before its second save"
        temporaries = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(temporaries) == 1 and temporaries[0].name.startswith(".model.npz.")
        child.send_signal(signal.SIGKILL)
    finally:
        watchdog.cancel()
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    seeding.set_random_seed(0)
    expected = Sequential([LSTM(64, input_shape=[None, 3]), Dense(1)])
    expected.build()
    loaded = load_model(path)  # the first save, whole
    for a, b in zip(loaded.get_weights(), expected.get_weights(), strict=True):
        numpy.testing.assert_array_equal(a, b)
    if where == "during_write":  # the half-written temporary is itself refused, never mistaken for a model
        with pytest.raises(ValueError, match="truncated, corrupted"):
            load_model(temporaries[0])


# --- resumed training equals uninterrupted training ---------------------------------------------
RESUMED_CHILD = """
import sys
import numpy
import tinyrnn

model_path, data_path, out_path, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
arrays = numpy.load(data_path)
model = tinyrnn.load_model(model_path)
history = model.fit(arrays["x"], arrays["y"], epochs=epochs, batch_size=3,
                    validation_data=(arrays["x_val"], arrays["y_val"]), verbose=0)
numpy.savez(out_path, **{f"history/{k}": numpy.array(v) for k, v in history.history.items()},
            **{f"weight/{i}": w for i, w in enumerate(model.get_weights())})
"""


def resume_model():
    return Sequential([
        LSTM(6, return_sequences=True, input_shape=[None, D], dropout=0.2, recurrent_dropout=0.2),
        BatchNormalization(),
        GRU(4),
        Dropout(0.25),
        Dense(1),
    ])


def test_resumed_training_in_a_new_process_equals_uninterrupted_training(tmp_path):
    epochs, first = 4, 2
    x, y = data(0, n=11)  # 11 samples, batches of 3: a short last batch too
    x_val, y_val = data(1, n=5)
    numpy.savez(tmp_path / "data.npz", x=x, y=y, x_val=x_val, y_val=y_val)
    fit_args = dict(batch_size=3, validation_data=(x_val, y_val), verbose=0)

    seeding.set_random_seed(42)
    uninterrupted = resume_model()
    uninterrupted.compile(loss="mse", optimizer="adam", metrics=["mae"])
    full = uninterrupted.fit(x, y, epochs=epochs, **fit_args).history

    seeding.set_random_seed(42)
    interrupted = resume_model()
    interrupted.compile(loss="mse", optimizer="adam", metrics=["mae"])
    start = interrupted.fit(x, y, epochs=first, **fit_args).history
    interrupted.save(tmp_path / "model.npz")
    subprocess.run(
        [sys.executable, "-c", RESUMED_CHILD, str(tmp_path / "model.npz"), str(tmp_path / "data.npz"),
         str(tmp_path / "out.npz"), str(epochs - first)],
        check=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )
    with numpy.load(tmp_path / "out.npz") as out:
        for key, values in full.items():  # loss, mae, grad_norm, val_loss, val_mae
            resumed = start[key] + out[f"history/{key}"].tolist()
            assert resumed == values, f"{key}: resumed {resumed} vs uninterrupted {values}"
        weights = [out[f"weight/{i}"] for i in range(len(out.files) - len(full))]
    for i, (a, b) in enumerate(zip(weights, uninterrupted.get_weights(), strict=True)):
        assert numpy.array_equal(a, b), f"weight {i} differs after resuming"


# --- every optimizer by name: saved, loaded, and training resumes identically ------------------
@pytest.mark.parametrize("name", ["adam", "sgd", "nadam", "rmsprop", "adagrad", "adamw"])
def test_each_named_optimizer_saves_and_resumes_identically(tmp_path, name):
    def build():
        return Sequential([GRU(4, return_sequences=True, input_shape=[None, D]), SimpleRNN(3), Dense(1)])

    x, y = data(2, n=7)
    seeding.set_random_seed(3)
    model = build()
    model.compile(loss="mse", optimizer=name)
    assert type(model.optimizer) is tinyrnn.optimizers.OPTIMIZERS[name]
    model.fit(x, y, epochs=2, batch_size=3, shuffle=False, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert_same_model(loaded, model)
    assert loaded.optimizer.iterations == 6
    saved_weights = model.get_weights()
    for m in (model, loaded):
        m.fit(x, y, epochs=2, batch_size=3, shuffle=False, verbose=0)
    assert_same_model(loaded, model)  # weights and optimizer state equal bit for bit
    assert all(not numpy.array_equal(a, b) for a, b in zip(model.get_weights(), saved_weights, strict=True))
