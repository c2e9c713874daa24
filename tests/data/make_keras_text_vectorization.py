"""Make ``keras_text_vectorization.json``: Keras 3's character vocabulary and ids, for ``tests/test_text.py``.

Keras's ``TextVectorization(split="character", standardize="lower")`` is adapted on the
tiny-Shakespeare corpus shipped with tinyrnn (``tinyrnn/corpora/tinyshakespeare.txt``) and on a
short text with ties in its counts; saved: each vocabulary (``get_vocabulary()``, ids in order,
"" and "[UNK]" first) and the ids Keras gives a probe string that holds unknown characters.
``tinyrnn.text.CharTokenizer`` must give the same vocabularies and ids.

Run it from the repository root, in an environment with TensorFlow >= 2.16 (Keras 3); it takes
a few seconds::

    PYTHONPATH=. /work/tfvenv/bin/python tests/data/make_keras_text_vectorization.py
"""

from __future__ import annotations

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from tinyrnn.text import shakespeare_text  # noqa: E402

TIES = "abba cddc Eeff! zz yy"           # counts with ties, upper case folded by standardize="lower"
PROBE = "To be, or NOT to be: that is the question? é~"   # é and ~ are not in Shakespeare


def vocabulary_and_ids(text, probe):
    layer = keras.layers.TextVectorization(split="character", standardize="lower")
    layer.adapt([text])
    return layer.get_vocabulary(), [int(i) for i in layer([probe])[0]]


def main():
    shakespeare_vocab, shakespeare_ids = vocabulary_and_ids(shakespeare_text(), PROBE)
    ties_vocab, ties_ids = vocabulary_and_ids(TIES, PROBE)
    payload = {"keras_version": keras.__version__, "probe": PROBE, "ties_text": TIES,
               "shakespeare": {"vocabulary": shakespeare_vocab, "probe_ids": shakespeare_ids},
               "ties": {"vocabulary": ties_vocab, "probe_ids": ties_ids}}
    path = pathlib.Path(__file__).with_name("keras_text_vectorization.json")
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}: {len(shakespeare_vocab)} ids for Shakespeare")


if __name__ == "__main__":
    main()
