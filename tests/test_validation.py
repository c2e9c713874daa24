"""Every bad input of issue 5 meets an error that names what was expected and what came.

Each test asserts the error type and the words that tell the user what to fix.
"""

import re
import sys
import types

import numpy
import pytest

import tinyrnn
from tinyrnn import Sequential, backend, validation
from tinyrnn.layers import GRU, LSTM, Conv1D, Dense, SimpleRNN

B, T, D, H = 4, 5, 3, 2
RECURRENT = [SimpleRNN, LSTM, GRU]


def series(b=B, t=T, d=D, seed=0):
    return numpy.random.default_rng(seed).normal(size=(b, t, d)).astype("float32")


def targets(b=B, *shape):
    return numpy.random.default_rng(1).normal(size=(b, *(shape or (1,)))).astype("float32")


def compiled(*layers, **compile_kwargs):
    model = Sequential(list(layers) or [SimpleRNN(H, input_shape=[None, D]), Dense(1)])
    model.compile(**{"loss": "mse", "optimizer": "adam", **compile_kwargs})
    return model


# --- arrays of the wrong rank --------------------------------------------------------------
@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_layer_rejects_a_2d_array(cls):
    layer = cls(H)
    with pytest.raises(ValueError, match=r"expect inputs \(B, T, D\), got shape \(4, 5\).*x\[\.\.\., None\]"):
        layer(series()[..., 0])
    layer(series())  # built for (B, T, D) ...
    with pytest.raises(ValueError, match=r"expect inputs \(B, T, D\), got shape \(4, 5\)"):
        layer.forward(series()[..., 0])  # ... and still refuses 2-D arrays afterwards


def test_model_without_declared_shape_given_a_2d_array():
    model = compiled(SimpleRNN(H), Dense(1))
    with pytest.raises(ValueError, match=r"\(B, T, D\), got shape \(None, 5\).*x\[\.\.\., None\]"):
        model.fit(series()[..., 0], targets(), verbose=0)


def test_model_with_declared_shape_given_a_2d_array():
    model = compiled(SimpleRNN(H, input_shape=[None, 1]), Dense(1))
    with pytest.raises(ValueError, match=r"x has shape \(4, 5\).*inputs \(B, T, D\) = \(None, None, 1\).*"
                                         r"x\[\.\.\., None\]"):
        model.fit(series()[..., 0], targets(), verbose=0)


@pytest.mark.parametrize("input_shape", [[50], [5, 2, 1]])
@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_input_shape_of_the_wrong_rank_is_named_as_the_mistake(cls, input_shape):
    # 3-D data is right here: the error must blame input_shape, not ask to reshape x
    model = compiled(cls(H, input_shape=input_shape), Dense(1))
    with pytest.raises(ValueError, match=rf"the mistake is input_shape={re.escape(str(input_shape))}: .*"
                                         r"\[T, D\].*input_shape=\[None, 1\]") as error:
        model.fit(series(t=50, d=1), targets(), verbose=0)
    assert "x[..., None]" not in str(error.value)


@pytest.mark.parametrize("declare", [
    lambda layer: Sequential([tinyrnn.layers.InputLayer(input_shape=[50]), layer, Dense(1)]),
    lambda layer: Sequential([tinyrnn.layers.InputLayer(shape=(50,)), layer, Dense(1)]),
    lambda layer: Sequential([tinyrnn.Input(shape=(50,)), layer, Dense(1)]),
], ids=["InputLayer(input_shape)", "InputLayer(shape)", "Input(shape)"])
@pytest.mark.parametrize("feed", ["fit", "predict 2-D", "build"])
def test_an_input_layer_of_the_wrong_rank_is_named_as_the_mistake(declare, feed):
    # the declaration is the mistake, whether the data is 3-D (right), 2-D, or none has come yet
    model = declare(SimpleRNN(H))
    model.compile(loss="mse", optimizer="adam")
    run = {"fit": lambda: model.fit(series(t=50, d=1), targets(), verbose=0),
           "predict 2-D": lambda: model.predict(series(t=50, d=1)[..., 0]),
           "build": model.build}[feed]
    with pytest.raises(ValueError, match=r"the mistake is input_shape=\[50\]: .*\[T, D\].*"
                                         r"input_shape=\[None, 1\]") as error:
        run()
    assert "x[..., None]" not in str(error.value)


