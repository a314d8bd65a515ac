"""How numbers, sizes, times and probabilities are shown to a person: one home for every table and caption.

Percentages carry one decimal, sizes take the unit that keeps them readable (never "0.0 MB"),
times are the viewer's local time (never a raw ISO string), durations are measured wall time in
words, and missing values are said in words rather than shown as "None".
"""

from __future__ import annotations

import datetime
import math
import re
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # Imported where used: fer.model.cards formats durations without needing pandas.
    import pandas as pd

PROBABILITY_DECIMALS = 4  # A CSV's probabilities: enough to rank faces, not 17 digits of float noise.
_UNITS = ("B", "KB", "MB", "GB", "TB")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#<>|~$])")  # $: Streamlit renders $...$ as LaTeX.


def percent(fraction: float | None, *, decimals: int = 1, missing: str = "–") -> str:
    """A fraction (0.123) as a percentage with one decimal ("12.3%"); `missing` for None or NaN."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return missing
    return f"{fraction * 100:.{decimals}f}%"


def file_size(size: int | float) -> str:
    """Bytes in the unit that keeps the number readable: "812 B", "4.2 KB", "18.6 MB", "1.2 GB".

    Sizes use powers of 1,000, as file managers and browsers' download bars do.
    """
    if size < 0:
        raise ValueError(f"a size cannot be negative, got {size}")
    value, unit = float(size), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    if unit == 0:
        return f"{int(value):,} B"
    return f"{value:.0f} {_UNITS[unit]}" if value >= 100 else f"{value:.1f} {_UNITS[unit]}"


def local_time(moment: str | float | datetime.datetime | None, *, missing: str = "–") -> str:
    """A moment (ISO text, a Unix time or a datetime) in this machine's local time, to the minute.

    Naive ISO text and naive datetimes are taken as UTC, which is how FER Studio writes them.
    """
    if moment is None or moment == "":
        return missing
    if isinstance(moment, (int, float)):
        stamp = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)
    elif isinstance(moment, datetime.datetime):
        stamp = moment
    else:
        try:
            stamp = datetime.datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
        except ValueError:
            return str(moment)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None, *, missing: str = "–") -> str:
    """Elapsed seconds in words: "0.4 s", "54 s", "3 min 05 s", "2 h 03 min"."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return missing
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 face', '2,000 faces': a count with its noun in the right number."""
    return f"{number:,} {noun if number == 1 else (plural or noun + 's')}"


def code(text: str) -> str:
    """Text as inline Markdown code, so patterns like `images/<split>/<class>/*.jpg` keep their `*`."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def escape_markdown(text: str) -> str:
    """Text whose Markdown characters (`*`, `_`, brackets...) are shown as they are, not as formatting."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def rounded_probabilities(table: pd.DataFrame, columns: Iterable[str],
                          decimals: int = PROBABILITY_DECIMALS) -> pd.DataFrame:
    """A copy of `table` with the probability `columns` rounded (for CSVs and tables, not for computing)."""
    rounded = table.copy()
    for column in columns:
        if column in rounded:
            rounded[column] = rounded[column].astype("float64").round(decimals)
    return rounded
