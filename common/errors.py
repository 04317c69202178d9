"""Errors that scripts turn into one clear line and a non-zero exit status."""


class DataError(Exception):
    """Missing or malformed data: the message is one line naming the path and the fix."""


class DivergenceError(Exception):
    """A NaN or inf loss stopped training."""
