"""Keras's ``keras.utils`` spellings the course uses."""

from tinyrnn.seeding import set_random_seed

__all__ = ["set_random_seed"]