def test_model_build_of_the_wrong_rank_is_named_as_the_mistake():
    with pytest.raises(ValueError, match=r"the mistake is input_shape=\[50\]: .*\[T, D\]") as error:
        Sequential([SimpleRNN(H), Dense(1)]).build((None, 50))
    assert "x[..., None]" not in str(error.value)


def test_conv1d_rejects_a_2d_array():
    with pytest.raises(ValueError, match=r"Conv1D expects 3-D inputs \(B, T, D\).*got 2-D shape \(4, 5\).*"
                                         r"x\[\.\.\., None\]"):
        Conv1D(2, 3)(series()[..., 0])


# --- a feature size D other than the layer's ----------------------------------------------------
@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_layer_rejects_another_feature_size(cls):
    layer = cls(H)
    layer(series(d=3))
    with pytest.raises(ValueError, match=r"built for D=3 input features, got D=2"):
        layer(series(d=2))


def test_conv1d_rejects_another_feature_size():
    layer = Conv1D(2, 3)
    layer(series(d=3))
    with pytest.raises(ValueError, match=r"built for inputs \(B, T, D\) with D=3 features, got shape .* D=2"):
        layer(series(d=2))


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_model_rejects_another_feature_size(method):
    model = compiled()
    model.fit(series(), targets(), verbose=0)
    args = (series(d=2),) if method == "predict" else (series(d=2), targets())
    with pytest.raises(ValueError, match=r"x has D=2 features .*built for D=3: inputs \(B, T, D\)"):
        getattr(model, method)(*args, **({"verbose": 0} if method == "fit" else {}))


def test_model_accepts_another_number_of_time_steps():
    model = compiled()
    model.fit(series(t=5), targets(), verbose=0)
    assert model.predict(series(t=9)).shape == (B, 1)  # T may vary, D may not


def test_dense_rejects_another_feature_size():
    layer = Dense(H)
    layer(numpy.ones((B, 3), "float32"))
    with pytest.raises(ValueError, match=r"built for D=3 input features.*got D=5"):
        layer(numpy.ones((B, 5), "float32"))


# --- integer, boolean, object, complex data ---------------------------------------------------
FLOATS = "x must hold real floating-point numbers, got dtype"
BAD_DTYPES = {
    "integer": (numpy.ones((B, T, D), dtype="int64"), r"x has integer dtype int64.*x\.astype\('float32'\)"),
    "boolean": (numpy.ones((B, T, D), dtype=bool), rf"{FLOATS} bool \(booleans\)"),
    "object": (numpy.ones((B, T, D)).astype(object), rf"{FLOATS} object \(Python objects\)"),
    "complex": (numpy.ones((B, T, D), dtype=complex), rf"{FLOATS} complex128 \(complex numbers\)"),
    "strings": (numpy.full((B, T, D), "1.0"), rf"{FLOATS} <U3 \(strings\)"),
}


@pytest.mark.parametrize("kind", BAD_DTYPES)
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_inputs_must_be_real_floats(kind, method):
    bad, message = BAD_DTYPES[kind]
    model = compiled()
    args = (bad,) if method == "predict" else (bad, targets())
    with pytest.raises(TypeError, match=message):
        getattr(model, method)(*args)


@pytest.mark.parametrize("kind", ["integer", "boolean", "complex"])
def test_targets_must_be_real_floats(kind):
    bad = BAD_DTYPES[kind][0][:, 0, :1]  # (B, 1)
    with pytest.raises(TypeError, match=r"y (has integer|must hold real floating-point)"):
        compiled().fit(series(), bad, verbose=0)


def test_ragged_sequences_are_explained():
    ragged = [[[1.0], [2.0]], [[1.0]]]
    with pytest.raises(ValueError, match="x could not be made into one array.*different lengths.*Pad"):
        compiled().predict(ragged)


def test_dense_rejects_an_integer_array():
    with pytest.raises(TypeError, match=r"integer dtype int64.*astype\('float32'\)"):
        Dense(H)(numpy.ones((B, D), dtype="int64"))


# --- NaN and Inf ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_value", [numpy.nan, numpy.inf, -numpy.inf])
@pytest.mark.parametrize("where", ["x", "y", "x_val", "y_val"])
def test_nan_or_inf_in_fit_data_is_refused(bad_value, where):
    arrays = {"x": series(), "y": targets(), "x_val": series(seed=2), "y_val": targets()}
    arrays[where] = arrays[where].copy()
    arrays[where][1, 0] = bad_value
    model = compiled()
    message = rf"{where} contains \d+ NaN or Inf value\(s\), the first at index \(1, "
    with pytest.raises(ValueError, match=message):
        model.fit(arrays["x"], arrays["y"], validation_data=(arrays["x_val"], arrays["y_val"]), verbose=0)
    assert not model.built or model.optimizer.iterations == 0  # refused before any training


