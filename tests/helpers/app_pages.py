"""The app on a page under AppTest: app.py started with a dataset (and a model) chosen, then one page opened."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from fer.paths import PROJECT_ROOT, user_models_dir
from pages.common import DATASET_KEY, MODEL_KEY

# An [auth] section as a lab writes it in .streamlit/secrets.toml; AppTest never contacts the provider.
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-test-secret-not-used-anywhere",
        "client_id": "fer-studio", "client_secret": "not-a-secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


def register_copy(model: Path | str, user: str | None = None) -> str:
    """A .keras file with its card and exports copied into the user's models folder (once), as a registered
    model a page can be pointed at by name; returns the name (the file's stem)."""
    import shutil

    from fer.serve.runtime import served_file

    model = Path(model)
    if served_file(model) is None and model.with_suffix(".json").exists():
        from fer.serve.runtime import load_for_serving

        load_for_serving(model)  # Exported once beside the original, so no copy exports it again.
    folder = user_models_dir(user)
    folder.mkdir(parents=True, exist_ok=True)
    for file in model.parent.glob(f"{model.stem}.*"):
        if not (folder / file.name).exists():
            shutil.copyfile(file, folder / file.name)
    return model.stem


def app_on_page(page: str, *, dataset: Path | str | None = None, model: Path | str | None = None,
                timeout: float = 120, signed_in: str | None = None) -> AppTest:
    """app.py run once with `dataset` and `model` in session state, then switched to `page` (e.g.
    "pages/dataset.py") and run, as a user who opens the app and clicks the page would; the page must
    not have raised. `model`: a registered model's name, or a .keras file, registered here by `register_copy`.
    `signed_in`: a user id, with accounts configured (AUTH) and that user signed in."""
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=timeout)
    if signed_in is not None:
        app.secrets["auth"] = AUTH
        app.user = {"is_logged_in": True, "sub": signed_in, "name": signed_in}
    if dataset is not None:
        app.session_state[DATASET_KEY] = str(dataset)
    if model is not None:
        app.session_state[MODEL_KEY] = register_copy(model) if str(model).endswith(".keras") else str(model)
    app.run()  # AppTest needs one run before switch_page: st.navigation registers the pages then.
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app
