"""Who may do what on a server with accounts (Streamlit's login): whose files a path reaches, who may publish.

Each signed-in user has a private space (fer.paths.user_dir) that no other user reaches, whatever path a
browser names. Publishing moves an administrator's own model to fer.paths.published_models_dir()
(fer.model.registry.publish_model), where every user can choose it and nobody can change it. The server's
administrators decide who may publish: FER_STUDIO_ADMINS lists their user ids (the `sub` their identity
provider sends), separated by commas. It is an environment variable, or a line at the top of
.streamlit/secrets.toml (Streamlit exports the file's top-level strings to the environment). Without
accounts the one local user owns the server and may publish, though with nobody to publish to the Models
page does not offer it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer.paths import home_dir, user_dir

ADMINS_VARIABLE = "FER_STUDIO_ADMINS"


def admins() -> frozenset[str]:
    """The user ids named in $FER_STUDIO_ADMINS (comma-separated; blanks ignored)."""
    return frozenset(name.strip() for name in os.environ.get(ADMINS_VARIABLE, "").split(",") if name.strip())


def may_publish(user: str | None) -> bool:
    """Whether `user` may publish a model for everyone: the local user (None, no accounts) or an admin."""
    return user is None or user in admins()


def offers_publishing(user: str | None) -> bool:
    """Whether the app offers `user` to publish and withdraw models: an administrator on a server with
    accounts. Without accounts there is nobody else to publish to."""
    return user is not None and may_publish(user)


def in_another_users_space(path: str | Path, user: str | None) -> bool:
    """Whether `path`, after symlinks, lies in some user's space other than `user`'s (FER_STUDIO_HOME/users/...).

    A browser can name any path (a shared link's ?dataset=…); with accounts, another user's uploads, runs and
    datasets are refused by this test before anything is opened. Without accounts (None) there is no other user.
    """
    if user is None:
        return False
    try:
        resolved = Path(path).expanduser().resolve()
        spaces, own = (home_dir() / "users").resolve(), user_dir(user).resolve()
    except (OSError, RuntimeError, ValueError):  # A loop of symlinks, a NUL byte: nothing to open either.
        return True
    return resolved.is_relative_to(spaces) and not resolved.is_relative_to(own)