@pytest.mark.parametrize("where", ["x", "y"])
def test_nan_in_evaluate_data_is_refused(where):
    x, y = series(), targets()
    (x if where == "x" else y)[2, 0, ...] = numpy.nan  # D = 3 values of x, 1 of y
    count = 3 if where == "x" else 1
    with pytest.raises(ValueError, match=rf"{where} contains {count} NaN or Inf value\(s\).*clean or impute"):
        compiled().evaluate(x, y)


# --- empty batches, zero time steps, mismatched lengths and targets -----------------------------
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_empty_batch_is_refused(method):
    args = (series(b=0),) if method == "predict" else (series(b=0), targets(0))
    with pytest.raises(ValueError, match=r"x must hold at least one sample \(B >= 1\), got an empty batch"):
        getattr(compiled(), method)(*args)


def test_empty_validation_batch_is_refused():
    with pytest.raises(ValueError, match=r"x_val must hold at least one sample"):
        compiled().fit(series(), targets(), validation_data=(series(b=0), targets(0)), verbose=0)


@pytest.mark.parametrize("method", ["fit", "predict"])
def test_zero_time_steps_are_refused_by_the_model(method):
    args = (series(t=0),) if method == "predict" else (series(t=0), targets())
    with pytest.raises(ValueError, match=r"x has shape \(4, 0, 3\) = \(B, T, D\): T = 0"):
        getattr(compiled(), method)(*args)


@pytest.mark.parametrize("cls", RECURRENT)
def test_zero_time_steps_are_refused_by_recurrent_layers(cls):
    layer = cls(H)
    layer(series())
    with pytest.raises(ValueError, match=r"zero time steps \(shape \(4, 0, 3\)\)"):
        layer(series(t=0))


def test_zero_time_steps_are_refused_by_a_same_padded_conv1d():
    with pytest.raises(ValueError, match=r"T = 0|zero time steps"):
        Conv1D(2, 3, padding="same")(series(t=0))


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_x_and_y_of_different_lengths(method):
    with pytest.raises(ValueError, match=r"x and y must have the same number of samples \(B\): x has 4, y"):
        getattr(compiled(), method)(series(), targets(3))


def test_validation_pair_of_different_lengths():
    with pytest.raises(ValueError, match=r"x_val and y_val must have the same number of samples"):
        compiled().fit(series(), targets(), validation_data=(series(), targets(2)), verbose=0)


def test_sequence_targets_for_a_vector_output():
    with pytest.raises(ValueError, match=r"targets y have shape \(4, 5, 1\) but the model's output "
                                         r".* \(4, 1\).*return_sequences=True in the last recurrent layer"):
        compiled().fit(series(), targets(B, T, 1), verbose=0)


def test_vector_targets_for_a_sequence_output():
    model = compiled(SimpleRNN(H, return_sequences=True, input_shape=[None, D]), Dense(1))
    with pytest.raises(ValueError, match=r"output .* \(4, 5, 1\).*drop return_sequences=True"):
        model.fit(series(), targets(B, 1), verbose=0)


def test_targets_with_another_number_of_values():
    with pytest.raises(ValueError, match=r"the last layer has 1 units but each target has 3 values"):
        compiled().evaluate(series(), targets(B, 3))


def test_keras_style_flat_targets_are_accepted():
    compiled().fit(series(), targets(B, 1)[:, 0], verbose=0)  # (B,) for a (B, 1) output, as in Keras


# --- epochs and batch_size ---------------------------------------------------------------------
BAD_COUNTS = [0, -1, 2.5, 32.0, "32", True, None]


@pytest.mark.parametrize("value", BAD_COUNTS)
@pytest.mark.parametrize("argument", ["epochs", "batch_size"])
def test_fit_counts_must_be_positive_integers(argument, value):
    with pytest.raises(ValueError, match=rf"{argument} must be a positive integer, got {value!r}"):
        compiled().fit(series(), targets(), verbose=0, **{argument: value})


