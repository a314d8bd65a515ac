"""Errors that are not ours read as words (fer.errors.in_words), never as a Python repr."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("error, words", [
    (MemoryError(), "it is too large to load into this server's memory"),
    (EOFError(), "the file is cut short: it ends before all of its contents; download or copy it again"),
    (PermissionError(13, "Permission denied"), "the server is not allowed to read it (permission denied)"),
    (FileNotFoundError(2, "No such file or directory"), "it does not exist (any more)"),
    (OSError(28, "No space left on device"), "the server could not read it: no space left on device"),
    (ValueError("<_io.BytesIO object at 0x7f00>"),
     "an unexpected problem stopped it from being read; the log has the details"),
])
def test_errors_that_are_not_ours_read_as_words(error, words):
    from fer.errors import DatasetError, in_words

    assert in_words(error) == words
    assert in_words(DatasetError("x.zip is a damaged zip archive")) == "x.zip is a damaged zip archive"
    try:
        b"\xff".decode("utf-8")
    except UnicodeDecodeError as undecodable:
        assert in_words(undecodable) == "it is not UTF-8 text (byte 0 cannot be read); save it as UTF-8"
