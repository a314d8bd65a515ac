"""The app on a page under AppTest: app.py started with a dataset (and a model) chosen, then one page opened."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from fer.paths import PROJECT_ROOT
from pages.common import DATASET_KEY, MODEL_KEY


def app_on_page(page: str, *, dataset: Path | str | None = None, model: Path | str | None = None,
                timeout: float = 120) -> AppTest:
    """app.py run once with `dataset` and `model` in session state, then switched to `page` (e.g.
    "pages/dataset.py") and run, as a user who opens the app and clicks the page would; the page must
    not have raised."""
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=timeout)
    if dataset is not None:
        app.session_state[DATASET_KEY] = str(dataset)
    if model is not None:
        app.session_state[MODEL_KEY] = str(model)
    app.run()  # AppTest needs one run before switch_page: st.navigation registers the pages then.
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app
