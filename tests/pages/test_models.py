"""The Models page (pages/models.py) under AppTest: cards and lineage, rename, delete, make default, register a run;
shipped models are protected; with accounts, an administrator publishes and withdraws."""

from __future__ import annotations

import json
import shutil

import pytest

from fer.model import registry
from fer.paths import published_models_dir, runs_dir, user_models_dir
from helpers.app_pages import app_on_page, register_copy

PAGE = "pages/models.py"


@pytest.fixture
def mine(tiny_model_path) -> str:
    """The session's tiny model registered as the user's own."""
    return register_copy(tiny_model_path)


def button(app, key: str):
    return next(widget for widget in app.button if widget.key == key)


def test_every_model_is_listed_with_its_card_and_lineage(mine):
    app = app_on_page(PAGE)
    text = "\n".join(element.value for element in [*app.markdown, *app.caption])
    assert f"**{mine.replace('_', chr(92) + '_')}** · yours" in text or f"**{mine}** · yours" in text
    assert "**fer2013** · shipped with FER Studio" in text
    assert "Averages fer2013-vgg40-h200-s3/best.keras (epoch 68)" in text  # The shipped ensemble's lineage.
    assert "Trained on" in text and "created " in text
    assert " KB (.keras)" in text or " MB (.keras)" in text
    assert "T" not in next(line for line in text.splitlines() if "created " in line).split("created ")[1][:11]
    assert not [widget for widget in app.button if widget.key == "rename-button-fer2013"]  # Protected.


def test_rename_moves_every_file_and_the_card(mine):
    app = app_on_page(PAGE)
    app.text_input(key=f"rename-{mine}").input("renamed")
    button(app, f"rename-button-{mine}").click().run()
    assert not app.exception and "Renamed" in app.success[0].value
    folder = user_models_dir()
    assert (folder / "renamed.keras").exists() and not (folder / f"{mine}.keras").exists()
    assert json.loads((folder / "renamed.json").read_text())["name"] == "renamed"
    assert not list(folder.glob(f"{mine}.*"))


def test_a_bad_or_taken_name_is_refused_in_words(mine):
    app = app_on_page(PAGE)
    app.text_input(key=f"rename-{mine}").input("fer2013")
    button(app, f"rename-button-{mine}").click().run()
    assert "taken by the shipped model" in app.error[0].value
    assert (user_models_dir() / f"{mine}.keras").exists()


def test_delete_and_make_default(mine):
    app = app_on_page(PAGE)
    button(app, f"default-{mine}").click().run()
    assert registry.chosen_default_name() == mine
    assert registry.default_model().name == mine
    button(app, f"delete-{mine}").click().run()
    assert not app.exception and "Deleted" in app.success[0].value
    assert not list(user_models_dir().glob(f"{mine}.*"))
    assert registry.default_model().name == "fer2013"  # The choice went with the model.


def test_a_finished_run_is_registered_only_when_named(tiny_model_path):
    run = runs_dir() / "20260101-000000-tiny"
    run.mkdir(parents=True)
    shutil.copyfile(tiny_model_path, run / "best.keras")
    shutil.copyfile(tiny_model_path.with_suffix(".json"), run / "best.json")
    (run / "state.json").write_text(json.dumps({"status": "finished"}))
    app = app_on_page(PAGE)
    assert not list(user_models_dir().glob("*.keras"))  # Finished, but nobody registered it.
    app.text_input(key="register-20260101-000000-tiny").input("keeper")
    button(app, "register-button-20260101-000000-tiny").click().run()
    assert not app.exception and "Registered keeper" in app.success[0].value
    assert (user_models_dir() / "keeper.keras").exists()


def test_with_accounts_an_admin_publishes_a_model_and_withdraws_it(tiny_model_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_ADMINS", "ann")
    name = register_copy(tiny_model_path, user="ann")
    app = app_on_page(PAGE, signed_in="ann")
    assert not [widget for widget in app.button if widget.key == "withdraw-fer2013"]  # Shipped: nobody's to withdraw.
    button(app, f"publish-{name}").click().run()
    assert not app.exception and f"Published {name}" in app.success[0].value
    assert (published_models_dir() / f"{name}.keras").exists() and not list(user_models_dir("ann").glob(f"{name}.*"))
    assert "· published for everyone" in "\n".join(element.value for element in app.markdown)
    assert "withdraw it to rename or delete it" in "\n".join(element.value for element in app.caption)

    bob = app_on_page(PAGE, signed_in="bob")  # Another user sees it, protected, with nothing to publish or withdraw.
    assert "· published for everyone" in "\n".join(element.value for element in bob.markdown)
    assert not [widget for widget in bob.button if widget.key.startswith(("publish-", "withdraw-", "rename-button-"))]

    button(app, f"withdraw-{name}").click().run()
    assert not app.exception and f"Withdrew {name}" in app.success[0].value
    assert (user_models_dir("ann") / f"{name}.keras").exists() and not list(published_models_dir().iterdir())


def test_without_accounts_there_is_nobody_to_publish_to(mine):
    app = app_on_page(PAGE)
    assert not [widget for widget in app.button if widget.key.startswith(("publish-", "withdraw-"))]
