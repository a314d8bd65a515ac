"""The app shell (app.py): Home, and the sidebar's dataset and model pickers, under AppTest."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fer.data.datasets import DEMO
from fer.formatting import escape_markdown
from fer.paths import PROJECT_ROOT, user_models_dir

APP = str(PROJECT_ROOT / "app.py")
PATH_CHOICE, UPLOAD_CHOICE, DEMO_CHOICE = "Path on the server", "Upload a zip or CSV", "Demo faces"


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    """A 20 + 5 per class demo set (drawn in a second, not six) and no cached datasets from other tests."""
    import fer.data.synthetic

    monkeypatch.setattr(fer.data.synthetic, "DEMO_TRAIN_PER_CLASS", 20)
    monkeypatch.setattr(fer.data.synthetic, "DEMO_VALIDATION_PER_CLASS", 5)
    monkeypatch.delenv("FER_STUDIO_MODEL", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()


def only_models(monkeypatch, tmp_path, cards: list[dict]) -> list[str]:
    """Make `cards` (each with a "name") the user's only models, as empty .keras files with those cards
    (the shell only lists and describes them); returns their names."""
    import fer.model.registry

    empty = tmp_path / "no-shipped-models"
    empty.mkdir(exist_ok=True)
    monkeypatch.setattr(fer.model.registry, "SHIPPED_MODELS_DIR", empty)
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for card in cards:
        (folder / f"{card['name']}.keras").write_bytes(b"")
        (folder / f"{card['name']}.json").write_text(json.dumps(card))
    return [card["name"] for card in cards]


def start(source: str | None = None) -> AppTest:
    """The app at Home, with `source` (else the demo set) as the active dataset."""
    app = AppTest.from_file(APP, default_timeout=120)
    if source is not None:
        app.session_state["dataset_source"] = source
    app.run()
    assert not app.exception, app.exception
    return app


def open_path(app: AppTest, path: str) -> None:
    app.sidebar.radio(key="dataset_choice").set_value(PATH_CHOICE).run()
    app.sidebar.text_input(key="dataset_path").input(path)
    app.sidebar.button[0].click().run()
    assert not app.exception, app.exception


def sidebar_text(app: AppTest) -> str:
    return "\n".join(element.value for element in [*app.sidebar.caption, *app.sidebar.markdown])


def recording_demo_drawings(monkeypatch) -> list[str]:
    """The progress messages of every drawing of the demo set from now on (a drawing must report)."""
    import fer.data.synthetic

    reports = []
    real_draw = fer.data.synthetic.draw_demo

    def recording_draw(**kwargs):
        progress = kwargs.get("progress")
        assert progress is not None, "the demo set was drawn without a progress callback"
        return real_draw(**{**kwargs, "progress": lambda f, m: (reports.append(m), progress(f, m))})

    monkeypatch.setattr(fer.data.synthetic, "draw_demo", recording_draw)
    return reports


def test_a_new_users_home_shows_without_drawing_the_demo_set(monkeypatch):
    from fer.data.datasets import demo_is_drawn

    reports = recording_demo_drawings(monkeypatch)
    app = start()
    assert app.title[0].value.endswith("FER Studio")
    assert not reports and not demo_is_drawn()
    assert "the built-in demo faces" in sidebar_text(app) and "train 140 · validation 35" in sidebar_text(app)
    assert "drawn when a page first needs them" in sidebar_text(app)
    assert "175 synthetic 48×48 faces" in sidebar_text(app)
    assert any("Built-in demo faces" in block.value and "drawn the first time" in block.value for block in app.markdown)
    assert any(block.value == "- train: 140 images" for block in app.markdown)
    app.switch_page("pages/predict.py").run()  # Predict reads photos, not the dataset.
    assert not reports and not demo_is_drawn()


def test_the_first_page_that_reads_the_demo_set_draws_it_with_progress(monkeypatch):
    from fer.data.datasets import demo_is_drawn, open_dataset

    reports = recording_demo_drawings(monkeypatch)
    app = start()
    app.switch_page("pages/dataset.py").run()
    assert not app.exception, app.exception
    assert any("Drawing demo faces" in message for message in reports) and demo_is_drawn()
    assert f"`{open_dataset(DEMO).fingerprint}`" in sidebar_text(app)
    assert "drawn when a page first needs them" not in sidebar_text(app)
    app.switch_page("pages/home.py").run()
    assert len([m for m in reports if m.endswith("175/175")]) == 1  # Drawn once; Home now reads it.
    assert any("`built-in demo set`" in block.value for block in app.markdown)  # Its format, not kaggle-folder.
    assert not any("kaggle-folder" in block.value for block in app.markdown)


def test_a_path_that_does_not_exist_is_refused_and_the_dataset_stays(kaggle_zip, tmp_path):
    app = start(str(kaggle_zip))
    open_path(app, str(tmp_path / "nowhere.zip"))
    assert "does not exist" in app.sidebar.error[0].value
    assert "previous dataset stays active" in app.sidebar.error[0].value
    assert app.session_state["dataset_source"] == str(kaggle_zip)


def test_a_zip_with_no_recognisable_layout_is_refused(kaggle_zip, tmp_path):
    odd = tmp_path / "odd.zip"
    with zipfile.ZipFile(odd, "w") as archive:
        archive.writestr("readme.txt", "no images here")
    app = start(str(kaggle_zip))
    open_path(app, str(odd))
    assert "no images found" in app.sidebar.error[0].value
    # Markdown would eat the stars and the <...> of the pattern that says how to fix the data.
    assert r"images/\<split\>/\<class\>/\*.jpg" in app.sidebar.error[0].value
    assert app.session_state["dataset_source"] == str(kaggle_zip)


def test_a_good_path_becomes_active_on_every_page(kaggle_zip, class_folders):
    app = start(str(kaggle_zip))
    open_path(app, str(class_folders))
    assert not app.sidebar.error
    assert app.session_state["dataset_source"] == str(class_folders)
    app.switch_page("pages/dataset.py").run()
    assert app.session_state["dataset_source"] == str(class_folders)
    assert str(class_folders) in sidebar_text(app)
    app.switch_page("pages/home.py").run()
    assert any("faces" in block.value for block in app.markdown)
    assert app.sidebar.radio(key="dataset_choice").value == PATH_CHOICE


def test_choosing_demo_faces_switches_back_to_the_demo_set(fer_csv):
    app = start(str(fer_csv))
    app.sidebar.radio(key="dataset_choice").set_value(DEMO_CHOICE).run()
    assert not app.exception
    assert app.session_state["dataset_source"] == DEMO
    assert "the built-in demo faces" in sidebar_text(app)


def test_an_uploaded_zip_is_saved_and_becomes_active(kaggle_zip, class_folders, fer_home):
    app = start(str(class_folders))
    app.sidebar.radio(key="dataset_choice").set_value(UPLOAD_CHOICE).run()
    app.sidebar.file_uploader(key="dataset_upload").set_value(("faces.zip", kaggle_zip.read_bytes(),
                                                                "application/zip"))
    app.run()
    assert not app.exception and not app.sidebar.error
    active = Path(app.session_state["dataset_source"])
    assert active.parent == fer_home / "uploads" and active.name.endswith("-faces.zip")
    assert active.read_bytes() == kaggle_zip.read_bytes()
    assert "upload 'faces.zip'" in sidebar_text(app)
    app.run()  # A rerun with the file still in the uploader does not open it again.
    assert app.session_state["dataset_source"] == str(active)


def test_an_upload_that_is_not_a_dataset_is_refused_and_removed(kaggle_zip, fer_home):
    app = start(str(kaggle_zip))
    app.sidebar.radio(key="dataset_choice").set_value(UPLOAD_CHOICE).run()
    app.sidebar.file_uploader(key="dataset_upload").set_value(("notes.csv", b"name,score\nann,3\n", "text/csv"))
    app.run()
    assert not app.exception
    assert "expected fer2013.csv's" in app.sidebar.error[0].value
    assert app.session_state["dataset_source"] == str(kaggle_zip)
    assert not list((fer_home / "uploads").iterdir())
    app.run()  # The message stays while the bad file is still in the uploader.
    assert app.sidebar.error and app.session_state["dataset_source"] == str(kaggle_zip)


def test_no_models_is_said_plainly(kaggle_zip, monkeypatch, tmp_path):
    only_models(monkeypatch, tmp_path, [])
    app = start(str(kaggle_zip))
    assert "No models yet" in sidebar_text(app)
    assert any("No model yet" in box.value for box in app.info)


def test_the_model_picker_sets_the_model_for_every_page(kaggle_zip, tmp_path, monkeypatch):
    newer, older = only_models(monkeypatch, tmp_path, [
        {"name": name, "preset": "tiny", "created": created, "metrics": {"validation": {"accuracy": accuracy}}}
        for name, accuracy, created in (("newer", 0.61, "2026-02-01"), ("older", 0.55, "2026-01-01"))])
    app = start(str(kaggle_zip))
    picker = app.sidebar.selectbox(key="model_picker")
    assert picker.value == newer
    assert picker.format_func(older) == "older · tiny · val acc 55.0%"
    picker.set_value(older).run()
    assert app.session_state["model_name"] == older
    app.switch_page("pages/dataset.py").run()
    app.switch_page("pages/home.py").run()
    assert app.session_state["model_name"] == older
    assert app.sidebar.selectbox(key="model_picker").value == older
    assert any("older" in block.value for block in app.markdown)


def test_home_shows_how_the_active_model_was_made(kaggle_zip, tmp_path, monkeypatch):
    card = {"name": "shipped", "preset": "vgg40", "epochs_trained": 30,
            "training_seconds": 9000.0, "training_backend": "torch",
            "selection": {"members": 2, "views": [[0, 0, False], [0, 0, True]], "selected_on": "validation"},
            "recipe": "KERAS_BACKEND=torch python -m fer train --dataset images.zip --preset vgg40"}
    only_models(monkeypatch, tmp_path, [card])
    app = start(str(kaggle_zip))
    captions = [caption.value for caption in app.caption]
    assert ("Averages 2 models × 2 views of each face (an ensemble with test-time augmentation, chosen on the "
            "validation split).") in captions
    assert "Trained 30 epochs in 2 h 30 min of training under Keras's torch backend." in captions
    assert app.code[0].value == card["recipe"]


def test_a_corrupt_zip_upload_is_refused_with_a_message(kaggle_zip, class_folders):
    data = bytearray(kaggle_zip.read_bytes())
    # Damage everything after the first third, the archive's directory included (a zip with only some
    # members damaged opens without them: fer.data.datasets names them as skipped).
    data[len(data) // 3:] = bytes(len(data) - len(data) // 3)
    app = start(str(class_folders))
    app.sidebar.radio(key="dataset_choice").set_value(UPLOAD_CHOICE).run()
    app.sidebar.file_uploader(key="dataset_upload").set_value(("damaged.zip", bytes(data), "application/zip"))
    app.run()
    assert not app.exception
    assert "Could not open 'damaged.zip'" in app.sidebar.error[0].value
    assert app.session_state["dataset_source"] == str(class_folders)


def test_a_foreign_error_while_opening_is_said_in_words(kaggle_zip, monkeypatch):
    import fer.data.datasets

    app = start(str(kaggle_zip))
    real = fer.data.datasets.open_dataset

    def failing(source, **kwargs):
        if str(source).endswith("unreadable.zip"):
            raise OSError(5, "Input/output error")
        return real(source, **kwargs)

    monkeypatch.setattr(fer.data.datasets, "open_dataset", failing)
    path = kaggle_zip.with_name("unreadable.zip")
    path.write_bytes(kaggle_zip.read_bytes())  # It exists; reading it is what fails.
    open_path(app, str(path))
    assert app.sidebar.error[0].value == escape_markdown(
        f"Could not open '{path}': the server could not read it: input/output error. "
        "The previous dataset stays active.")
    assert app.session_state["dataset_source"] == str(kaggle_zip)


@pytest.fixture
def two_models(tmp_path, monkeypatch):
    """Two registered (empty) model files, 'newer' the default; returns their names."""
    return only_models(monkeypatch, tmp_path, [{"name": "newer", "preset": "tiny", "created": "2026-02-01"},
                                               {"name": "older", "preset": "tiny", "created": "2026-01-01"}])


def reopen(query_params: dict | None = None) -> AppTest:
    """A new browser session: a reload (with the URL's query parameters) or a new tab (without)."""
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params.update(query_params or {})
    app.run()
    assert not app.exception, app.exception
    return app


def test_a_reload_keeps_the_chosen_dataset_and_model(kaggle_zip, two_models):
    app = start()
    open_path(app, str(kaggle_zip))
    app.sidebar.selectbox(key="model_picker").set_value(two_models[1]).run()
    assert app.query_params == {"dataset": str(kaggle_zip), "model": two_models[1]}
    reloaded = reopen(app.query_params)
    assert reloaded.session_state["dataset_source"] == str(kaggle_zip)
    assert reloaded.session_state["model_name"] == two_models[1]
    assert reloaded.sidebar.selectbox(key="model_picker").value == two_models[1]
    assert reloaded.sidebar.radio(key="dataset_choice").value == PATH_CHOICE
    assert reloaded.sidebar.text_input(key="dataset_path").value == str(kaggle_zip)
    assert str(kaggle_zip) in sidebar_text(reloaded)


def test_a_new_tab_starts_from_the_last_choice_and_an_idle_tab_does_not_undo_it(kaggle_zip, fer_csv, two_models):
    first = start()
    open_path(first, str(kaggle_zip))
    fresh = reopen()  # No query parameters: a new tab.
    assert fresh.session_state["dataset_source"] == str(kaggle_zip)
    assert fresh.query_params["dataset"] == str(kaggle_zip)
    open_path(fresh, str(fer_csv))
    first.run()  # The first tab reruns without changing anything: its older choice is not saved again.
    assert first.session_state["dataset_source"] == str(kaggle_zip)
    assert reopen().session_state["dataset_source"] == str(fer_csv)


def test_a_url_naming_a_missing_dataset_or_model_falls_back(tmp_path, two_models):
    app = reopen({"dataset": str(tmp_path / "gone.zip"), "model": "gone"})
    assert "the built-in demo faces" in sidebar_text(app)
    assert app.sidebar.selectbox(key="model_picker").value == two_models[0]
    assert app.query_params == {"dataset": DEMO}  # The URL now says what is shown.
    assert [box.value for box in app.sidebar.warning] == [
        "The link's model was not opened: there is no model called 'gone'; choose one of the models in the sidebar. "
        "The default model stays."]


@pytest.mark.parametrize("hostile", ["/etc/passwd", "../../etc/passwd", "models/fer2013.keras", "run:../other",
                                     "run:/etc", "older.h5"])
def test_a_url_naming_a_path_gets_a_sentence_and_the_default_model_stays(two_models, hostile):
    app = reopen({"model": hostile})
    assert "model_name" not in app.session_state  # Nothing the link named was chosen.
    assert app.sidebar.selectbox(key="model_picker").value == two_models[0]
    warning = app.sidebar.warning[0].value
    assert warning.startswith("The link's model was not opened") and "default model stays" in warning
    assert "passwd" not in "".join(block.value for block in [*app.markdown, *app.caption])
    assert "model" not in app.query_params  # The URL no longer names it.
    again = app.run()
    assert not again.sidebar.warning  # Said once.


def test_a_model_in_the_settings_file_is_a_name_and_a_path_there_is_ignored(two_models):
    from fer.settings import Choices, write_choices

    write_choices(Choices(model=two_models[1]))
    assert reopen().session_state["model_name"] == two_models[1]
    write_choices(Choices(model=str(user_models_dir() / "older.keras")))
    fresh = reopen()
    assert "model_name" not in fresh.session_state and not fresh.sidebar.warning
    assert fresh.sidebar.selectbox(key="model_picker").value == two_models[0]


def test_navigation_and_the_tab_use_material_icons_not_emoji(monkeypatch):
    """An emoji shows as an empty box on a machine without an emoji font; Streamlit's icon font ships with it."""
    real_page, real_config = st.Page, st.set_page_config
    icons = []
    monkeypatch.setattr(st, "Page", lambda *args, **kwargs: icons.append(kwargs.get("icon"))
                        or real_page(*args, **kwargs))
    monkeypatch.setattr(st, "set_page_config", lambda **kwargs: icons.append(kwargs.get("page_icon"))
                        or real_config(**kwargs))
    start()
    tab_icon = icons.pop(0)  # set_page_config runs first, before the pages are declared.
    assert len(icons) >= 6
    assert all(icon and icon.startswith(":material/") and icon.endswith(":") for icon in icons), icons
    # The tab's icon is a drawn picture: a Material icon there is fetched from fonts.gstatic.com.
    assert getattr(tab_icon, "size", None) == (64, 64) and tab_icon.mode == "RGBA"
