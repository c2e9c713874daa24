"""Make tests/data/readme_model_weights.npz: the weights of README's example after its training.

Run from the repository root (about three minutes on 2 cores):

    python tests/data/make_readme_model_weights.py

It runs README's python example as printed (seed 42, the course's one-step data, 20 epochs of
Adam, float32) and saves ``model.get_weights()`` in order as ``w0, w1, ...``. The test
``test_gradcheck.py::test_the_readme_example_passes_on_its_trained_weights`` checks these trained
weights as README does, so a change to the checker that fails README's example fails a test.
"""

import pathlib

import numpy

import tinyrnn
from tinyrnn import Sequential
from tinyrnn.data import load_course_data
from tinyrnn.layers import Dense, SimpleRNN

tinyrnn.set_random_seed(42)
data = load_course_data("one_step")
model = Sequential([SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
                    SimpleRNN(20), Dense(1)])
model.compile(loss="mse", optimizer="adam")
model.fit(*data["train"], epochs=20, validation_data=data["valid"], verbose=0)
out = pathlib.Path(__file__).with_name("readme_model_weights.npz")
numpy.savez_compressed(out, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
print("wrote", out)
