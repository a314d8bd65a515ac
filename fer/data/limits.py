"""How much of a dataset, image or video FER Studio reads before it stops and says so in words.

Every file may come from someone hostile (an upload, a path typed into a shared server), so each kind of
input has a cap judged *before* the expensive step: an image's header before it is decoded, a zip entry's
declared size before it is unpacked, a CSV's rows as they stream. The same limits apply in the pages and
on the command line. Sized so the largest honest inputs fit with room, and the worst case of each stays
within about 1.5 GB of memory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetLimits:
    """Caps on opening one dataset (folder, zip or CSV)."""

    # FER2013 has 35,887 faces; 200,000 decoded 48×48 faces are 460 MB, twice that while they are stacked.
    max_images: int = 200_000
    # A folder walk stops after this many files or this many seconds (a path at / would walk the disk).
    max_files: int = 250_000
    walk_seconds: float = 20.0
    # The central directory is read whole when a zip opens: about 0.5 KB of memory per entry.
    max_zip_entries: int = 250_000
    # A face image is a few KB; a 64 MB entry is a photo at most, and larger ones are unpacked by nobody.
    max_entry_bytes: int = 64 * 1024 * 1024
    # JPEG and PNG barely compress further (ratio about 1); text or blank pixels reach 100 at most.
    # A zip bomb's entry unpacks to over 1,000 times its packed size.
    max_compression_ratio: float = 200.0
    # A fer2013.csv row is about 8.6 KB (2,304 pixel values); a longer line is not one.
    max_csv_line_bytes: int = 64 * 1024

    def __post_init__(self):
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be above 0, got {value}")


DATASET_LIMITS = DatasetLimits()
