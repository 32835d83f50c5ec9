"""User-facing error types.

Every problem a user can fix (a bad path, a corrupt file, a value out of
range) is raised as a :class:`LayerIBError` subclass with a one-line message
that names the problem and the fix. The CLI prints that line and exits with
status 2; anything else is a bug and keeps its traceback.
"""


class LayerIBError(Exception):
    """Base class of all errors a user can fix; the CLI maps them to exit status 2."""


class ConfigError(LayerIBError, ValueError):
    """A configuration value has the wrong type or range, or a key is unknown."""


class DataError(LayerIBError):
    """A data set is missing, truncated, corrupt or fails its checksum."""


class RunDirError(LayerIBError):
    """The output folder cannot be used (holds another run, not writable)."""


class NumericalError(LayerIBError):
    """A loss or parameter became non-finite during training."""