@pytest.mark.parametrize("value", BAD_COUNTS)
@pytest.mark.parametrize("method", ["evaluate", "predict"])
def test_batch_size_must_be_a_positive_integer(method, value):
    args = (series(),) if method == "predict" else (series(), targets())
    with pytest.raises(ValueError, match=rf"batch_size must be a positive integer, got {value!r}"):
        getattr(compiled(), method)(*args, batch_size=value)


def test_numpy_integers_are_positive_integers():
    compiled().fit(series(), targets(), epochs=numpy.int64(1), batch_size=numpy.int32(2), verbose=0)


# --- unknown names -------------------------------------------------------------------------------
def test_unknown_loss_name():
    with pytest.raises(ValueError, match=r"unknown loss 'mean_square_error'.*'mse'.*'huber'"):
        compiled(loss="mean_square_error")


def test_unknown_metric_name():
    with pytest.raises(ValueError, match=r"unknown metric 'auc'.*a function or one of 'mse'"):
        compiled(metrics=["auc"])


def test_metrics_must_be_a_list():
    with pytest.raises(TypeError, match=r"metrics must be a list, e.g. metrics=\['mae'\]"):
        compiled(metrics="mae")


def test_unknown_optimizer_name():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamax'.*'sgd', 'adam'"):
        compiled(optimizer="adamax")


@pytest.mark.parametrize("make", [lambda: Dense(H, activation="swish"),
                                  lambda: SimpleRNN(H, activation="relux"),
                                  lambda: LSTM(H, recurrent_activation="hard_sigmoid"),
                                  lambda: Conv1D(2, 3, activation="gelu")])
def test_unknown_activation_name(make):
    with pytest.raises(ValueError, match=r"unknown activation '\w+': expected one of .*'tanh'.*'relu'"):
        make()


MISSPELLED = [  # a layer with one misspelled keyword, the keyword meant
    (lambda: SimpleRNN(20, return_sequence=True), "SimpleRNN", "return_sequences"),
    (lambda: LSTM(H, recurent_activation="tanh"), "LSTM", "recurrent_activation"),
    (lambda: GRU(H, reset_afer=False), "GRU", "reset_after"),
    (lambda: GRU(H, input_shap=[None, 1]), "GRU", "input_shape"),
    (lambda: Dense(H, activaton="relu"), "Dense", "activation"),
    (lambda: Conv1D(H, 2, dilation=2), "Conv1D", "dilation_rate"),
    (lambda: tinyrnn.layers.LayerNormalization(centre=False), "LayerNormalization", "center"),
    (lambda: tinyrnn.layers.BatchNormalization(momentun=0.9), "BatchNormalization", "momentum"),
    (lambda: tinyrnn.layers.TimeDistributed(Dense(H), nme="td"), "TimeDistributed", "name"),
    (lambda: tinyrnn.layers.RNN(tinyrnn.layers.LSTMCell(H), return_stat=True), "RNN", "return_state"),
    (lambda: tinyrnn.layers.InputLayer(input_shap=[None, 1]), "InputLayer", "input_shape"),
    (lambda: tinyrnn.layers.RNN(tinyrnn.layers.LSTMCell(8), return_sequence=True), "RNN", "return_sequences"),
    (lambda: tinyrnn.layers.GRUCell(H, reset_afer=False), "GRUCell", "reset_after"),
    (lambda: tinyrnn.layers.LSTMCell(H, unit_forget_bais=False), "LSTMCell", "unit_forget_bias"),
    (lambda: tinyrnn.layers.LSTMCell(8, recurent_dropout=0.1), "LSTMCell", "recurrent_dropout"),
]


@pytest.mark.parametrize("make, layer, meant", MISSPELLED, ids=[m[1] + "." + m[2] for m in MISSPELLED])
def test_misspelled_keyword_names_the_layer_and_the_closest_argument(make, layer, meant):
    with pytest.raises(TypeError, match=rf"^{layer}\(\) got an unexpected keyword argument '\w+' "
                                         rf"\(did you mean {meant}=\?\)\. {layer} takes: .*\b{meant}\b"):
        make()


class UsersCell(tinyrnn.layers.SimpleRNNCell):
    def __init__(self, units, gain=1.0, **kwargs):
        super().__init__(units, **kwargs)
        self.gain = gain


