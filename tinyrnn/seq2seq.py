"""Encoder-decoder models: teacher forcing to train, a loop of decoder steps to translate.

Shapes: B batch, Tx input steps, Ty output steps, E embedding size, H units, V target
vocabulary size (its ids: 0 padding, 1 start, 2 end, as ``tinyrnn.dates.CharVocabulary``),
K beam width.

Training (teacher forcing). The encoder reads the input ids; its final states start the
decoder, which reads the *right* previous tokens (the targets shifted right behind a start
token) and predicts the next one at every step, all steps at once::

    encoder ids (B, Tx) -> Embedding -> LSTM(return_state) -> states [h, c] (and outputs (B, Tx, H))
    decoder ids (B, Ty) = [start, y_1, ..., y_{Ty-1}]
                        -> Embedding -> LSTM(initial_state=states) -> (B, Ty, H)
                        [-> Attention([decoder outputs, encoder outputs]) -> concatenated to them]
                        -> Dense(V, softmax) -> p(y_t | y_<t, x)  (B, Ty, V)
    targets (B, Ty) = [y_1, ..., y_{Ty-1}, end], sparse cross-entropy

With attention (Luong: ``Attention``, dot scores; Bahdanau: ``AdditiveAttention``) every
decoder step reads a weighted average of *all* the encoder's outputs, not only its last state.

Translating (inference) has no right previous token: the decoder is run one step at a time
on its own last prediction, its states carried from step to step, so writing n tokens costs
n decoder steps (the same trained layers, called on one step with ``initial_state``):

    states = encoder's final states;  token = start
    repeat: log p = step(token, states);  token = argmax log p (greedy)  until end

Beam search keeps the K best partial outputs (by total log-probability) instead of one;
``beam_width=1`` is greedy decoding. ``greedy_decode`` and ``beam_search`` work on any
``step(tokens, states) -> (log_probs, new_states)``, so they are tested on a small fake model.

Inputs are padded on the left (``pad_left``), so the encoder's last step is always the
last character, and no mask is needed for its final state to be right. Decoder inputs and
targets are padded on the right, to the same length (start + y and y + end): the decoder's
``Embedding(mask_zero=True)`` masks the padded steps, and the mask flows through the decoder
(masked steps carry its states), the attention (as the query mask) and the output layer to
the loss, which leaves them out (masked sparse cross-entropy).
"""

from __future__ import annotations

import numpy

from tinyrnn import backend
from tinyrnn.dates import CharVocabulary
from tinyrnn.layers import GRU, LSTM, AdditiveAttention, Attention, Concatenate, Dense, Embedding, Input
from tinyrnn.models import Model

PAD, START, END = CharVocabulary.PAD, CharVocabulary.START, CharVocabulary.END
ATTENTIONS = {"luong": Attention, "bahdanau": AdditiveAttention}
CELLS = {"lstm": LSTM, "gru": GRU}


# --- data for teacher forcing -------------------------------------------------------------------
def pad_left(ids):
    """Right-padded ids (B, T) moved to the right end of each row: [a, b, 0, 0] -> [0, 0, a, b]."""
    ids = numpy.asarray(ids)
    out = numpy.zeros_like(ids)
    for b, row in enumerate(ids):
        n = int((row != PAD).sum())
        if n:
            out[b, -n:] = row[:n]
    return out


def teacher_forcing(vocabulary: CharVocabulary, targets, length: int | None = None):
    """(decoder inputs, decoder targets), each (B, Ty) int: [start, y_1, ..., y_n] and
    [y_1, ..., y_n, end], right-padded with 0; Ty = the longest target + 1, or ``length``."""
    return (vocabulary.encode(targets, start=True, length=length),
            vocabulary.encode(targets, end=True, length=length))


