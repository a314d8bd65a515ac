"""Label audit: rank a split's images by how much the model doubts their given label.

The ranking is cleanlab's label-quality score (`cleanlab.rank.get_label_quality_scores`) on the
model's predicted probabilities, averaged over each face and its mirror image. Lower scores are
more suspicious. Of cleanlab's scores, `self_confidence` (the probability of the given label)
found the most of 150 deliberately moved FER2013 validation labels among the 300 most suspicious
(bench/bench_audit.py, chosen on seeds 1-3 before the recorded seed 0; docs/benchmarks.md);
`normalized_margin`, `confidence_weighted_entropy` and class-adjusted probabilities found fewer.

A model has fitted its own training split, so its probabilities there are over-confident; the
audit can instead use out-of-fold probabilities: k small models, each trained without one fold and
predicting it (`out_of_fold_probabilities`).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from fer.errors import FerError

METHOD = "self_confidence"  # Chosen by measurement (module docstring).
Progress = Callable[[float, str], None]  # (fraction done, message)


class Suspect(NamedTuple):
    """An image whose given label the model doubts: lower `score` is more suspicious."""

    index: int  # Position in the split.
    file: str  # The image's name in the dataset (its path inside the folder or zip, or "row N" of a CSV).
    given: str
    suggested: str  # The model's most likely class other than the given one.
    score: float  # cleanlab's label quality, 0..1.


@dataclass(frozen=True, eq=False)
class Audit:
    """A split's images ranked by label quality, and where the probabilities came from."""

    split: str
    classes: tuple[str, ...]
    suspects: tuple[Suspect, ...]  # Every image, most suspicious first.
    probabilities: np.ndarray  # (N, C) in the dataset's class order, split order.
    out_of_fold: bool  # False: the model may have fitted these images (its training split).
    seconds: float


def label_quality(labels: np.ndarray, probabilities: np.ndarray, *, method: str = METHOD) -> np.ndarray:
    """(N,) cleanlab label-quality scores in 0..1 for class indexes `labels` and (N, C) probabilities."""
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, int)
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"need (N, C) probabilities for N={len(labels)} labels, got {probabilities.shape}")
    if len(labels) == 0:
        return np.zeros(0)
    # cleanlab rejects rows that do not sum to 1 within a tolerance; float32 softmax can miss it.
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    return np.asarray(get_label_quality_scores(labels, probabilities, method=method), float)


def rank_suspects(labels: np.ndarray, probabilities: np.ndarray, files: Sequence[str], classes: Sequence[str],
                  *, method: str = METHOD) -> list[Suspect]:
    """Every image as a Suspect, most suspicious (lowest label quality) first."""
    labels = np.asarray(labels, int)
    scores = label_quality(labels, probabilities, method=method)
    others = np.array(probabilities, np.float64, copy=True)
    others[np.arange(len(labels)), labels] = -1.0
    suggested = others.argmax(axis=1) if len(labels) else np.zeros(0, int)
    order = np.argsort(scores, kind="stable")
    return [Suspect(int(i), files[i], classes[labels[i]], classes[suggested[i]], float(scores[i])) for i in order]


def suspects_json(suspects: Sequence[Suspect]) -> list[dict]:
    """The JSON list `python -m fer audit --json` prints: most suspicious first."""
    return [{"file": s.file, "given": s.given, "suggested": s.suggested, "score": round(s.score, 6)}
            for s in suspects]


def audit_split(model, model_classes: Sequence[str], dataset, split: str, *,
                probabilities: np.ndarray | None = None, progress: Progress | None = None) -> Audit:
    """Rank `split` of a Dataset by label quality under `model` (anything with `predict_on_batch`: a Keras
    model or the ONNX runtime), or under given `probabilities` (N, C in the dataset's class order, e.g.
    out-of-fold ones)."""
    from fer.evaluate.scoring import align_classes, check_classes, predict_probabilities

    images, labels = dataset.arrays(split)
    if len(labels) == 0:
        raise FerError(f"the '{split}' split has no images to audit")
    started = time.perf_counter()
    out_of_fold = probabilities is not None
    if probabilities is None:
        check_classes(model, model_classes, dataset.classes)
        raw = predict_probabilities(model, images, tta=True, progress=progress)
        probabilities = align_classes(raw, model_classes, dataset.classes)
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.shape != (len(labels), len(dataset.classes)):
        raise FerError(f"expected probabilities of shape {(len(labels), len(dataset.classes))}, "
                       f"got {probabilities.shape}")
    suspects = rank_suspects(labels, probabilities, dataset.split(split).files, dataset.classes)
    return Audit(split, tuple(dataset.classes), tuple(suspects), probabilities, out_of_fold,
                 time.perf_counter() - started)


def fitted_split(card, split: str) -> bool:
    """Whether the model of `card` was trained on `split` (so its probabilities there are over-confident)."""
    hyper = card.hyperparameters if card is not None else {}
    return split == (hyper or {}).get("train_split", "train")


# --- Out-of-fold probabilities ----------------------------------------------------------------


