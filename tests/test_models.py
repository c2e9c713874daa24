"""Sequential end to end: the course's Keras code ports with only the import changed."""

from __future__ import annotations

import numpy
import pytest

import tinyrnn
from tinyrnn import Sequential
from tinyrnn.layers import LSTM, Dense, Flatten, InputLayer, SimpleRNN, TimeDistributed
from tinyrnn.optimizers import Adam


def course_data(n=64, T=12, seed=0):
    series = tinyrnn.data.generate_time_series(n, T + 10, seed=seed)
    return series[:, :T], series[:, T:, 0], tinyrnn.data.seq2seq_targets(series, 10)


def test_the_course_seq2seq_cell_ports_unchanged():
    # The course notebook's code, with `keras.` replaced by tinyrnn's names.
    def last_time_step_mse(Y_true, Y_pred):
        return tinyrnn.metrics.mean_squared_error(Y_true[:, -1], Y_pred[:, -1])

    X, _, Y = course_data()
    tinyrnn.set_random_seed(42)
    model = Sequential([
        SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
        SimpleRNN(20, return_sequences=True),
        TimeDistributed(Dense(10)),
    ])
    model.compile(loss="mse", optimizer=Adam(lr=0.01), metrics=[last_time_step_mse])
    history = model.fit(X, Y, epochs=3, validation_data=(X[:16], Y[:16]), verbose=0)
    assert set(history.history) == {"loss", "last_time_step_mse", "grad_norm",
                                    "val_loss", "val_last_time_step_mse"}
    assert history.epoch == [0, 1, 2] and all(len(v) == 3 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.optimizer.learning_rate == 0.01
    # the metric is the MSE of the last time step, as the course defines it
    y_pred = model.predict(X[:16])
    expected = numpy.mean((Y[:16, -1] - y_pred[:, -1]) ** 2)
    loss, metric = model.evaluate(X[:16], Y[:16])
    assert metric == pytest.approx(expected, rel=1e-5)
    assert metric == pytest.approx(history.history["val_last_time_step_mse"][-1], rel=1e-5)


def test_input_layer_and_evaluate_without_metrics_returns_a_float():
    X, y, _ = course_data()
    model = Sequential([InputLayer(input_shape=[None, 1]), SimpleRNN(4), Dense(10)])
    model.compile(loss="mae", optimizer="sgd")
    assert model.input_shape == (None, None, 1)
    loss = model.evaluate(X, y)
    assert isinstance(loss, float) and loss > 0
    assert model.predict(X).shape == (64, 10)


def test_summary_prints_layers_shapes_and_keras_parameter_counts():
    model = Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
                        LSTM(20), Dense(1)])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    # Keras's counts: SimpleRNN 20*1 + 20*20 + 20; LSTM 4*(20*20 + 20*20 + 20); Dense 20 + 1
    for name, shape, count in [("SimpleRNN", "(None, None, 20)", "440"), ("LSTM", "(None, 20)", "3,280"),
                               ("Dense", "(None, 1)", "21")]:
        row = next(r for r in text.splitlines() if f"({name})" in r)
        assert shape in row and row.rstrip().endswith(count), row
    assert "Total params: 3,741" in text and "Non-trainable params: 0" in text


def test_summary_needs_an_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        Sequential([Dense(3)]).summary()


def test_compile_takes_strings_and_objects_and_refuses_unknown_names():
    model = Sequential([Flatten(input_shape=[5, 1]), Dense(1)])
    model.compile(loss=tinyrnn.losses.Huber(), optimizer=tinyrnn.optimizers.SGD(momentum=0.9),
                  metrics=["mae"])
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*'adam'"):
        model.compile(loss="mse", optimizer="adamax")
    with pytest.raises(ValueError, match="mse"):
        model.compile(loss="mean_squared_eror", optimizer="adam")


def test_fit_shows_a_progress_bar_with_running_metrics(capsys):
    X, y, _ = course_data(n=40)
    model = Sequential([SimpleRNN(3, input_shape=[None, 1]), Dense(10)])
    model.compile(loss="mse", optimizer="adam", metrics=["mae"])
    model.fit(X, y, epochs=1, batch_size=8, verbose=1)
    out, err = capsys.readouterr()
    assert "Epoch 1/1" in err and "/5 [" in err                     # tqdm's bar, one step per batch
    assert "Epoch 1/1 - loss:" in out and "mae:" in out             # and the epoch's summary line


def test_fit_without_compile_says_what_to_do():
    X, y, _ = course_data(n=8)
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([SimpleRNN(3, input_shape=[None, 1])]).fit(X, y)


def test_train_step_builds_an_unbuilt_model_and_refuses_an_empty_batch():
    rng = numpy.random.default_rng(0)
    model = Sequential([LSTM(4, input_shape=(5, 1)), Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    x, y = rng.standard_normal((3, 5, 1)).astype("float32"), rng.standard_normal((3, 1)).astype("float32")
    loss, y_pred, grad_norm = model.train_step(x, y)          # as fit would, without fit first
    assert model.built and y_pred.shape == (3, 1) and numpy.isfinite(loss) and grad_norm > 0
    with pytest.raises(ValueError, match="at least one sample"):
        model.train_step(x[:0], y[:0])