# --- the models ------------------------------------------------------------------------------------
class EncoderDecoder:
    """The layers of an encoder-decoder, its training model and its translation loop.

    Parameters
    ----------
    input_vocabulary_size, target_vocabulary_size : ids of the inputs and of the targets
        (``len(vocabulary)``, the special tokens counted).
    embedding_dim : E, the size of both embeddings.
    units : H, the encoder's and the decoder's units (the encoder's states start the decoder).
    cell : "lstm" (states h, c) or "gru" (state h).
    attention : None (the plain encoder-decoder), "luong" (``Attention``, dot-product scores)
        or "bahdanau" (``AdditiveAttention``).

    Attributes
    ----------
    model : ``Model`` [encoder ids (B, Tx), decoder inputs (B, Ty)] -> probabilities (B, Ty, V),
        to ``compile`` and ``fit`` with teacher forcing (``teacher_forcing``).
    """

    def __init__(self, input_vocabulary_size: int, target_vocabulary_size: int, embedding_dim: int = 16,
                 units: int = 64, cell: str = "lstm", attention: str | None = None):
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if attention is not None and attention not in ATTENTIONS:
            raise ValueError(f"attention must be None or one of {sorted(ATTENTIONS)}, got {attention!r}")
        self.cell, self.attention_kind = cell, attention
        recurrent = CELLS[cell]
        self.encoder_embedding = Embedding(input_vocabulary_size, embedding_dim, name="encoder_embedding")
        self.encoder = recurrent(units, return_sequences=attention is not None, return_state=True,
                                 name="encoder")
        self.decoder_embedding = Embedding(target_vocabulary_size, embedding_dim, mask_zero=True,
                                           name="decoder_embedding")
        self.decoder = recurrent(units, return_sequences=True, return_state=True, name="decoder")
        self.attention = None if attention is None else ATTENTIONS[attention](name="attention")
        self.concatenate = Concatenate(name="decoder_and_context")
        self.output_layer = Dense(target_vocabulary_size, activation="softmax", name="next_token")
        self.model = self._training_model()

    def _training_model(self) -> Model:
        """The graph of teacher forcing (the module docstring's picture)."""
        encoder_ids = Input(shape=[None], name="encoder_ids")                # (B, Tx)
        decoder_ids = Input(shape=[None], name="decoder_ids")                # (B, Ty)
        encoder_outputs, *states = self.encoder(self.encoder_embedding(encoder_ids))
        decoded, *_ = self.decoder(self.decoder_embedding(decoder_ids), initial_state=states)
        if self.attention is not None:
            context = self.attention([decoded, encoder_outputs])         # (B, Ty, H): a mix of the inputs
            decoded = self.concatenate([decoded, context])                # (B, Ty, 2H)
        probabilities = self.output_layer(decoded)
        return Model(inputs=[encoder_ids, decoder_ids], outputs=probabilities, name=f"{self.name}")

    @property
    def name(self) -> str:
        attention = f"_{self.attention_kind}_attention" if self.attention else ""
        return f"{self.cell}_encoder_decoder{attention}"

    # --- inference: one decoder step at a time ------------------------------------------------
    def encode(self, encoder_ids) -> list:
        """The decoding loop's first states: [*decoder states (each (B, H)), encoder outputs (B, Tx, H)]
        (the encoder outputs only with attention; they ride along unchanged, one copy per beam)."""
        encoder_ids = numpy.asarray(encoder_ids)
        if encoder_ids.ndim != 2:
            raise ValueError(f"encoder ids must be (B, Tx) integers, got shape {encoder_ids.shape}; "
                             "for one text: ids[None]")
        outputs, *states = self.encoder.forward(self.encoder_embedding.forward(encoder_ids))
        return states + ([outputs] if self.attention is not None else [])

    def decode_step(self, tokens, states, return_attention_scores: bool = False):
        """One decoder step for N rows (inputs, or inputs times beams).

        Parameters
        ----------
        tokens : (N,) int, each row's previous token (``START`` at the first step).
        states : ``encode``'s list: the decoder's states (each (N, H)) [+ encoder outputs (N, Tx, H)].

        Returns
        -------
        (log_probs (N, V), new states (same list layout)), plus the attention weights (N, Tx)
        with ``return_attention_scores`` (None without attention).

        Raises
        ------
        ValueError
            States of the wrong number or size for the decoder (the decoder's ``initial_state``
            check names the shapes it expects and the ones it got).
        """
        tokens = numpy.asarray(tokens)
        *decoder_states, encoder_outputs = states if self.attention is not None else (*states, None)
        x = self.decoder_embedding.forward(tokens[:, None])                      # (N, 1, E)
        decoded, *new_states = self.decoder.forward([x, *decoder_states])       # (N, 1, H)
        weights = None
        if self.attention is not None:
            context, weights = self.attention.forward([decoded, encoder_outputs],
                                                      return_attention_scores=True)   # (N, 1, H), (N, 1, Tx)
            decoded = self.concatenate.forward([decoded, context])
            weights = weights[:, 0]
        probabilities = self.output_layer.forward(decoded)[:, 0]                  # (N, V)
        with numpy.errstate(divide="ignore"):
            log_probs = numpy.log(backend.to_numpy(probabilities))
        new_states = new_states + ([encoder_outputs] if self.attention is not None else [])
        if return_attention_scores:
            return log_probs, new_states, None if weights is None else backend.to_numpy(weights)
        return log_probs, new_states

    def translate(self, encoder_ids, max_length: int, beam_width: int = 1):
        """Output ids (B, <= max_length) for input ids (B, Tx): greedy (``beam_width=1``) or beam search.

        Each row ends with ``END`` (if written within ``max_length``), then ``PAD``."""
        states = self.encode(encoder_ids)
        if beam_width == 1:
            return greedy_decode(self.decode_step, states, len(encoder_ids), max_length)
        return beam_search(self.decode_step, states, len(encoder_ids), max_length, beam_width)

    def attention_weights(self, encoder_ids, max_length: int):
        """Greedy output ids (B, Ty) and the attention weights (B, Ty, Tx) each output step gave
        each input step (for ``tinyrnn.plot.plot_attention``)."""
        if self.attention is None:
            raise ValueError("this encoder-decoder has no attention (attention=None): no weights to show")
        states, tokens = self.encode(encoder_ids), numpy.full(len(encoder_ids), START)
        outputs, weights = [], []
        for _ in range(max_length):
            log_probs, states, w = self.decode_step(tokens, states, return_attention_scores=True)
            tokens = log_probs.argmax(axis=1)
            outputs.append(tokens)
            weights.append(w)
        return numpy.stack(outputs, axis=1), numpy.stack(weights, axis=1)