@pytest.mark.parametrize("make, cell, meant", [
    (lambda: tinyrnn.layers.SimpleRNNCell(20, return_sequence=True), "SimpleRNNCell", "return_sequences"),
    (lambda: UsersCell(H, stateful=True), "UsersCell", "stateful"),
])
def test_a_cell_keyword_of_the_layer_names_the_call_that_takes_it(make, cell, meant):
    """A cell refuses a keyword as a layer does; one that belongs to RNN is named with RNN's call."""
    expected = (f"{cell}() got an unexpected keyword argument '", f" (did you mean {meant}=? It is RNN's "
                f"argument, not the {cell}'s: RNN({cell}(...), {meant}=...)). {cell} takes: units, ")
    with pytest.raises(TypeError, match="^" + r"\w+'".join(map(re.escape, expected))):
        make()
    assert UsersCell(H, gain=2.0, activation="relu").gain == 2.0      # a user's cell hands the rest on


def test_a_keyword_like_no_other_is_named_with_the_valid_list():
    with pytest.raises(TypeError, match=r"^Flatten\(\) got an unexpected keyword argument 'xyz'\. "
                                        r"Flatten takes: input_shape, name"):
        tinyrnn.layers.Flatten(xyz=1)


def test_every_listed_argument_is_accepted():
    # the list the error shows is the truth: each name is a keyword the constructor takes
    assert "cell" not in SimpleRNN.argument_names()
    for name in ("activation", "use_bias", "return_sequences", "dropout", "input_shape", "name"):
        assert name in SimpleRNN.argument_names()
    layer = SimpleRNN(H, activation="relu", use_bias=False, return_sequences=True, return_state=False,
                      dropout=0.1, recurrent_dropout=0.1, input_shape=[None, D], name="rnn", trainable=True)
    assert (layer.name, layer.cell.activation.name, layer.cell.use_bias) == ("rnn", "relu", False)
    assert "reset_after" in GRU.argument_names() and "unit_forget_bias" in LSTM.argument_names()


def test_loss_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"loss must be a Loss instance or one of 'mse'"):
        compiled(loss=2)


def test_fit_before_compile():
    model = Sequential([Dense(1, input_shape=[D])])
    with pytest.raises(RuntimeError, match=r"call model.compile\(loss=..., optimizer=...\) before model.fit"):
        model.fit(series()[:, 0], targets(), verbose=0)


# --- backward before forward, or twice --------------------------------------------------------------
LAYERS = {"Dense": lambda: Dense(H), "SimpleRNN": lambda: SimpleRNN(H), "LSTM": lambda: LSTM(H),
          "GRU": lambda: GRU(H), "Conv1D": lambda: Conv1D(H, 2)}


@pytest.mark.parametrize("name", LAYERS)
def test_backward_before_forward(name):
    layer = LAYERS[name]()
    layer.build((None, T, D))
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward\(\) first"):
        layer.backward(numpy.ones((B, H), "float32"))


@pytest.mark.parametrize("name", LAYERS)
def test_backward_twice_after_one_forward(name):
    layer = LAYERS[name]()
    y = layer(series())
    layer.backward(numpy.ones_like(y))
    with pytest.raises(RuntimeError, match=r"each forward\(\) allows one backward\(\).*call forward again"):
        layer.backward(numpy.ones_like(y))
    layer.backward(numpy.ones_like(layer.forward(series())))  # a new forward allows a new backward


def test_model_backward_before_forward():
    model = compiled()
    model.build()
    with pytest.raises(RuntimeError, match=r"dense\w*: backward\(\) needs a forward\(\) first"):
        model.backward(numpy.ones((B, 1), "float32"))


# --- set_weights --------------------------------------------------------------------------------------
def test_layer_set_weights_with_the_wrong_count():
    layer = LSTM(H)
    layer.build((None, T, D))
    with pytest.raises(ValueError, match=r"expected 3 arrays \(kernel, recurrent_kernel, bias\), got 2"):
        layer.set_weights(layer.get_weights()[:2])


def test_layer_set_weights_with_the_wrong_shape():
    layer = LSTM(H)
    layer.build((None, T, D))
    kernel, recurrent, bias = layer.get_weights()
    with pytest.raises(ValueError, match=r"weight 'kernel' must have shape \(3, 8\), got \(8, 3\)"):
        layer.set_weights([kernel.T, recurrent, bias])


def test_set_weights_on_an_unbuilt_layer():
    with pytest.raises(RuntimeError, match="needs a built layer: give it input_shape="):
        Dense(H).set_weights([numpy.ones((D, H)), numpy.ones(H)])


