"""Dataset statistics for the Dataset page: what is in a dataset, and what is wrong with it.

Everything here is a pure function of a `Dataset` that returns numbers, arrays or DataFrames:
class distribution and imbalance, seeded samples per class, mean faces and pixel histograms per
class, and an image-quality report (conversions, skipped files, near-blank or low-contrast
images, exact duplicates within and across splits). Charts live in `fer.charts.dataset`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd

from fer.data.datasets import Dataset
from fer.labels import IMAGE_SIZE

CHUNK = 4096  # Images per chunk in the per-image passes: bounds the float copies at ~40 MB.


# --- Class distribution ------------------------------------------------------------------------


def class_distribution(dataset: Dataset) -> pd.DataFrame:
    """One row per (split, class): columns split, class, count, percent (of that split)."""
    rows = []
    for split, counts in dataset.counts().items():
        total = sum(counts.values())
        for name, count in counts.items():
            rows.append({"split": split, "class": name, "count": count,
                         "percent": 100.0 * count / total if total else 0.0})
    return pd.DataFrame(rows, columns=["split", "class", "count", "percent"])


def distribution_table(distribution: pd.DataFrame) -> pd.DataFrame:
    """The distribution as one row per class, "<split> images" and "<split> %" columns side by side."""
    table = pd.DataFrame(index=pd.Index(distribution["class"].unique(), name="class"))
    for split, rows in distribution.groupby("split", sort=False):
        table[f"{split} images"] = rows.set_index("class")["count"]
        table[f"{split} %"] = rows.set_index("class")["percent"].round(1)
    return table


def imbalance_ratio(counts: Mapping[str, int]) -> float:
    """Largest class count over smallest (inf when a class is empty); ValueError if all are empty."""
    values = list(counts.values())
    if not values or max(values) == 0:
        raise ValueError("imbalance ratio needs at least one image")
    smallest = min(values)
    return float("inf") if smallest == 0 else max(values) / smallest


def class_weights(counts: Mapping[str, int]) -> dict[str, float]:
    """'Balanced' loss weights, total / (classes × count): each class then weighs the same overall.

    An empty class gets weight 0 (there is nothing to weigh).
    """
    total, present = sum(counts.values()), len(counts)
    return {name: (total / (present * n) if n else 0.0) for name, n in counts.items()}


def class_weight_hint(counts: Mapping[str, int]) -> str:
    """One line on what the class balance means for training."""
    ratio = imbalance_ratio(counts)
    smallest = min(counts, key=counts.get)
    largest = max(counts, key=counts.get)
    if ratio == float("inf"):
        return f"'{smallest}' has no images: a model cannot learn it; add images or drop the class."
    if ratio < 1.5:
        return f"Classes are balanced (ratio {ratio:.1f}): plain cross-entropy is fine, no class weights needed."
    weights = class_weights(counts)
    return (f"'{largest}' has {ratio:.1f}× the images of '{smallest}': weight the loss by class "
            f"({smallest} {weights[smallest]:.2f}, {largest} {weights[largest]:.2f}) or oversample "
            f"'{smallest}', and judge models by macro-F1, not accuracy.")


# --- Samples -----------------------------------------------------------------------------------


class Sample(NamedTuple):
    """One image picked for display: where it is and what it is."""

    split: str
    index: int
    label: str
    file: str


def sample_per_class(dataset: Dataset, split: str, *, per_class: int, seed: int = 0) -> list[Sample]:
    """Up to `per_class` random images of each class from `split`, class by class; same seed, same picks."""
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    data = dataset.split(split)
    rng = np.random.default_rng(seed)
    picked = []
    for label, name in enumerate(dataset.classes):
        members = np.flatnonzero(data.labels == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        picked += [Sample(split, int(i), name, data.files[i]) for i in chosen]
    return picked


# --- Mean face and pixel histogram per class ---------------------------------------------------


@dataclass(frozen=True)
class ClassProfiles:
    """Per class: image count, mean face (C, 48, 48) float32 and pixel-value histogram (C, 256)."""

    classes: tuple[str, ...]
    counts: np.ndarray
    mean_faces: np.ndarray
    histograms: np.ndarray

    def pixel_fractions(self) -> np.ndarray:
        """Histograms as fractions of each class's pixels (rows sum to 1; empty classes stay 0)."""
        totals = self.histograms.sum(axis=1, keepdims=True)
        return np.divide(self.histograms, totals, out=np.zeros(self.histograms.shape), where=totals > 0)


def class_profiles(dataset: Dataset, split: str | None = None) -> ClassProfiles:
    """Mean face and pixel histogram of every class, over one split or (None) all of them."""
    names = dataset.split_names if split is None else [split]
    num_classes = len(dataset.classes)
    sums = np.zeros((num_classes, IMAGE_SIZE, IMAGE_SIZE), np.float64)
    histograms = np.zeros((num_classes, 256), np.int64)
    counts = np.zeros(num_classes, np.int64)
    for name in names:
        data = dataset.split(name)
        for label in range(num_classes):
            members = data.images[data.labels == label]  # (n, 48, 48) uint8
            counts[label] += len(members)
            for start in range(0, len(members), CHUNK):
                chunk = members[start:start + CHUNK]
                sums[label] += chunk.sum(axis=0, dtype=np.uint32)  # 4096 × 255 fits easily.
                histograms[label] += np.bincount(chunk.ravel(), minlength=256)
    safe = np.maximum(counts, 1)[:, None, None]
    return ClassProfiles(dataset.classes, counts, (sums / safe).astype(np.float32), histograms)


