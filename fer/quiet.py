"""Load Keras without TensorFlow's start-up lines, so a job's log and a terminal start with our own output.

TensorFlow 2.21's libraries log while they load, before absl logging is initialised, and that early
output ignores TF_CPP_MIN_LOG_LEVEL (set by fer/__init__.py before any import; later messages obey
it): "oneDNN custom operations are on", "Could not find cuda drivers"
and absl's "All log messages before absl::InitializeLog()" line, twice over. So the import runs with
file descriptor 2 held, and what it wrote is passed on only if the import fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


def load_keras_quietly() -> None:
    """Import Keras and its backend with their start-up lines dropped (shown only if the import fails)."""
    with stderr_held():
        import keras  # noqa: F401


@contextlib.contextmanager
def stderr_held():
    """Send what this process writes to file descriptor 2 (native code included) to a temporary file while the
    block runs; copy it to the real stderr only if the block raises."""
    sys.stderr.flush()
    real = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(real, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(real, 2)
            os.close(real)
