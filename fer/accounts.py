"""Who may do what on a server with accounts (Streamlit's login): today, publishing a model for everyone.

Each signed-in user has a private space (fer.paths.user_dir). Publishing copies a model to
fer.paths.published_models_dir(), where every user can choose it and nobody can change it. The
server's administrators decide who may publish: FER_STUDIO_ADMINS lists their user ids (the `sub`
their identity provider sends, as the app's sidebar shows it), separated by commas. Without
accounts the one local user owns the server and may publish.
"""

from __future__ import annotations

import os

ADMINS_VARIABLE = "FER_STUDIO_ADMINS"


def admins() -> frozenset[str]:
    """The user ids named in $FER_STUDIO_ADMINS (comma-separated; blanks ignored)."""
    return frozenset(name.strip() for name in os.environ.get(ADMINS_VARIABLE, "").split(",") if name.strip())


def may_publish(user: str | None) -> bool:
    """Whether `user` may publish a model for everyone: the local user (None, no accounts) or an admin."""
    return user is None or user in admins()
