# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13. Characters to Shakespeare
#
# A character-level language model reads text one character at a time and
# predicts the next one. Trained on Shakespeare, then fed its own guesses, it
# writes pseudo-Shakespeare. This is the book's character model (chapter 16):
#
# $$\text{ids } (B, T) \to \text{Embedding}(39, 16) \to \text{GRU}(128) \to
# \text{Dense}(39, \text{softmax}) \to p(c_{t+1} \mid c_1 \dots c_t)\ (B, T, 39)$$
#
# trained with sparse categorical cross-entropy: at every step the loss is
# $-\log p(\text{the true next character})$, in nats.
#
# Five steps: tokenize, cut the text into windows, train (stateful: the
# state runs on from one batch to the next), read the loss as a language
# model's figures, and sample text at several temperatures.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean nothing).

# %%
import os

import numpy

import tinyrnn
from tinyrnn import text
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.optimizers import Nadam
from tinyrnn.plot import show  # inline in Jupyter; a PNG in $TINYRNN_TUTORIAL_OUT
from tinyrnn.text_chapter import char_model, evaluate_streams, stacked_batches

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, few epochs
TRAIN_CHARS = 6_000 if QUICK else 300_000             # the book trains on 1,000,000 characters
VALID_CHARS = 2_000 if QUICK else 20_000
STREAMS, LENGTH = (4, 25) if QUICK else (16, 50)
EPOCHS = 1 if QUICK else 6

# %% [markdown]
# ## 1. Tokenize: characters to ids
#
# The corpus ships with tinyrnn (no download). `CharTokenizer` works like
# Keras's `TextVectorization(split="character", standardize="lower")`:
# `adapt` counts the characters and numbers them from the most frequent,
# after Keras's two reserved ids (0 padding, 1 unknown). The book then
# subtracts 2; `special_tokens=False` numbers that way directly.
#
# Expect 1,115,394 characters; 41 Keras ids, 39 book ids; the most frequent
# characters are the space, "e", "t" and "o".

# %%
corpus = text.shakespeare_text()
print(f"{len(corpus):,} characters; it starts:\n{corpus[:80]}")

keras_style = text.CharTokenizer()                     # Keras's numbering: 0 pad, 1 [UNK], then characters
keras_style.adapt(corpus)
print("Keras ids:", keras_style.vocabulary_size(), keras_style.get_vocabulary()[:6])

tokenizer = text.CharTokenizer(special_tokens=False)   # the book's: Keras's ids minus 2
tokenizer.adapt(corpus)
print("book ids: ", tokenizer.vocabulary_size(), tokenizer.get_vocabulary()[:4])

# %% [markdown]
# Encoding lowercases; decoding the ids gives the lowercased text back.
# Expect `[19, 4, 2, 0, ...]` style ids and `True`.

# %%
ids = tokenizer("To be, or not to be")
print(ids)
print(repr(tokenizer.decode(ids)), tokenizer.decode(ids) == "To be, or not to be".lower())

# %% [markdown]
# ## 2. Windows: inputs and targets
#
# The target of a window is the same window shifted by one character. The
# book's *stateless* training takes every window of 101 characters (shift 1,
# shuffled): 999,900 windows of its 1,000,000 training characters, in batches
# of 32. `WindowBatches` gathers each batch only when it is reached, so
# nothing of size 1M x 101 is ever built.
#
# Expect 31,247 batches an epoch (the book's steps per epoch), and a target
# row equal to its input row moved one to the left.

# %%
data = text.load_shakespeare()                         # book ids, split 1,000,000 / 60,000 / 55,394
print(len(data.train), len(data.valid), len(data.test))
windows = text.WindowBatches(data.train, length=100, batch_size=32)
print(windows)
x, y = next(iter(windows))
print(repr(tokenizer.decode(x[0, :30])))
print(repr(tokenizer.decode(y[0, :30])))

# %% [markdown]
# The *stateful* way cuts the text into B contiguous streams and reads them
# side by side, window after window, so row b of batch k + 1 continues row b
# of batch k. A stateful GRU then keeps each row's state from one batch to
# the next: it sees context longer than a window, and the gradient still
# stops at the batch boundary (truncated backpropagation through time).
#
# Expect row 0 of batch 1 to start where row 0 of batch 0 ended.

# %%
streams = text.StatefulBatches(data.train, length=20, batch_size=4)
batches = iter(streams)
(x0, _), (x1, _) = next(batches), next(batches)
print(streams)
print(repr(tokenizer.decode(x0[0])), "->", repr(tokenizer.decode(x1[0])))

# %% [markdown]
# ## 3. Train a small stateful model
#
# The book's model on part of the text (the text chapter of
# `python -m tinyrnn chapter` trains on all of it). The GRU is stateful for
# batches of `STREAMS` rows; each epoch starts with `reset_states()`, and
# `fit` reads the batches in order (`shuffle=False`: shuffling would cut the
# streams). Validation reads the validation text as streams too.
#
# Expect the validation loss to fall to about **1.9 nats** in three epochs on
# 300,000 characters and then stay there while the training loss goes on
# falling (to about 1.43): a third of the text is too little for 60,000
# weights, and the model starts to learn it by heart. The book reaches 1.48
# on all of it; guessing uniformly among 39 characters scores ln 39 = 3.66.
# About a minute.

