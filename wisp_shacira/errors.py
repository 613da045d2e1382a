"""User-facing error types.

Every error a user can cause (bad config, bad input file, corrupt bitstream) is a
:class:`ShaciraError`. Entry points catch it and print one line, without a traceback.
"""
from __future__ import annotations


class ShaciraError(Exception):
    """Base class of errors caused by user input; the message names the problem."""


class ConfigError(ShaciraError):
    """Unknown, duplicate, mistyped or out-of-range configuration value."""


class DataError(ShaciraError):
    """Missing, unreadable or malformed input data (images, videos, scenes)."""


class BitstreamError(ShaciraError):
    """A .shac file that is not one, is truncated, or fails its checksum."""


class OutputError(ShaciraError):
    """An output that cannot be written: a suffix the output cannot have, an unwritable
    folder, a full disk, or a read-only existing file the user did not ask to replace
    (``--force``)."""


class MissingExtraError(ShaciraError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names
    the feature and the ``pip install 'wisp-shacira[EXTRA]'`` command that adds it
    (raised by :func:`wisp_shacira.extras.require`). Also an :class:`ImportError`, so
    code that treats the optional package as absent keeps working."""


class TrainingError(ShaciraError):
    """Training that cannot go on: the loss or the weights stopped being finite (the
    message names the step and the settings that usually cause it)."""