# --- decoding loops on any step function ------------------------------------------------------------
def _select_rows(states, rows) -> list:
    """Each state's rows ``rows`` (a beam's parents), in order."""
    return [s[backend.xp.asarray(rows)] for s in states]


def greedy_decode(step, states, batch_size: int, max_length: int, start: int = START, end: int = END):
    """Feed back the most probable token until every row has written ``end`` (or max_length steps).

    ``step(tokens (N,), states) -> (log_probs (N, V), new_states)``; ``states`` a list of arrays
    with N = batch_size rows. Returns (B, T) int, T <= max_length: each row's tokens up to its
    end token, then ``PAD``."""
    tokens = numpy.full(batch_size, start)
    finished = numpy.zeros(batch_size, dtype=bool)
    written = []
    for _ in range(max_length):
        log_probs, states = step(tokens, states)
        tokens = numpy.where(finished, PAD, numpy.asarray(log_probs).argmax(axis=1))
        written.append(tokens)
        finished |= tokens == end
        if finished.all():
            break
    return numpy.stack(written, axis=1) if written else numpy.zeros((batch_size, 0), dtype=int)


def beam_search(step, states, batch_size: int, max_length: int, beam_width: int,
                start: int = START, end: int = END):
    """The most probable output found by keeping the ``beam_width`` best partial outputs.

    Score of an output: its total log-probability sum_t log p(y_t | y_<t, x). Rows of the step
    are (input b, beam k) at b * K + k. At each step every live beam is extended by every token,
    and the K best of the K * V extensions (by total score) are kept; a beam that wrote ``end``
    is finished: it extends only by ``PAD`` at no cost, so it keeps its score and competes with
    the live ones. Stops when every kept beam has finished, or after ``max_length`` steps.

    Returns (B, T) int: each input's best output (its tokens up to ``end``, then ``PAD``).
    ``beam_width=1`` keeps the argmax at each step: greedy decoding, exactly (rounding is
    monotonic, so a larger log-prob never gets a smaller total, and ties go as in argmax).
    """
    if not isinstance(beam_width, (int, numpy.integer)) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
    B, K = batch_size, int(beam_width)
    states = _select_rows(states, numpy.repeat(numpy.arange(B), K))         # each input's rows K times
    scores = numpy.full((B, K), -numpy.inf)
    scores[:, 0] = 0.0                                  # one live beam at first: K copies would tie
    tokens = numpy.full(B * K, start)
    finished = numpy.zeros(B * K, dtype=bool)
    history = numpy.zeros((B * K, 0), dtype=int)
    for _ in range(max_length):
        log_probs, states = step(tokens, states)
        log_probs = numpy.array(log_probs, dtype=float)                       # (B K, V)
        V = log_probs.shape[1]
        log_probs[finished] = -numpy.inf                                      # finished: only PAD, at 0
        log_probs[finished, PAD] = 0.0
        candidates = (scores.reshape(B * K, 1) + log_probs).reshape(B, K * V)
        # the K best by total score; where two totals round to the same number, the one whose
        # step log-prob is higher (as greedy's argmax), then the lowest index (numpy.lexsort is stable)
        best = numpy.lexsort((-log_probs.reshape(B, K * V), -candidates), axis=-1)[:, :K]   # (B, K)
        parents = (numpy.arange(B)[:, None] * K + best // V).ravel()          # rows they extend
        tokens = (best % V).ravel()
        scores = numpy.take_along_axis(candidates, best, axis=1)
        history = numpy.concatenate([history[parents], tokens[:, None]], axis=1)
        finished = finished[parents] | (tokens == end)
        states = _select_rows(states, parents)
        if finished.all():
            break
    return history.reshape(B, K, -1)[:, 0]              # the kept beams are sorted: beam 0 is the best


# --- evaluation ----------------------------------------------------------------------------------
def sequence_accuracy(predicted, targets) -> float:
    """The fraction of outputs right as a whole (lists of strings)."""
    predicted, targets = list(predicted), list(targets)
    if len(predicted) != len(targets):
        raise ValueError(f"{len(predicted)} predictions for {len(targets)} targets")
    return float(numpy.mean([p == t for p, t in zip(predicted, targets)])) if targets else 0.0


def token_accuracy(predicted_ids, target_ids) -> float:
    """The fraction of target tokens (``END`` included, ``PAD`` not) predicted at their position.

    predicted_ids (B, T'), target_ids (B, T): a shorter prediction counts as wrong where it stops."""
    predicted_ids, target_ids = numpy.asarray(predicted_ids), numpy.asarray(target_ids)
    T = target_ids.shape[1]
    padded = numpy.zeros_like(target_ids)
    n = min(T, predicted_ids.shape[1])
    padded[:, :n] = predicted_ids[:, :n]
    counted = target_ids != PAD
    return float((padded == target_ids)[counted].mean())
