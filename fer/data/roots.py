"""The folders a browser may open datasets from: FER_STUDIO_DATA_ROOTS, and each user's own space.

A path typed into the sidebar or named in the URL comes from whoever can reach the page. It is opened only
when it resolves (after symlinks) inside one of the data roots; anything else gets one sentence, the same
whether or not it exists, and is never listed or walked. The command line takes any path: the person
typing it is the user.

    FER_STUDIO_DATA_ROOTS   folders separated by os.pathsep (":" on Linux and macOS)
    default, no accounts    the user's home folder and FER_STUDIO_HOME
    default, accounts on    none but each user's own uploads and datasets folders
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fer.accounts import in_another_users_space
from fer.errors import FerError
from fer.paths import home_dir, uploads_dir, user_datasets_dir

ROOTS_VARIABLE = "FER_STUDIO_DATA_ROOTS"


@dataclass(frozen=True)
class DataRoots:
    """Resolved folders a browser may open datasets from."""

    folders: tuple[Path, ...]
    user: str | None = None  # Whose session (accounts on): other users' spaces stay out, even inside a root.

    def contains(self, path: str | os.PathLike) -> bool:
        """Whether `path`, with every symlink resolved, lies inside one of the folders and in no other
        user's space (a lab may list a folder that holds FER_STUDIO_HOME among its roots)."""
        try:
            resolved = Path(path).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):  # A symlink loop, a NUL byte.
            return False
        if in_another_users_space(resolved, self.user):
            return False
        return any(resolved == folder or resolved.is_relative_to(folder) for folder in self.folders)

    def resolve(self, text: str) -> Path:
        """The resolved path for `text` when it lies inside the roots and exists; else FerError in one sentence
        that names no file found there (nothing outside the roots is looked at beyond resolving the path)."""
        text = text.strip()
        if not text:
            raise FerError("enter the path of a dataset folder, .zip or .csv")
        if not self.contains(text):
            raise FerError(f"'{text[:200]}' is outside the folders this server opens datasets from "
                           f"({self.describe()}); copy the dataset into one of them or upload it")
        path = Path(text).expanduser().resolve()
        if not path.exists():
            raise FerError(f"'{text[:200]}' does not exist; expected a dataset folder, a .zip or a .csv")
        return path

    def allows(self, text: str) -> bool:
        """Whether `text` names an existing path inside the roots (for a choice restored from a URL)."""
        try:
            self.resolve(text)
        except FerError:
            return False
        return True

    def describe(self) -> str:
        return ", ".join(str(folder) for folder in self.folders) or "none configured"


def data_roots(*, accounts: bool, user: str | None = None) -> DataRoots:
    """The data roots for a browser session: FER_STUDIO_DATA_ROOTS when set, else the user's home folder and
    FER_STUDIO_HOME without accounts, else none; always the user's own uploads and datasets folders."""
    configured = os.environ.get(ROOTS_VARIABLE, "")
    if configured.strip():
        folders = [Path(part).expanduser() for part in configured.split(os.pathsep) if part.strip()]
    elif accounts:
        folders = []
    else:
        folders = [Path.home(), home_dir()]
    folders += [uploads_dir(user), user_datasets_dir(user)]
    resolved = []
    for folder in folders:
        try:
            path = folder.resolve()
        except (OSError, RuntimeError):
            continue
        if path not in resolved:
            resolved.append(path)
    return DataRoots(tuple(resolved), user)