# --- Image quality -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityThresholds:
    """When an image counts as unusable; contrast is the standard deviation of its pixel values."""

    near_blank_std: float = 2.0  # One flat tone plus JPEG noise: FER2013's black and grey frames.
    low_contrast_std: float = 12.0  # Real faces sit around 40-60; below 12 features are barely visible.


@dataclass(frozen=True)
class QualityReport:
    """What the image-quality section shows.

    conversions: {note: images} from decoding (mode changes, resizes);
    skipped: DataFrame file, reason (unreadable files left out);
    contrast: {split: (N,) float32 pixel std of every image};
    flagged: DataFrame split, index, file, class, issue ("near-blank" | "low contrast"), contrast;
    duplicates: DataFrame group, hash, split, index, file, class, one row per image that has an
        exact copy elsewhere in the dataset;
    groups: DataFrame group, hash, size, scope ("within <split>" | "across splits"), splits,
        classes, labels_agree, one row per set of identical images.
    """

    total_images: int
    conversions: dict[str, int]
    skipped: pd.DataFrame
    contrast: dict[str, np.ndarray]
    flagged: pd.DataFrame
    duplicates: pd.DataFrame
    groups: pd.DataFrame
    thresholds: QualityThresholds

    def summary(self) -> dict[str, int]:
        """Headline counts for the page's metrics."""
        across = self.groups["scope"] == "across splits"
        return {
            "images": self.total_images,
            "converted": int(sum(self.conversions.values())),
            "skipped": len(self.skipped),
            "near_blank": int((self.flagged["issue"] == "near-blank").sum()),
            "low_contrast": int((self.flagged["issue"] == "low contrast").sum()),
            "duplicate_groups_within": int((~across).sum()),
            "duplicate_groups_across": int(across.sum()),
            "redundant_copies": int((self.groups["size"] - 1).sum()),
            "conflicting_labels": int((~self.groups["labels_agree"]).sum()),
        }


def image_contrast(images: np.ndarray) -> np.ndarray:
    """Pixel standard deviation of each image in (N, H, W) uint8, as (N,) float32."""
    result = np.empty(len(images), np.float32)
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK].reshape(-1, images.shape[1] * images.shape[2])
        result[start:start + CHUNK] = chunk.astype(np.float32).std(axis=1)
    return result


def content_hashes(images: np.ndarray) -> list[str]:
    """A digest of each image's pixels: equal digests mean identical 48×48 images.

    SHA-1 over contiguous rows: about twice as fast as BLAKE2b here, and collisions by chance are
    not a concern for telling duplicates apart.
    """
    rows = np.ascontiguousarray(images).reshape(len(images), int(np.prod(images.shape[1:])))
    return [hashlib.sha1(row).hexdigest()[:20] for row in rows]


def quality_report(dataset: Dataset, thresholds: QualityThresholds = QualityThresholds()) -> QualityReport:
    """Conversions, skipped files, near-blank/low-contrast images and exact duplicates of `dataset`."""
    contrast, flagged, members = {}, [], {}
    for split, data in dataset.splits.items():
        contrast[split] = image_contrast(data.images)
        issue = np.where(contrast[split] < thresholds.near_blank_std, "near-blank",
                         np.where(contrast[split] < thresholds.low_contrast_std, "low contrast", ""))
        for i in np.flatnonzero(issue != ""):
            flagged.append((split, int(i), data.files[i], dataset.classes[data.labels[i]], str(issue[i]),
                            round(float(contrast[split][i]), 2)))
        for i, digest in enumerate(content_hashes(data.images)):
            members.setdefault(digest, []).append((split, i))

    duplicate_rows, group_rows = [], []
    repeated = sorted((m for m in members.items() if len(m[1]) > 1), key=lambda m: (-len(m[1]), m[1][0]))
    for group, (digest, places) in enumerate(repeated, start=1):
        labels = [dataset.classes[dataset.splits[s].labels[i]] for s, i in places]
        splits = sorted({s for s, _ in places}, key=dataset.split_names.index)
        for (split, i), label in zip(places, labels):
            duplicate_rows.append((group, digest, split, i, dataset.splits[split].files[i], label))
        group_rows.append((group, digest, len(places),
                           "across splits" if len(splits) > 1 else f"within {splits[0]}",
                           ", ".join(splits), ", ".join(sorted(set(labels))), len(set(labels)) == 1))

    return QualityReport(
        total_images=sum(len(s) for s in dataset.splits.values()),
        conversions=dict(dataset.conversions),
        skipped=pd.DataFrame([(s.file, s.reason) for s in dataset.skipped], columns=["file", "reason"]),
        contrast=contrast,
        flagged=pd.DataFrame(flagged, columns=["split", "index", "file", "class", "issue", "contrast"]),
        duplicates=pd.DataFrame(duplicate_rows, columns=["group", "hash", "split", "index", "file", "class"]),
        groups=pd.DataFrame(group_rows, columns=["group", "hash", "size", "scope", "splits", "classes",
                                                 "labels_agree"]).astype({"labels_agree": bool}),
        thresholds=thresholds,
    )


def gather_images(dataset: Dataset, places: list[tuple[str, int]]) -> np.ndarray:
    """The images at (split, index) places, as (N, 48, 48) uint8."""
    if not places:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return np.stack([dataset.splits[split].images[i] for split, i in places])
