"""fer.settings: the last dataset and model choice, saved under FER_STUDIO_HOME for new browser tabs."""

from __future__ import annotations

from fer.settings import Choices, read_choices, settings_path, write_choices


def test_choices_round_trip_under_the_home_folder(fer_home):
    assert read_choices() == Choices()
    write_choices(Choices("demo", "/models/a.keras"))
    assert settings_path().parent == fer_home
    assert read_choices() == Choices("demo", "/models/a.keras")
    assert [path.name for path in fer_home.iterdir()] == ["settings.json"]  # No partial file left behind.


def test_an_unreadable_or_odd_settings_file_counts_as_no_choice(fer_home):
    for text in ("{not json", "[1, 2]", '{"dataset": 3, "model": ""}'):
        settings_path().write_text(text)
        assert read_choices() == Choices()
    settings_path().write_text('{"dataset": "/data/fer.zip", "theme": "dark"}')
    assert read_choices() == Choices("/data/fer.zip", None)


def test_each_user_reads_only_their_own_last_choice(fer_home):
    write_choices(Choices("/home/alice/uploads/a.zip", None), user="alice")
    write_choices(Choices("demo", None), user="../bob")  # Any subject an identity provider sends stays inside.
    assert read_choices("alice") == Choices("/home/alice/uploads/a.zip", None)
    assert read_choices("../bob") == Choices("demo", None)
    assert read_choices("carol") == Choices()  # A new user starts from nothing, not from the last user's choice.
    assert read_choices() == Choices()  # Nor does the one local user of a server without accounts.
    assert settings_path("alice") == fer_home / "users" / "alice" / "settings.json"
    assert settings_path("../bob").parent.parent == fer_home / "users"
