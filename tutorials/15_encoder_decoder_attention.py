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
# # 15. Encoder, decoder, attention: translating dates
#
# People write a date in many ways ("Monday, April 22nd, 2019", "22/04/2019",
# "22 APR 2019"); we want one: "2019-04-22". An **encoder** reads the input
# one character at a time and sums it up in its final states; a **decoder**
# starts from those states and writes the output one character at a time.
# Then we give the decoder **attention**: at every output step it looks back
# at all of the encoder's outputs, not only at its last state.
#
# The data is generated here, from a seed (`tinyrnn.dates`), so nothing is
# downloaded. We build both models with the functional API, check their
# gradients, train them with **teacher forcing**, and translate by **feeding
# back the decoder's own predictions**, greedily and with **beam search**.
#
# Set `TINYRNN_QUICK=1` for a few-second run (the numbers then mean little).

# %%
import os
import time

import numpy

import tinyrnn
from tinyrnn import Input, Model, dates, gradcheck, seq2seq
from tinyrnn.bleu import corpus_bleu
from tinyrnn.chapter import limit_blas_threads
from tinyrnn.layers import LSTM, Attention, Concatenate, Dense, Embedding
from tinyrnn.optimizers import Adam
from tinyrnn.plot import plot_attention, plot_learning_curves, show

limit_blas_threads(1)  # small matrices train fastest on one BLAS thread (see tutorial 11)
QUICK = os.environ.get("TINYRNN_QUICK") == "1"        # set by the tests: small data, one epoch
N_TRAIN = 300 if QUICK else 6000
EPOCHS = 1 if QUICK else 10
UNITS = 16 if QUICK else 64

# %% [markdown]
# ## The task and its vocabularies
#
# `load_dates` gives train / validation / test pairs with no input string in two
# splits. A `CharVocabulary` turns characters into ids; ids 0, 1 and 2 are the
# padding, the start and the end tokens.

# %%
splits = dates.load_dates(n_train=N_TRAIN, n_valid=200, n_test=500, seed=42)
source, target = dates.input_vocabulary(), dates.target_vocabulary()
for x, y in zip(splits.x_train[:4], splits.y_train[:4]):
    print(f"{x!r:32} -> {y!r}")
print(len(source), "input ids:", source.tokens[3:])
print(len(target), "target ids:", target.tokens)

# %% [markdown]
# Inputs have different lengths. We pad them on the **left**
# (`seq2seq.pad_left`), so the encoder's last step always reads the last
# character and its final state is not diluted by padding.
#
# **Teacher forcing.** To train, the decoder reads the *right* previous
# characters: its inputs are the target shifted right behind a start token,
# and it must predict the target followed by the end token. Every step is
# then trained at once, like a sequence-to-sequence model.

# %%
x_train = seq2seq.pad_left(source.encode(splits.x_train))
decoder_inputs, decoder_targets = seq2seq.teacher_forcing(target, splits.y_train)
print("encoder ids  ", x_train[0])
print("decoder input", decoder_inputs[0], "  (1 = start)")
print("target       ", decoder_targets[0], "  (2 = end)")

# %% [markdown]
# ## The plain encoder-decoder, step by step
#
# The encoder is an LSTM with `return_state=True`: we keep its final states
# $h$ and $c$ and drop its outputs. The decoder is an LSTM given those states
# with `initial_state`, returning a sequence; a `Dense` softmax gives the
# probability of the next character at every step.

# %%
def plain_encoder_decoder(units=UNITS, embedding_dim=16):
    encoder_ids, decoder_ids = Input(shape=[None]), Input(shape=[None])
    encoder = LSTM(units, return_state=True)
    _, h, c = encoder(Embedding(len(source), embedding_dim)(encoder_ids))
    decoder = LSTM(units, return_sequences=True, return_state=True)
    decoded, _, _ = decoder(Embedding(len(target), embedding_dim)(decoder_ids), initial_state=[h, c])
    probabilities = Dense(len(target), activation="softmax")(decoded)
    return Model(inputs=[encoder_ids, decoder_ids], outputs=probabilities)