def test_model_set_weights_with_the_wrong_count():
    model = compiled()
    with pytest.raises(ValueError, match=r"expected 5 arrays for this model "
                                         r"\(simple_rnn\w*: 3, dense\w*: 2\), got 4"):
        model.set_weights([numpy.ones(1)] * 4)  # the model builds first, then counts


def test_model_set_weights_with_the_wrong_shape():
    model = compiled()
    model.build()
    weights = model.get_weights()
    weights[3] = weights[3].T  # Dense kernel (H, 1) given as (1, H)
    with pytest.raises(ValueError, match=r"dense\w*: weight 'kernel' must have shape \(2, 1\), got \(1, 2\)"):
        model.set_weights(weights)


def test_model_set_weights_builds_first_or_asks_for_the_input_shape():
    with pytest.raises(ValueError, match=r"does not know its input shape yet: give the first layer input"):
        Sequential([Dense(1)]).set_weights([numpy.ones((D, 1)), numpy.ones(1)])
    model = Sequential([Dense(1, input_shape=[D])])
    model.set_weights([numpy.full((D, 1), 2.0), numpy.ones(1)])
    numpy.testing.assert_array_equal(model.predict(numpy.ones((1, D), "float32")), [[7.0]])


# --- backends -----------------------------------------------------------------------------------------
@pytest.fixture
def numpy_backend_after():
    yield
    backend.set_backend("numpy")


def test_cupy_backend_without_cupy(monkeypatch, numpy_backend_after):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(RuntimeError, match=r"needs CuPy, which is not installed.*pip install.*set_backend"):
        tinyrnn.set_backend("cupy")
    assert tinyrnn.get_backend() == "numpy" and backend.xp is numpy


@pytest.mark.parametrize("failure", ["driver", "no_device"])
def test_cupy_backend_without_a_gpu(monkeypatch, numpy_backend_after, failure):
    def device_count():
        if failure == "driver":
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return 0

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=device_count))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match=r"CuPy is installed but no (usable )?NVIDIA GPU was found.*"
                                           r"set_backend\('numpy'\)"):
        tinyrnn.set_backend("cupy")
    assert tinyrnn.get_backend() == "numpy" and backend.xp is numpy


def test_unknown_backend_name():
    with pytest.raises(ValueError, match=r"unknown backend 'torch': expected 'numpy' or 'cupy'"):
        tinyrnn.set_backend("torch")


# --- Conv1D kernels longer than a valid-padded input ------------------------------------------------
@pytest.mark.parametrize("kernel_size, dilation_rate, spans", [(4, 1, 4), (2, 5, 6)])
def test_conv1d_kernel_longer_than_a_valid_padded_input(kernel_size, dilation_rate, spans):
    layer = Conv1D(2, kernel_size, dilation_rate=dilation_rate)
    with pytest.raises(ValueError, match=rf"spans {spans} time steps, but the input has only T=3.*"
                                         r"padding='same' or padding='causal'"):
        layer(series(t=3))


def test_conv1d_kernel_too_long_is_caught_by_the_model_before_training():
    model = compiled(Conv1D(2, 4, input_shape=[None, D]), Dense(1))
    with pytest.raises(ValueError, match=r"needs T >= 4"):
        model.fit(series(t=3), targets(B, 1, 1), verbose=0)


# --- the shared checks themselves ---------------------------------------------------------------------
def test_float_dtype_checks_the_dtype_only_and_float_array_the_values_too():
    x = numpy.array([[numpy.nan, 1.0]])
    assert validation.float_dtype(x, "x") is x  # the check layers can afford on every call
    with pytest.raises(ValueError, match=r"x contains 1 NaN or Inf value\(s\), the first at index \(0, 0\)"):
        validation.float_array(x, "x")
    assert validation.float_array([[0.5, 1.0]], "x").dtype == numpy.float64  # lists become arrays


def test_zero_length_axes_are_named_with_the_course_letters():
    with pytest.raises(ValueError, match=r"\(B, D\): D = 0"):
        validation.check_samples(numpy.ones((2, 0)), "x")
    with pytest.raises(ValueError, match=r"must be an array of samples \(B, \.\.\.\), got a scalar"):
        validation.check_samples(numpy.float32(1.0), "x")
    assert validation.axis_letters(3) == "(B, T, D)" and validation.axis_letters(5) == "(B, ...)"
