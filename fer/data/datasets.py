"""Open every dataset format users bring as one in-memory `Dataset`.

Formats, told apart by `open_dataset`:
- the Kaggle "Face Expression Recognition Dataset" layout, `images/<split>/<class>/*`, as a folder
  or a zip (read in place), also when nested a level or two deeper;
- `fer2013.csv` (`emotion,pixels,Usage`);
- plain class folders `<root>/<class>/*` (folder or zip), split by a seeded stratified draw;
- the synthetic demo set (`DEMO`), drawn in memory on first use.

Every image becomes 48×48 grayscale uint8. Opening is cached on disk, keyed by the source's
paths, sizes and modification times, so a second open of the same source is fast.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import json
import os
import posixpath
import struct
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fer.errors import DatasetError, in_words
from fer.data.images import ImageError, decode_face
from fer.data.limits import DATASET_LIMITS, DatasetLimits
from fer.data.roots import DataRoots
from fer.labels import CLASSES, FER2013_CSV_LABELS, IMAGE_SIZE, SPLIT_ALIASES, canonical_class
from fer.paths import cache_dir
from fer.storage import prune_least_recent

DEMO = "demo"  # The name that opens the built-in synthetic demo set.
DEMO_FORMAT = "built-in demo set"  # Its format, as pages and `fer info` name it.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".pgm", ".ppm")
LOADER_VERSION = 2  # Bump when decoding changes, so stale caches are not reused.
SPLIT_ORDER = ("train", "validation", "test")

Progress = Callable[[float, str], None]  # (fraction done, message)


@dataclass(frozen=True)
class Split:
    """One split's images (N, 48, 48) uint8, labels (N,) indexes into classes, and file names."""

    images: np.ndarray
    labels: np.ndarray
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Skipped:
    """A file that was left out, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """A facial-expression dataset, fully decoded in memory."""

    source: str
    format: str
    classes: tuple[str, ...]
    splits: dict[str, Split]
    skipped: tuple[Skipped, ...] = ()
    conversions: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def split_names(self) -> list[str]:
        return list(self.splits)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class for each split: {split: {class: n}}."""
        return {
            name: dict(zip(self.classes, np.bincount(split.labels, minlength=len(self.classes)).tolist()))
            for name, split in self.splits.items()
        }

    def split(self, name: str) -> Split:
        """The named split; raises DatasetError listing the splits that exist."""
        if name not in self.splits:
            raise DatasetError(f"this dataset has no '{name}' split; it has: {', '.join(self.splits)}")
        return self.splits[name]

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images (N, 48, 48, 1) uint8, labels (N,) int) of a split."""
        split = self.split(name)
        return split.images[..., None], split.labels

    def batches(self, name: str, *, batch_size: int = 64, shuffle: bool = False, seed: int = 0):
        """Batches of (float images 0..255, one-hot labels) for Keras's fit/evaluate: `tf_data` under
        the TensorFlow backend, NumPy batches (`fer.data.batches.ArrayBatches`) under JAX or PyTorch,
        which then train without TensorFlow installed (on a GPU machine, say)."""
        import keras

        if keras.backend.backend() == "tensorflow":
            return self.tf_data(name, batch_size=batch_size, shuffle=shuffle, seed=seed)
        from fer.data.batches import ArrayBatches

        images, labels = self.arrays(name)
        return ArrayBatches(images, labels, len(self.classes), batch_size=batch_size, shuffle=shuffle, seed=seed)

    def tf_data(self, name: str, *, batch_size: int = 64, shuffle: bool = False, seed: int = 0):
        """A batched, cached, prefetched tf.data pipeline of (float images 0..255, one-hot labels)."""
        import tensorflow as tf

        images, labels = self.arrays(name)
        num_classes = len(self.classes)
        pipeline = tf.data.Dataset.from_tensor_slices((images, labels))
        pipeline = pipeline.map(
            lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, num_classes)),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).cache()
        if shuffle:
            pipeline = pipeline.shuffle(min(len(labels), 20_000), seed=seed, reshuffle_each_iteration=True)
        return pipeline.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def open_dataset(
    path: str | os.PathLike,
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    use_cache: bool = True,
    progress: Progress | None = None,
    roots: DataRoots | None = None,
    limits: DatasetLimits = DATASET_LIMITS,
) -> Dataset:
    """Open a dataset folder, zip or CSV (or DEMO), detecting its layout.

    `validation_fraction` and `seed` only apply to sources with a single split (plain class
    folders, a CSV without Usage), which get a stratified validation split.
    `roots`: for a path from a browser, the data roots it must lie in; a folder's files that are links
    leading outside them are left out. The command line passes none: its user may open any path.
    `limits`: the caps on files, zip entries and CSV rows (fer.data.limits), the same everywhere.
    Raises DatasetError with a message saying what was expected.
    """
    if str(path) == DEMO:
        return _open_demo(use_cache, progress)
    source = Path(path).expanduser()
    if roots is not None and not roots.contains(source):
        raise DatasetError(f"{source} is outside the folders this server opens datasets from")
    if not source.exists():
        raise DatasetError(
            f"{source} does not exist; expected a dataset folder, a .zip or a fer2013-style .csv"
        )
    listing = _FolderListing(source, limits, roots) if source.is_dir() else None
    key = _cache_key(source, validation_fraction, seed, listing) if use_cache else None
    if key is not None:
        cached = _read_cache(key)
        if cached is not None:
            return cached
    if source.is_file() and source.suffix.lower() == ".csv":
        dataset = _open_csv(source, validation_fraction, seed, limits)
    elif source.is_file() and zipfile.is_zipfile(source):
        _check_zip_entry_count(source, limits)
        try:
            with zipfile.ZipFile(source) as archive:
                dataset = _open_image_tree(source, _ZipListing(archive, limits), "zip", validation_fraction, seed,
                                           progress, limits)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise DatasetError(f"{source.name} is a damaged zip archive ({error}); download it again") from error
    elif listing is not None:
        dataset = _open_image_tree(source, listing, "folder", validation_fraction, seed, progress, limits)
    else:
        raise DatasetError(f"{source} is not a folder, a .zip or a .csv dataset")
    if key is not None:
        _write_cache(key, dataset)
    return dataset


def dataset_from_arrays(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], *, classes: tuple[str, ...] = CLASSES, source: str = "arrays"
) -> Dataset:
    """A Dataset from in-memory {split: (images (N, 48, 48) uint8, labels (N,))}, e.g. synthetic faces."""
    built = {
        name: Split(np.asarray(images, np.uint8), np.asarray(labels, np.int64),
                    tuple(f"{name}/{i}" for i in range(len(labels))))
        for name, (images, labels) in splits.items()
    }
    return _finish(Dataset(source=source, format="arrays", classes=tuple(classes), splits=built))


def demo_is_drawn() -> bool:
    """Whether the demo set is already in the disk cache, so opening it costs a read, not a drawing."""
    return _cache_path(_demo_cache_key()).exists()


def _demo_cache_key() -> str:
    from fer.data import synthetic

    return f"demo-v3-{synthetic.DEMO_TRAIN_PER_CLASS}-{synthetic.DEMO_VALIDATION_PER_CLASS}"


def _open_demo(use_cache: bool, progress: Progress | None) -> Dataset:
    from fer.data import synthetic

    key = _demo_cache_key()
    if use_cache and (cached := _read_cache(key)) is not None:
        return cached
    drawn = synthetic.draw_demo(train_per_class=synthetic.DEMO_TRAIN_PER_CLASS,
                                validation_per_class=synthetic.DEMO_VALIDATION_PER_CLASS, progress=progress)
    dataset = _finish(Dataset(source=DEMO, format=DEMO_FORMAT, classes=CLASSES,
                              splits={name: Split(*arrays) for name, arrays in drawn.items()}))
    if use_cache:
        _write_cache(key, dataset)
    return dataset


# --- Image trees: folders and zips -------------------------------------------------------------


class _FolderListing:
    """Relative POSIX paths of the files in a folder, and a reader for them.

    The walk stops with a sentence after `limits.max_files` files or `limits.walk_seconds`: a path such
    as / would otherwise walk the whole disk. Folders are listed one entry at a time (os.scandir), so a
    folder of millions of files costs no more than the cap. Links to folders are not followed; with
    `roots`, links to files outside them are left out and named in `skipped`.
    """

    def __init__(self, root: Path, limits: DatasetLimits = DATASET_LIMITS, roots: DataRoots | None = None):
        self.root = root
        self.files: list[str] = []
        self.empty_dirs: list[str] = []
        self.skipped: list[Skipped] = []
        self.stamps: list[str] = []  # "name|size|mtime" of each file, for the cache key.
        started, seen = time.monotonic(), 0
        pending = [""]
        while pending:
            relative = pending.pop()
            files, subdirs = [], []
            try:
                entries = os.scandir(root / relative if relative else root)
            except OSError:
                continue  # An unreadable subfolder: its images are missing, like unreadable files.
            with entries:
                for entry in entries:
                    seen += 1
                    if seen > limits.max_files:
                        raise DatasetError(
                            f"{root} holds more than {limits.max_files:,} files; a dataset folder holds its "
                            f"images and little else: choose the dataset's own folder")
                    if seen % 1000 == 0 and time.monotonic() - started > limits.walk_seconds:
                        raise DatasetError(
                            f"listing {root} took over {limits.walk_seconds:g} s and was stopped; choose the "
                            "dataset's own folder, or a .zip of it")
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.name)
                    else:
                        files.append(entry)
            name_of = {entry.name: posixpath.join(relative, entry.name) if relative else entry.name
                       for entry in files}
            if not files and not subdirs and relative:
                self.empty_dirs.append(relative)
            for entry in sorted(files, key=lambda item: item.name):
                name = name_of[entry.name]
                if roots is not None and entry.is_symlink() and not roots.contains(entry.path):
                    self.skipped.append(Skipped(name, "a link to a file outside the folders this server opens"))
                    self.stamps.append(f"{name}|outside")
                    continue
                try:
                    stat = entry.stat()
                except OSError:
                    stat = None  # A broken link: reading it says why.
                self.files.append(name)
                self.stamps.append(f"{name}|{stat.st_size}|{stat.st_mtime_ns}" if stat else f"{name}|missing")
            pending.extend(posixpath.join(relative, sub) if relative else sub for sub in sorted(subdirs, reverse=True))
        self.files.sort()
        self.empty_dirs.sort()

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


class _ZipListing:
    """The same for a zip archive, read in place; rejects entries that escape the archive.

    Each entry is judged by its declared size and compression ratio before anything is unpacked; one
    that fails is left out (named in `skipped`) and the rest of the archive still opens. Reading stops
    at the declared size (zipfile's own rule), so an entry that lies about it cannot unpack further.
    """

    def __init__(self, archive: zipfile.ZipFile, limits: DatasetLimits = DATASET_LIMITS):
        self.archive = archive
        self.limits = limits
        self.skipped: list[Skipped] = []
        names = archive.namelist()
        for name in names:
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise DatasetError(
                    f"zip entry '{name}' points outside the archive; expected relative paths "
                    "like images/train/happy/0001.jpg"
                )
        names = [n for n in names if not n.startswith("__MACOSX/")]
        candidates = sorted(n for n in names if not n.endswith("/") and not posixpath.basename(n).startswith("."))
        self.files = []
        for name in candidates:
            problem = _entry_problem(archive.getinfo(name), limits)
            if problem:
                self.skipped.append(Skipped(name, problem))
            else:
                self.files.append(name)
        self.empty_dirs = sorted(
            n.rstrip("/") for n in names
            if n.endswith("/") and not any(f.startswith(n) for f in candidates)
        )

    def read(self, name: str) -> bytes:
        with self.archive.open(name) as entry:
            return entry.read(self.limits.max_entry_bytes + 1)


def _entry_problem(info: zipfile.ZipInfo, limits: DatasetLimits) -> str | None:
    """Why a zip entry is not unpacked, judged from the archive's directory alone; None when it may be."""
    if info.flag_bits & 0x1:
        return "the zip entry is encrypted (password-protected)"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return "the zip entry is packed with a method this app cannot unpack"
    if info.file_size > limits.max_entry_bytes:
        return (f"the zip entry would unpack to {info.file_size / 1e6:,.0f} MB; a dataset image may be at most "
                f"{limits.max_entry_bytes / 1e6:,.0f} MB")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > 1_000_000 and ratio > limits.max_compression_ratio:
        return (f"the zip entry would unpack to {ratio:,.0f} times its packed size, like a zip bomb "
                f"(images stay below {limits.max_compression_ratio:,.0f} times)")
    return None


def _check_zip_entry_count(source: Path, limits: DatasetLimits) -> None:
    """Refuse a zip whose end record declares more entries than the cap, before zipfile reads them all."""
    declared = _declared_zip_entries(source)
    if declared is not None and declared > limits.max_zip_entries:
        raise DatasetError(f"{source.name} holds {declared:,} entries; a dataset zip may hold at most "
                           f"{limits.max_zip_entries:,}")


def _declared_zip_entries(source: Path) -> int | None:
    """The entry count a zip's end-of-central-directory record declares (ZIP64's when it has one); None if
    the record cannot be found (zipfile then says the archive is damaged)."""
    with open(source, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail_size = min(size, 22 + 65_535 + 20)  # The record, its longest comment, ZIP64's locator.
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack("<H", tail[at + 10:at + 12])[0]
        locator = tail[at - 20:at] if at >= 20 else b""
        if count == 0xFFFF and locator[:4] == b"PK\x06\x07":
            offset = struct.unpack("<Q", locator[8:16])[0]
            handle.seek(offset)
            record = handle.read(56)
            if record[:4] == b"PK\x06\x06" and len(record) == 56:
                count = struct.unpack("<Q", record[32:40])[0]
        return count


def _detect_layout(files: list[str]) -> tuple[str, int]:
    """Return ("kaggle" | "class-folders", depth of the class folder) for a list of image paths."""
    if not files:
        raise DatasetError(
            "no images found; expected images/<split>/<class>/*.jpg (Kaggle layout) "
            "or <class>/*.jpg (class folders)"
        )
    depths = {f.count("/") for f in files}
    if len(depths) != 1:
        shallow, deep = min(files, key=lambda f: f.count("/")), max(files, key=lambda f: f.count("/"))
        raise DatasetError(
            f"images sit at different folder depths ('{shallow}' and '{deep}'); expected "
            "images/<split>/<class>/*.jpg or <class>/*.jpg"
        )
    depth = depths.pop()  # Number of folders above each image.
    parts = [f.split("/") for f in files]
    if depth >= 2 and all(p[-3].lower() in SPLIT_ALIASES for p in parts):
        if len({tuple(p[:-3]) for p in parts}) == 1:
            return "kaggle", depth - 1
    if depth >= 1 and len({tuple(p[:-2]) for p in parts}) == 1:
        class_names = {p[-2] for p in parts}
        if all(name.lower() in SPLIT_ALIASES for name in class_names):
            raise DatasetError(
                f"found split folders ({', '.join(sorted(class_names))}) with images directly "
                "inside; expected a folder per class within each split, like train/happy/*.jpg"
            )
        return "class-folders", depth - 1
    raise DatasetError(
        f"unrecognised layout (e.g. '{files[0]}'); expected images/<split>/<class>/*.jpg "
        "(Kaggle layout) or <class>/*.jpg (class folders)"
    )


def _class_names(folder_names: set[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Our 7 classes if every folder is one of them (or an alias), else the sorted folder names."""
    canonical = {name: canonical_class(name) for name in folder_names}
    if all(canonical.values()):
        return CLASSES, canonical  # type: ignore[return-value]
    return tuple(sorted(folder_names)), {name: name for name in folder_names}


def _open_image_tree(source, listing, container, validation_fraction, seed, progress,
                     limits: DatasetLimits = DATASET_LIMITS) -> Dataset:
    files = [f for f in listing.files if f.lower().endswith(IMAGE_EXTENSIONS)]
    left_out = [item for item in listing.skipped if item.file.lower().endswith(IMAGE_EXTENSIONS)]
    if len(files) > limits.max_images:
        raise DatasetError(f"{source.name} holds {len(files):,} images; a dataset may hold at most "
                           f"{limits.max_images:,}")
    if not files and left_out:
        raise DatasetError(f"no readable images: {left_out[0].file}: {left_out[0].reason}")
    layout, class_depth = _detect_layout(files)
    for empty in listing.empty_dirs:
        if empty.count("/") == class_depth:
            raise DatasetError(
                f"class folder '{empty}' has no images; expected image files (.jpg, .png, …) "
                "in every class folder (remove the folder if the class is unused)"
            )
    folder_of = {f: f.split("/")[class_depth] for f in files}
    classes, to_class = _class_names(set(folder_of.values()))
    class_index = {name: i for i, name in enumerate(classes)}

    images, skipped, conversions = _decode_all(files, listing.read, progress)
    skipped = left_out + skipped
    kept = [f for f in files if f in images]
    labels = {f: class_index[to_class[folder_of[f]]] for f in kept}
    if layout == "kaggle":
        split_of = {f: SPLIT_ALIASES[f.split("/")[class_depth - 1].lower()] for f in kept}
        names = sorted(set(split_of.values()), key=_split_sort_key)
        splits = {
            name: _make_split([f for f in kept if split_of[f] == name], images, labels) for name in names
        }
    else:
        splits = _stratified_splits(kept, images, labels, validation_fraction, seed)
    return _finish(
        Dataset(
            source=str(source),
            format=f"{layout}-{container}",
            classes=classes,
            splits=splits,
            skipped=tuple(skipped),
            conversions=dict(conversions),
        )
    )


def _decode_all(files, read, progress):
    """Decode every file; returns ({file: image}, [Skipped], Counter of conversions)."""
    images: dict[str, np.ndarray] = {}
    skipped: list[Skipped] = []
    conversions: collections.Counter = collections.Counter()

    def decode(name):
        try:
            return name, *decode_face(read(name)), None
        except ImageError as error:
            return name, None, [], str(error)
        # A damaged entry of an otherwise good zip (a wrong checksum, a cut-short stream) costs that image only.
        except (EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError):
            return name, None, [], "the zip entry is damaged: it cannot be unpacked"
        except OSError as error:
            return name, None, [], in_words(error)

    # PIL releases the GIL while decoding, so two threads use both cores; zipfile reads are locked.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for done, (name, image, notes, problem) in enumerate(pool.map(decode, files, chunksize=256)):
            if problem is not None:
                skipped.append(Skipped(name, problem))
            else:
                images[name] = image
                conversions.update(notes)
            if progress is not None and done % 2000 == 0:
                progress(done / len(files), f"Decoding images {done:,}/{len(files):,}")
    if progress is not None:
        progress(1.0, f"Decoded {len(images):,} images")
    return images, skipped, conversions


def _make_split(files, images, labels) -> Split:
    array = np.stack([images[f] for f in files]) if files else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return Split(array, np.array([labels[f] for f in files], dtype=np.int64), tuple(files))


def _stratified_splits(keys, images, labels, validation_fraction, seed) -> dict[str, Split]:
    """A seeded, per-class train/validation split of a single-split source."""
    if not 0 < validation_fraction < 1:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {validation_fraction}")
    rng = np.random.default_rng(seed)
    by_class = collections.defaultdict(list)
    for key in keys:
        by_class[labels[key]].append(key)
    train, validation = [], []
    for label in sorted(by_class):
        members = [by_class[label][i] for i in rng.permutation(len(by_class[label]))]
        n_validation = int(round(len(members) * validation_fraction))
        if len(members) >= 2:
            n_validation = min(max(n_validation, 1), len(members) - 1)
        validation += members[:n_validation]
        train += members[n_validation:]
    return {"train": _make_split(sorted(train), images, labels),
            "validation": _make_split(sorted(validation), images, labels)}


def _split_sort_key(name: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)


# --- fer2013.csv -------------------------------------------------------------------------------


def _open_csv(source: Path, validation_fraction: float, seed: int,
              limits: DatasetLimits = DATASET_LIMITS) -> Dataset:
    """Stream a fer2013-style CSV row by row: memory holds the decoded faces, never the text, and it
    stops with a sentence at a line longer than a row can be or at more rows than the cap."""
    n_pixels = IMAGE_SIZE * IMAGE_SIZE
    class_index = {name: i for i, name in enumerate(CLASSES)}
    images, labels, usages = [], [], []
    with open(source, "rb") as handle:
        rows = _csv_rows(handle, source, limits)
        columns = [column.strip().lower() for column in next(rows, (1, []))[1]]
        if not {"emotion", "pixels"} <= set(columns):
            raise DatasetError(
                f"{source.name} has columns {columns[:10]}; expected fer2013.csv's "
                "emotion,pixels[,Usage] (emotion 0-6, pixels = 2304 space-separated values)"
            )
        at_emotion, at_pixels = columns.index("emotion"), columns.index("pixels")
        at_usage = columns.index("usage") if "usage" in columns else None
        for line, fields in rows:
            if len(labels) >= limits.max_images:
                raise DatasetError(f"{source.name} has more than {limits.max_images:,} rows; a dataset may hold "
                                   f"at most {limits.max_images:,} faces")
            fields = fields + [""] * (len(columns) - len(fields))
            try:
                code = int(fields[at_emotion])
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # Older NumPy only warns where text stops parsing.
                    values = np.fromstring(fields[at_pixels], dtype=np.int64, sep=" ")
            except (ValueError, DeprecationWarning):
                raise DatasetError(f"{source.name} line {line}: emotion and pixels must be whole numbers") from None
            if not 0 <= code < len(FER2013_CSV_LABELS):
                raise DatasetError(f"{source.name} line {line}: emotion {code} is not in 0-6")
            if values.size != n_pixels:
                raise DatasetError(
                    f"{source.name} line {line}: {values.size} pixel values; expected {n_pixels} (48×48)"
                )
            if values.min() < 0 or values.max() > 255:
                raise DatasetError(f"{source.name} line {line}: pixel values must be 0-255")
            images.append(values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            labels.append(class_index[FER2013_CSV_LABELS[code]])
            usages.append(fields[at_usage] if at_usage is not None else "")
    if not labels:
        raise DatasetError(f"{source.name} has no rows")
    names = [f"row {i + 2}" for i in range(len(labels))]
    image_of, label_of = dict(zip(names, images)), dict(zip(names, labels))
    if at_usage is not None and all(usage != "" for usage in usages):
        usage = [SPLIT_ALIASES.get(u.strip().lower(), u.strip().lower()) for u in usages]
        split_names = sorted(set(usage), key=_split_sort_key)
        splits = {
            name: _make_split([n for n, u in zip(names, usage) if u == name], image_of, label_of)
            for name in split_names
        }
    else:
        splits = _stratified_splits(names, image_of, label_of, validation_fraction, seed)
    return _finish(Dataset(source=str(source), format="fer2013-csv", classes=CLASSES, splits=splits))


def _csv_rows(handle, source: Path, limits: DatasetLimits):
    """(line number, fields) of each non-blank line of a CSV opened in binary; a line longer than
    `limits.max_csv_line_bytes` stops it in words before more of it is read."""
    import csv

    line = 0
    while True:
        raw = handle.readline(limits.max_csv_line_bytes + 1)
        if not raw:
            return
        line += 1
        if len(raw) > limits.max_csv_line_bytes:
            raise DatasetError(f"{source.name} line {line} is longer than {limits.max_csv_line_bytes // 1024} KB; "
                               "a fer2013.csv row is about 9 KB")
        try:
            text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(f"{source.name} line {line} is not UTF-8 text (byte {error.start + 1:,} of the line); "
                               "save it as UTF-8") from None
        if not text.strip():
            continue
        try:
            yield line, next(csv.reader([text]))
        except csv.Error as error:
            raise DatasetError(f"{source.name} line {line} is not a readable CSV line ({error})") from None


# --- Fingerprint and cache ---------------------------------------------------------------------


def _finish(dataset: Dataset) -> Dataset:
    """Check the dataset is usable and stamp its content fingerprint."""
    if all(len(split) == 0 for split in dataset.splits.values()):
        reasons = "; ".join(f"{s.file}: {s.reason}" for s in dataset.skipped[:3])
        raise DatasetError(f"no readable images in {dataset.source} ({reasons})")
    digest = hashlib.sha256(json.dumps(list(dataset.classes)).encode())
    for name, split in dataset.splits.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(split.images).tobytes())
        digest.update(split.labels.astype(np.int64).tobytes())
    return Dataset(**{**dataset.__dict__, "fingerprint": digest.hexdigest()[:16]})


def _cache_key(source: Path, validation_fraction: float, seed: int, listing: _FolderListing | None) -> str | None:
    """A key from the source's path, sizes and mtimes: cheap to compute, changes when files do."""
    digest = hashlib.sha256(f"{LOADER_VERSION}|{source.resolve()}|{validation_fraction}|{seed}".encode())
    if listing is not None:
        for stamp in listing.stamps:
            digest.update(stamp.encode())
    else:
        stat = source.stat()
        digest.update(f"{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def _cache_path(key: str) -> Path:
    return cache_dir() / "datasets" / f"{key}.npz"


def _write_cache(key: str, dataset: Dataset) -> None:
    arrays = {}
    for i, (name, split) in enumerate(dataset.splits.items()):
        arrays[f"images_{i}"] = split.images
        arrays[f"labels_{i}"] = split.labels
        arrays[f"files_{i}"] = np.array(split.files, dtype=str)
    meta = {
        "source": dataset.source,
        "format": dataset.format,
        "classes": list(dataset.classes),
        "splits": list(dataset.splits),
        "skipped": [[s.file, s.reason] for s in dataset.skipped],
        "conversions": dataset.conversions,
        "fingerprint": dataset.fingerprint,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    path = _cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
        prune_least_recent(path.parent, cache_limit_bytes(), keep=(path,))
    except OSError:
        pass  # A cache that cannot be written only costs speed.


def cache_limit_bytes() -> int:
    """How large the decoded-dataset cache may grow: $FER_STUDIO_CACHE_MB megabytes (default 4,000: the
    demo set and FER2013 take 0.3 GB together). Beyond it, the least recently opened datasets go."""
    try:
        megabytes = float(os.environ.get("FER_STUDIO_CACHE_MB", "4000"))
    except ValueError:
        megabytes = 4000.0
    return int(max(megabytes, 0) * 1_000_000)


def _read_cache(key: str) -> Dataset | None:
    """The cached dataset, or None when there is none. A damaged cache file (cut short by a full disk or a
    killed process) is deleted, so the dataset is decoded again and the cache rewritten."""
    path = _cache_path(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            splits = {
                name: Split(stored[f"images_{i}"], stored[f"labels_{i}"], tuple(stored[f"files_{i}"].tolist()))
                for i, name in enumerate(meta["splits"])
            }
        dataset = Dataset(
            source=meta["source"],
            format=meta["format"],
            classes=tuple(meta["classes"]),
            splits=splits,
            skipped=tuple(Skipped(f, r) for f, r in meta["skipped"]),
            conversions=meta["conversions"],
            fingerprint=meta["fingerprint"],
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # Not ours to delete: decoding again still works, only without the cache.
        return None
    try:
        os.utime(path)  # Recently used: the cache's size cap removes the least recently opened first.
    except OSError:
        pass
    return dataset
