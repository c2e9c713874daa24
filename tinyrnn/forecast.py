"""Forecasting with trained models: the naive baseline, iterative multi-step
forecasts and MC-dropout error bars.

Shapes: B series, T input time steps, one feature per step, ``n_ahead``
future values to forecast. Every function takes NumPy arrays (or anything
``model.predict`` takes) and returns NumPy arrays.

- ``naive_forecast``: tomorrow looks like today, y_hat[t + k] = x[T] for every
  k. The baseline every model must beat (the course's validation MSE: 0.0202
  one step ahead, 0.257 ten steps ahead).
- ``iterative_forecast``: a one-step model forecasts one value, the value is
  appended to the input, and the model runs again, ``n_ahead`` times; errors
  compound, which is why a model that outputs all ``n_ahead`` values at once
  does better.
- ``mc_dropout``: keep dropout on at inference and run the model many times;
  the mean of the stochastic forecasts is the forecast and their standard
  deviation is an error bar (Gal and Ghahramani's MC Dropout).
"""

from __future__ import annotations

import numpy


def naive_forecast(X, n_ahead: int = 1) -> numpy.ndarray:
    """The last observed value, repeated: y_hat[b, k] = X[b, T - 1, 0] for k < n_ahead.

    Parameters
    ----------
    X : array (B, T, 1), the input series.
    n_ahead : int >= 1, how many future values to forecast.

    Returns
    -------
    Y_pred : array (B, n_ahead), as the course's ``np.tile(X_valid[:, -1], n_ahead)``.
    """
    X = numpy.asarray(X)
    if X.ndim != 3 or X.shape[1] == 0:
        raise ValueError(f"naive_forecast expects series X of shape (B, T, 1), got shape {X.shape}")
    if isinstance(n_ahead, bool) or not isinstance(n_ahead, (int, numpy.integer)) or n_ahead < 1:
        raise ValueError(f"n_ahead must be a positive integer, got {n_ahead!r}")
    last = X[:, -1, -1:]                                 # (B, 1)
    return numpy.repeat(last, n_ahead, axis=1)           # (B, n_ahead)


def iterative_forecast(model, X, n_ahead: int = 10, batch_size: int = 32) -> numpy.ndarray:
    """Forecast ``n_ahead`` steps with a one-step model by feeding its forecasts back.

    At step k the model reads the series extended by its own k previous
    forecasts (the input grows by one step each time, as in the course):

        y_hat_k = model(x_1 .. x_T, y_hat_1 .. y_hat_{k-1})      k = 1 .. n_ahead

    Parameters
    ----------
    model : a trained one-step model: (B, T', 1) -> (B, 1) for any T' (a
        recurrent model; a Flatten + Dense model only reads a fixed length).
    X : array (B, T, 1), the observed series.
    n_ahead : int >= 1.

    Returns
    -------
    Y_pred : array (B, n_ahead), the forecasts y_hat_1 .. y_hat_{n_ahead}.
    """
    X = numpy.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"iterative_forecast expects series X of shape (B, T, 1), got shape {X.shape}")
    if isinstance(n_ahead, bool) or not isinstance(n_ahead, (int, numpy.integer)) or n_ahead < 1:
        raise ValueError(f"n_ahead must be a positive integer, got {n_ahead!r}")
    T = X.shape[1]
    for _ in range(n_ahead):
        y_next = model.predict(X, batch_size=batch_size)        # (B, 1)
        X = numpy.concatenate([X, y_next[:, None, :].astype(X.dtype)], axis=1)  # (B, T + k, 1)
    return X[:, T:, 0]                                          # (B, n_ahead)


def mc_dropout(model, x, n_samples: int = 100, batch_size: int = 32):
    """MC Dropout: the mean and standard deviation of ``n_samples`` stochastic forecasts.

    Each pass runs ``model.predict(x, training=True)``, so every dropout layer
    (and a recurrent layer's ``dropout`` / ``recurrent_dropout``) draws new
    masks:

        mean = (1/N) sum_n y_hat^(n),   std = sqrt((1/N) sum_n (y_hat^(n) - mean)^2)

    ``training=True`` also switches BatchNormalization to batch statistics
    (and updates its moving averages), as ``model(x, training=True)`` does in
    Keras. A model without dropout gives std == 0.

    Parameters
    ----------
    model : a trained model.
    x : array (B, ...), the inputs.
    n_samples : int >= 1, N, the number of stochastic passes (the book uses 100).

    Returns
    -------
    (mean, std) : two arrays of the model's output shape, e.g. (B, T, 10).
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, numpy.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    samples = numpy.stack([model.predict(x, batch_size=batch_size, training=True)
                           for _ in range(n_samples)])          # (N, B, ...)
    # float64 statistics: N equal float32 samples give exactly their value and std 0
    mean, std = samples.mean(axis=0, dtype=numpy.float64), samples.std(axis=0, dtype=numpy.float64)
    return mean.astype(samples.dtype), std.astype(samples.dtype)