@dataclass(frozen=True)
class OutOfFold:
    """How out-of-fold probabilities are made: k small models, each trained without one fold."""

    folds: int = 3  # Each model sees 2/3 of the split; more folds cost more models.
    preset: str = "tiny"  # 25k parameters: minutes, not hours, on a CPU.
    epochs: int = 8  # The tiny preset levels off after about this many on FER2013-sized splits.
    seed: int = 0

    def __post_init__(self):
        if self.folds < 2:
            raise FerError(f"out-of-fold probabilities need at least 2 folds, got {self.folds}")
        if self.epochs < 1:
            raise FerError(f"epochs must be at least 1, got {self.epochs}")


def fold_of(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """(N,) fold index of each image, stratified by class."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, int)
    largest = np.bincount(labels).max() if len(labels) else 0
    assignment = np.zeros(len(labels), int)
    if largest < folds:
        raise FerError(f"{folds} folds need at least {folds} images of some class; the split has too few")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Classes rarer than the fold count are spread as far as they go.
        for index, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            assignment[held_out] = index
    return assignment


def out_of_fold_probabilities(dataset, split: str, config: OutOfFold = OutOfFold(), *,
                              progress: Progress | None = None) -> np.ndarray:
    """(N, C) probabilities of `split` where each image is predicted by a model that never saw it."""
    from fer.data.datasets import dataset_from_arrays
    from fer.evaluate.scoring import predict_probabilities
    from fer.model.files import load_model
    from fer.train.config import TrainConfig
    from fer.train.loop import train

    images, labels = dataset.split(split).images, dataset.split(split).labels
    folds = fold_of(labels, config.folds, config.seed)
    probabilities = np.zeros((len(labels), len(dataset.classes)), np.float32)
    with tempfile.TemporaryDirectory(prefix="fer-oof-") as work:
        for fold in range(config.folds):
            if progress is not None:
                progress(fold / config.folds, f"training model {fold + 1} of {config.folds} ({config.preset}, "
                                              f"{config.epochs} epochs)")
            keep, held = folds != fold, folds == fold
            part = dataset_from_arrays(
                {"train": (images[keep], labels[keep]), "validation": (images[held], labels[held])},
                classes=dataset.classes, source=f"{dataset.source} fold {fold + 1}")
            result = train(part, TrainConfig(preset=config.preset, epochs=config.epochs, seed=config.seed + fold),
                           Path(work) / f"fold-{fold + 1}", resume=False, evaluate_splits=False)
            model, _ = load_model(result.model_path)
            probabilities[held] = predict_probabilities(model, images[held], tta=True)
    if progress is not None:
        progress(1.0, "out-of-fold probabilities ready")
    return probabilities


def estimate_out_of_fold_seconds(images: int, config: OutOfFold = OutOfFold(), *, sample: int = 1024) -> float:
    """Seconds `out_of_fold_probabilities` will take for a split of `images`, from timing `sample`
    images of one training epoch of the preset on this machine (a few seconds)."""
    import keras

    from fer.model.presets import build_model

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (sample, 48, 48, 1)).astype(np.float32)
    targets = keras.utils.to_categorical(rng.integers(0, 7, sample), 7)
    model = build_model(config.preset)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(pixels[:128], targets[:128], batch_size=64, epochs=1, verbose=0)  # Compiles the graph.
    started = time.perf_counter()
    model.fit(pixels, targets, batch_size=64, epochs=1, verbose=0)
    per_image = (time.perf_counter() - started) / sample
    trained = images * (config.folds - 1) / config.folds * config.epochs * config.folds
    return per_image * trained * 1.15  # Validation passes and checkpoints add about 15%.


# --- Decisions and exports --------------------------------------------------------------------


def relabel_csv(relabels: Mapping[str, str], given: Mapping[str, str], *, split: str) -> str:
    """A CSV of the images marked wrong: split, file, given label, new label."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["split", "file", "given", "new_label"])
    for file, new in relabels.items():
        writer.writerow([split, file, given[file], new])
    return out.getvalue()


def copy_suffix(dataset) -> str:
    """The file suffix a corrected copy of `dataset` gets: .csv, .zip, or none for a folder."""
    if dataset.format == "fer2013-csv":
        return ".csv"
    return ".zip" if dataset.format.endswith("-zip") else ""


def datasets_limit_bytes() -> int:
    """How much a user's datasets folder (their corrected copies) may hold before a new copy is refused:
    $FER_STUDIO_DATASETS_MB megabytes (default 5,000: some eighty copies of the 56 MB Kaggle FER2013 zip)."""
    try:
        megabytes = float(os.environ.get("FER_STUDIO_DATASETS_MB", "5000"))
    except ValueError:
        megabytes = 5000.0
    return int(max(megabytes, 0) * 1_000_000)


def corrected_copy_in(folder: Path, name: str, dataset, split: str, relabels: Mapping[str, str], *,
                      max_bytes: int | None = None) -> Path:
    """Write a corrected copy (see `corrected_copy`) as `name` in `folder`, the user's datasets folder: a plain
    name that is not taken yet (FerError in words otherwise). `max_bytes`: refuse while the folder already
    holds that much (the user's own copies are theirs to delete, never removed by the app)."""
    from fer.storage import new_path, size_of

    if max_bytes is not None and (used := size_of(folder)) >= max_bytes:
        raise FerError(f"your datasets folder already holds {used / 1e6:,.0f} MB (at most {max_bytes / 1e6:,.0f} MB); "
                       f"delete copies you no longer need from {folder}")
    return corrected_copy(dataset, split, relabels, new_path(folder, name, copy_suffix(dataset)))


def corrected_copy(dataset, split: str, relabels: Mapping[str, str], target: str | Path) -> Path:
    """Write the dataset with `relabels` ({file: new class}) applied to `split`, in the source's own format:
    a Kaggle or class-folder tree as a folder or zip (files byte-for-byte, relabelled ones moved to their new
    class folder), or a fer2013.csv with the emotion codes changed. Returns the path written.

    Never writes over anything: a target that exists is refused (FerError), and the name is claimed
    atomically, so a copy written at the same moment by another session is refused too."""
    target = Path(target)
    if suffix := copy_suffix(dataset):
        target = target.with_suffix(suffix)
    if target.resolve() == Path(dataset.source).resolve():
        raise FerError("the corrected copy must not replace the dataset it is made from; choose another name")
    if target.exists() or target.is_symlink():
        raise FerError(f"{target.name} already exists; choose a new name for the corrected copy")
    files = set(dataset.split(split).files)
    unknown = [name for name in relabels if name not in files]
    if unknown:
        raise FerError(f"'{unknown[0]}' is not an image of the '{split}' split")
    bad = [label for label in relabels.values() if label not in dataset.classes]
    if bad:
        raise FerError(f"unknown class '{bad[0]}'; choose one of: {', '.join(dataset.classes)}")
    layout = dataset.format.rsplit("-", 1)[0]
    if dataset.format == "fer2013-csv":
        return _written_then_claimed(target, lambda temporary: _corrected_csv(dataset, split, relabels, temporary))
    if layout not in ("kaggle", "class-folders"):
        raise FerError(f"a corrected copy can be written for image folders, zips and fer2013.csv, "
                       f"not for a '{dataset.format}' dataset; download the relabel CSV instead")
    return _corrected_tree(dataset, split, relabels, target)


def _written_then_claimed(target: Path, write: Callable[[Path], object]) -> Path:
    """Let `write` fill a temporary file beside `target`, then give it the name `target` only if that is free."""
    from fer.storage import claim

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        claim(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _class_folders(dataset, split: str) -> tuple[int, dict[int, str]]:
    """The depth of the class folder in the split's file paths, and each class's folder name there."""
    split_data = dataset.split(split)
    first = split_data.files[0].split("/")
    depth = len(first) - 2
    names: dict[int, str] = {}
    for file, label in zip(split_data.files, split_data.labels):
        names.setdefault(int(label), file.split("/")[depth])
    return depth, names


def _moved(file: str, depth: int, folder: str) -> str:
    parts = file.split("/")
    parts[depth] = folder
    return "/".join(parts)


def _corrected_tree(dataset, split: str, relabels: Mapping[str, str], target: Path) -> Path:
    from fer.storage import claim_folder

    source = Path(dataset.source)
    depth, folders = _class_folders(dataset, split)
    class_index = {name: i for i, name in enumerate(dataset.classes)}
    renamed = {file: _moved(file, depth, folders.get(class_index[new], new)) for file, new in relabels.items()}
    if dataset.format.endswith("-zip"):
        def write(temporary: Path) -> None:
            with zipfile.ZipFile(source) as archive, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as out:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    with archive.open(info) as entry, out.open(renamed.get(info.filename, info.filename), "w") as copy:
                        shutil.copyfileobj(entry, copy)  # Entry by entry: memory holds one buffer, not the zip.

        return _written_then_claimed(target, write)
    claim_folder(target)
    try:
        shutil.copytree(source, target, dirs_exist_ok=True)
        for old, new in renamed.items():
            (target / new).parent.mkdir(parents=True, exist_ok=True)
            (target / old).replace(target / new)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # Only what this call created: the folder it claimed.
        raise
    return target


def _corrected_csv(dataset, split: str, relabels: Mapping[str, str], target: Path) -> None:
    """Copy the source CSV line by line to `target`, with the relabelled rows' emotion codes changed."""
    from fer.labels import FER2013_CSV_LABELS

    new_codes = {int(file.removeprefix("row ")): str(FER2013_CSV_LABELS.index(new)) for file, new in relabels.items()}
    with open(dataset.source, newline="", encoding="utf-8-sig") as source, \
            open(target, "w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(source), csv.writer(out, lineterminator="\n")
        header = next(reader)
        emotion = next(i for i, column in enumerate(header) if column.strip().lower() == "emotion")
        writer.writerow(header)
        row = 1  # "row N" counts the header as row 1 and skips blank lines, as fer.data.datasets names them.
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            row += 1
            if row in new_codes:
                fields[emotion] = new_codes[row]
            writer.writerow(fields)
