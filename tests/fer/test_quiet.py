"""Quieting a child's start-up noise (fer.quiet): held stderr is dropped on success, passed on on failure."""

from __future__ import annotations

import os

import pytest


from fer.quiet import stderr_held


def test_held_stderr_is_dropped_when_the_block_succeeds_and_passed_on_when_it_fails(capfd):
    with stderr_held():
        os.write(2, b"start-up chatter\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError), stderr_held():
        os.write(2, b"why the import failed\n")
        raise ImportError("no module")
    assert capfd.readouterr().err == "why the import failed\n"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # Stderr is back where it was.
