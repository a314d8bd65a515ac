"""How numbers, sizes, times and probabilities are shown (fer/formatting.py)."""

from __future__ import annotations

import datetime
import math

import pandas as pd
import pytest

from fer import formatting


def test_percent_has_one_decimal_and_words_for_missing():
    assert formatting.percent(0.1234) == "12.3%"
    assert formatting.percent(1.0) == "100.0%"
    assert formatting.percent(None) == "–"
    assert formatting.percent(math.nan, missing="n/a") == "n/a"


@pytest.mark.parametrize("size, shown", [
    (0, "0 B"), (812, "812 B"), (4_200, "4.2 KB"), (35_123, "35.1 KB"), (512_000, "512 KB"),
    (18_600_000, "18.6 MB"), (1_200_000_000, "1.2 GB"),
])
def test_file_size_never_says_zero_megabytes(size, shown):
    assert formatting.file_size(size) == shown


def test_file_size_refuses_negative_sizes():
    with pytest.raises(ValueError, match="negative"):
        formatting.file_size(-1)


def test_local_time_reads_iso_text_unix_times_and_datetimes(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    import time
    time.tzset()
    try:
        assert formatting.local_time("2025-01-02T13:04:05+00:00") == "2025-01-02 14:04"
        assert formatting.local_time("2025-07-02T13:04:05") == "2025-07-02 15:04"  # Naive: UTC, summer time.
        stamp = datetime.datetime(2025, 1, 2, 13, 4, tzinfo=datetime.timezone.utc)
        assert formatting.local_time(stamp.timestamp()) == "2025-01-02 14:04"
        assert formatting.local_time(stamp) == "2025-01-02 14:04"
        assert formatting.local_time(None) == "–"
        assert "T" not in formatting.local_time("2025-01-02T13:04:05Z")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("seconds, shown", [
    (0.04, "0.0 s"), (3.25, "3.2 s"), (54.2, "54 s"), (185, "3 min 05 s"), (7_380, "2 h 03 min"), (None, "–"),
])
def test_duration_in_words(seconds, shown):
    assert formatting.duration(seconds) == shown


def test_count_puts_the_noun_in_the_right_number():
    assert formatting.count(1, "face") == "1 face"
    assert formatting.count(2000, "face") == "2,000 faces"


def test_markdown_keeps_the_star_of_a_file_pattern():
    assert formatting.code("images/<split>/<class>/*.jpg") == "`images/<split>/<class>/*.jpg`"
    assert formatting.escape_markdown("images/<split>/<class>/*.jpg or <class>/*.jpg") == (
        r"images/\<split\>/\<class\>/\*.jpg or \<class\>/\*.jpg")


def test_rounded_probabilities_leave_other_columns_alone():
    table = pd.DataFrame({"file": ["a.jpg"], "happy": [0.12345678901234567], "x": [3]})
    rounded = formatting.rounded_probabilities(table, ["happy", "absent"])
    assert rounded["happy"].tolist() == [0.1235]
    assert table["happy"].tolist() == [0.12345678901234567]
    assert rounded["x"].tolist() == [3]