# %% [markdown]
# ## With attention
#
# Now the encoder returns its whole sequence of outputs (B, Tx, H) too. At each
# output step the decoder's output is the **query**; it is compared with every
# encoder output (Luong's dot product), the scores go through a softmax, and
# the **context** is the weighted average of the encoder outputs. The context
# is concatenated with the decoder's output before the `Dense` layer.

# %%
def attention_encoder_decoder(units=UNITS, embedding_dim=16):
    encoder_ids, decoder_ids = Input(shape=[None]), Input(shape=[None])
    encoder = LSTM(units, return_sequences=True, return_state=True)
    encoder_outputs, h, c = encoder(Embedding(len(source), embedding_dim)(encoder_ids))
    decoder = LSTM(units, return_sequences=True, return_state=True)
    decoded, _, _ = decoder(Embedding(len(target), embedding_dim)(decoder_ids), initial_state=[h, c])
    context = Attention()([decoded, encoder_outputs])            # (B, Ty, H)
    both = Concatenate()([decoded, context])                     # (B, Ty, 2H)
    probabilities = Dense(len(target), activation="softmax")(both)
    return Model(inputs=[encoder_ids, decoder_ids], outputs=probabilities)


# %% [markdown]
# `tinyrnn.seq2seq.EncoderDecoder` builds exactly these graphs
# (`attention=None` or `"luong"`, or `"bahdanau"` for `AdditiveAttention`), and
# keeps the layers to translate with afterwards. We use it from here on.
#
# ## Is every gradient right?
#
# A small model (distinct sizes, random weights, float64): the gradient of
# every weight, from both embeddings to the output layer, against finite
# differences. The encoder's weights get their gradient only through the
# decoder's initial states and the attention. Expect a worst relative error
# around 1e-8 or below.

# %%
tinyrnn.set_random_seed(0)
with tinyrnn.float_precision("float64"):
    small = seq2seq.EncoderDecoder(7, 6, embedding_dim=3, units=4, attention="luong")
    rng = numpy.random.default_rng(1)
    x_small = [rng.integers(0, 7, size=(2, 5)), rng.integers(0, 6, size=(2, 4))]
    small.model.predict(x_small)
    for layer in small.model.layers:
        for value in layer.params.values():
            value[...] = rng.normal(scale=0.6, size=value.shape)
report = gradcheck(small.model, x_small)
print(report)

# %% [markdown]
# ## Training both, with teacher forcing
#
# Same data, same sizes, same epochs. Expect the attention model to learn much
# faster: it can read the day, month and year where they are, while the plain
# model must carry them all in 2 x 64 numbers.

# %%
valid_inputs, valid_targets = seq2seq.teacher_forcing(target, splits.y_valid)
validation = ([seq2seq.pad_left(source.encode(splits.x_valid)), valid_inputs], valid_targets)
models, histories = {}, {}
for name, attention in [("plain", None), ("attention", "luong")]:
    tinyrnn.set_random_seed(42)
    model = seq2seq.EncoderDecoder(len(source), len(target), embedding_dim=16, units=UNITS,
                                   attention=attention)
    model.model.compile(loss="sparse_categorical_crossentropy", optimizer=Adam(0.003))
    started = time.perf_counter()
    histories[name] = model.model.fit(
        [x_train, decoder_inputs], decoder_targets, epochs=EPOCHS, batch_size=64, verbose=0,
        validation_data=validation)
    models[name] = model
    losses = histories[name].history
    print(f"{name:9}: {time.perf_counter() - started:5.1f} s, final loss {losses['loss'][-1]:.4f}, "
          f"validation {losses['val_loss'][-1]:.4f}")

