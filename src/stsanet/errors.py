"""The project's one family of bad-input errors.

Every error a user can fix by changing what they gave (a file, a folder, a config value, an
argument) derives from :class:`InputError`; its message names the input and says what would
work. The command boundary (:mod:`stsanet.cli.boundary`) prints such an error as one line and
exits with code 2; anything else that escapes a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file, folder, key or argument and the fix."""


class ConfigError(InputError):
    """A configuration value that cannot work, with the key and the allowed values."""


class OutputPlaceError(InputError):
    """An output path that cannot be written (read-only, a file where a folder belongs, or
    the reverse), or that holds results of another source."""
