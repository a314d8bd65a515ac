"""The one exception type the app and CLI turn into a clear message."""


class FerError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown option."""


class DatasetError(FerError):
    """A dataset could not be opened; the message says what was expected."""