# %%
show(plot_learning_curves(histories["attention"], title="attention encoder-decoder",
                          loss_name="cross-entropy"), "15_learning_curves")

# %% [markdown]
# ## Teacher forcing vs feeding back predictions
#
# With teacher forcing the decoder always reads the right previous character.
# To translate, there is no right previous character: the decoder reads **its
# own** last prediction, its states carried from step to step, so writing n
# characters costs n decoder steps (`EncoderDecoder.decode_step`). One mistake
# then feeds the next steps with a wrong input.
#
# We compare the per-character accuracy in both modes, and the accuracy of
# whole dates. Expect the free-running figures to be lower, most of all for a
# poorly trained model.

# %%
x_test = seq2seq.pad_left(source.encode(splits.x_test))
test_inputs, test_targets = seq2seq.teacher_forcing(target, splits.y_test)
for name, model in models.items():
    forced = model.model.predict([x_test, test_inputs]).argmax(axis=-1)     # right previous characters
    free = model.translate(x_test, max_length=11)                           # its own predictions
    written = target.decode(free)
    print(f"{name:9}: characters right, teacher-forced {seq2seq.token_accuracy(forced, test_targets):.1%}, "
          f"fed back {seq2seq.token_accuracy(free, test_targets):.1%};  whole dates right "
          f"{seq2seq.sequence_accuracy(written, splits.y_test):.1%};  "
          f"BLEU {corpus_bleu(written, splits.y_test):.3f}")

# %% [markdown]
# ## The decoding loop, by hand
#
# This is what `translate` does for greedy decoding: encode once, then one
# decoder step per character, each reading the token written at the step before.

# %%
model = models["attention"]
states = model.encode(x_test[:3])                 # [h, c, encoder outputs]
tokens = numpy.full(3, target.START)
written = []
for _ in range(11):                               # one decoder step per character
    log_probs, states = model.decode_step(tokens, states)
    tokens = log_probs.argmax(axis=1)             # greedy: the most probable character
    written.append(tokens)
print(target.decode(numpy.stack(written, axis=1)), "for", splits.x_test[:3])

# %% [markdown]
# ## Where does the decoder look?
#
# The attention weights of every output character (rows) over the input
# characters (columns). Expect each digit of the year to look at the year's
# digits, the month's digits at the month's name, and so on.

# %%
longest = max(splits.x_test, key=len)
ids = seq2seq.pad_left(source.encode([longest]))
out, weights = model.attention_weights(ids, max_length=11)
row = out[0].tolist()
n = row.index(target.END) + 1 if target.END in row else len(row)
show(plot_attention(weights[0, :n], [source.tokens[i] if i else "" for i in ids[0]],
                    [target.tokens[i] for i in row[:n]], title=repr(longest)), "15_attention")

# %% [markdown]
# ## Greedy decoding vs beam search
#
# Greedy decoding keeps the most probable character at each step; beam search
# keeps the `beam_width` most probable partial outputs (by total
# log-probability) and returns the best finished one. `beam_width=1` is greedy
# decoding. On a well-trained model both mostly agree; they differ where the
# model hesitates.

# %%
hard = sorted(range(len(splits.x_test)), key=lambda k: -len(splits.x_test[k]))[:5]
ids = seq2seq.pad_left(source.encode([splits.x_test[k] for k in hard]))
for name, model in models.items():
    greedy = target.decode(model.translate(ids, max_length=11))
    beam = target.decode(model.translate(ids, max_length=11, beam_width=3))
    for k, g, b in zip(hard, greedy, beam):
        print(f"{name:9} {splits.x_test[k]!r:34} greedy {g:12} beam {b:12} target {splits.y_test[k]}")

# %% [markdown]
# ## Bad input gets a clear error
#
# A character the vocabulary has never seen is named, with the vocabulary:

# %%
try:
    source.encode(["22 févr. 2019"])
except ValueError as error:
    print(error)