# %%
tinyrnn.set_random_seed(42)
model = char_model(stateful=True, batch_size=STREAMS)
model.compile(loss="sparse_categorical_crossentropy", optimizer=Nadam(learning_rate=0.005),
              metrics=["accuracy"])
X, Y = stacked_batches(text.StatefulBatches(data.train[:TRAIN_CHARS], LENGTH, STREAMS))
curve = {"loss": [], "val_loss": []}
for epoch in range(EPOCHS):
    model.reset_states()                                           # read the streams from their start
    logs = model.fit(X, Y, batch_size=STREAMS, epochs=1, shuffle=False, verbose=0).history
    val_loss, val_accuracy = evaluate_streams(model, data.valid[:VALID_CHARS], streams=4, length=LENGTH)
    curve["loss"].append(logs["loss"][0])
    curve["val_loss"].append(val_loss)
    print(f"epoch {epoch + 1}: loss {logs['loss'][0]:.3f}, val_loss {val_loss:.3f}, "
          f"val_accuracy {val_accuracy:.3f}")

# %% [markdown]
# ## 4. What the loss means
#
# The loss is nats per character. Divided by ln 2 it is **bits per
# character** (what a compressor would need); its exponential is the
# **perplexity**: the model is as unsure as if it chose uniformly among that
# many characters. Expect our small model between the book's 4.4 and the
# uniform 39.

# %%
for name, loss in (("ours", curve["val_loss"][-1]), ("book, stateful", 1.4786), ("uniform", numpy.log(39))):
    figures = text.language_model_figures(loss)
    print(f"{name:>15}: {figures['nats']:.3f} nats = {figures['bits_per_char']:.3f} bits/char, "
          f"perplexity {figures['perplexity']:.1f}")

# %% [markdown]
# ## 5. Sampling, and the temperature
#
# To write, the model reads a prompt, draws the next character from its
# output distribution, feeds it back, and so on. `text.generate` does it
# with a stateful copy of the model (batch 1): each new character costs one
# time step, not a rerun of the whole text. The book rescales the
# distribution with a temperature $T$ before drawing:
#
# $$p_T(c) = \frac{p(c)^{1/T}}{\sum_j p(j)^{1/T}} = \mathrm{softmax}(\log p / T)$$
#
# Expect: at T = 0.01 the most likely character every time, which soon
# repeats itself; at T = 1 the model's own guesses, word-like; at T = 2
# nearly random characters. The figure shows $p_T$ for one distribution.

# %%
for temperature in (0.01, 1.0, 2.0):
    tinyrnn.set_random_seed(0)
    print(f"--- T = {temperature}")
    print(text.generate(model, "To be or not to be", 40 if QUICK else 200, temperature=temperature,
                        tokenizer=data.tokenizer))

# %%
from matplotlib import pyplot  # noqa: E402  (only for the figure)

reader = text.stateful_copy(model)                     # batch 1: the trained model is fixed to STREAMS rows
probabilities = reader.predict(data.tokenizer("to be or not to b")[None], batch_size=1)[0, -1]   # (39,)
top = numpy.argsort(probabilities)[::-1][:8]           # the 8 likeliest next characters
fig, axes = pyplot.subplots(1, 2, figsize=(10, 3.5), squeeze=False, layout="tight")
for temperature in (0.3, 1.0, 2.0):
    p_t = numpy.exp(numpy.log(probabilities) / temperature)
    axes[0, 0].plot(range(8), (p_t / p_t.sum())[top], "o-", label=f"T = {temperature}")
axes[0, 0].set_xticks(range(8), [repr(data.tokenizer.get_vocabulary()[i]) for i in top])
axes[0, 0].set_title("next character after 'to be or not to b'")
axes[0, 0].set_ylabel("$p_T$")
axes[0, 0].legend()
axes[0, 1].plot(range(1, EPOCHS + 1), curve["loss"], ".-", label="training")
axes[0, 1].plot(range(1, EPOCHS + 1), curve["val_loss"], ".-", label="validation")
axes[0, 1].axhline(1.4786, color="gray", ls="--", label="book (all the text, 10 epochs)")
axes[0, 1].set_xlabel("epoch")
axes[0, 1].set_ylabel("loss (nats per character)")
axes[0, 1].legend()
show(fig, "13_temperature_and_curves")

# %% [markdown]
# ## What to remember
#
# - A language model's loss is a cross-entropy per character: nats, bits per
#   character (/ ln 2) or perplexity (exp).
# - Stateless windows (shift 1, shuffled) or stateful streams (row b of
#   batch k + 1 continues row b of batch k, states reset each epoch).
# - Generation feeds the model its own samples; a stateful copy makes each
#   character one step. The temperature trades repetition (T -> 0) for noise.
