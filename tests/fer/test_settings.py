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
