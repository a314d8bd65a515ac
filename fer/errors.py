"""The one exception type the app and CLI turn into a clear message."""


class FerError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown option."""


class DatasetError(FerError):
    """A dataset could not be opened; the message says what was expected."""


def in_words(error: BaseException) -> str:
    """What went wrong, in words a user can act on: our own errors' messages as they are; for others
    (a disk, memory or encoding problem while reading a file) a sentence instead of `TypeName: repr`."""
    if isinstance(error, FerError):
        return str(error)
    if isinstance(error, MemoryError):
        return "it is too large to load into this server's memory"
    if isinstance(error, UnicodeDecodeError):
        return f"it is not UTF-8 text (byte {error.start:,} cannot be read); save it as UTF-8"
    if isinstance(error, EOFError):
        return "the file is cut short: it ends before all of its contents; download or copy it again"
    if isinstance(error, PermissionError):
        return "the server is not allowed to read it (permission denied)"
    if isinstance(error, FileNotFoundError):
        return "it does not exist (any more)"
    if isinstance(error, IsADirectoryError):
        return "it is a folder where a file was expected"
    if isinstance(error, OSError) and error.strerror:
        return f"the server could not read it: {error.strerror[0].lower()}{error.strerror[1:]}"
    if type(error).__module__ == "zlib" or type(error).__name__ == "BadZipFile":
        return "a compressed file inside it cannot be unpacked: the archive is damaged; download it again"
    return "an unexpected problem stopped it from being read; the log has the details"
