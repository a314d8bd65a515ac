"""Evaluate a model on a dataset split: predictions, metrics, calibration and a downloadable report.

The arc is predict → score → report:
- `predict_probabilities` runs the model over a split in large batches, optionally averaging the
  probabilities of each image and its mirror image (horizontal-flip test-time augmentation);
- `score(labels, probabilities, classes)` turns them into an `Evaluation`: accuracy, balanced
  accuracy, macro F1, per-class precision/recall/F1/support (scikit-learn), the confusion matrix
  (rows true, columns predicted, in class order) and expected calibration error;
- `top_confusions`, `misclassified`, `confidence_histogram` and `reliability` read an Evaluation;
- `report`, `report_csv` and `per_class_table` write it out;
- `view_probabilities` (one pass over a split, plain or mirrored) and `combine_and_score` (flip TTA
  mean, class order, metrics) are the two steps `evaluate_split` takes: the Evaluate page caches the
  first per (model, split, mirrored) and calls the second, `python -m fer evaluate` calls
  `evaluate_split`, so both run the same code.

Models are used only through `predict_on_batch(x)`, `input_shape` and `output_shape`, so a Keras
model and an ONNX-backed one both work. Everything here is pure (arrays in, data out).
"""

from __future__ import annotations

import csv
import io
import time
import warnings
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np

from fer.errors import FerError
from fer.labels import IMAGE_SIZE, class_label

BATCH_SIZE = 512  # Large batches keep the CPU busy; 512 × 48 × 48 float32 inputs are only 4.7 MB.
CALIBRATION_BINS = 10  # The usual choice for expected calibration error (Guo et al., 2017).

Progress = Callable[[float, str], None]  # (fraction done, message)


# --- Predict -----------------------------------------------------------------------------------


def mirror(images: np.ndarray) -> np.ndarray:
    """The images flipped left-right: (N, 48, 48) or (N, 48, 48, 1), same shape back."""
    return np.ascontiguousarray(np.asarray(images)[:, :, ::-1])


def predict_probabilities(
    model,
    images: np.ndarray,
    *,
    tta: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> np.ndarray:
    """(N, C) float32 class probabilities for (N, 48, 48[, 1]) uint8 images.

    With `tta` the result is the mean of the probabilities for each image and its mirror image,
    which costs a second pass. `progress(fraction, message)` is called after every batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]  # (N, 48, 48, 1)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise FerError(f"expected images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}[, 1]), got {images.shape}")
    passes = [images, mirror(images)] if tta else [images]
    total = len(images) * len(passes)
    outputs, done = [], 0
    for pixels in passes:
        batches = []
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start:start + batch_size].astype(np.float32)  # The model rescales 0..255 itself.
            batches.append(np.asarray(model.predict_on_batch(batch), dtype=np.float32))
            done += len(batch)
            if progress is not None:
                progress(done / total, f"{done:,} / {total:,} images")
        outputs.append(np.concatenate(batches) if batches else _empty_output(model))
    return tta_average(*outputs) if tta else outputs[0]


def tta_average(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Flip test-time augmentation: the mean of the probabilities for the images and their mirrors."""
    return ((np.asarray(plain, np.float32) + np.asarray(mirrored, np.float32)) / 2).astype(np.float32)


def _empty_output(model) -> np.ndarray:
    return np.zeros((0, int(model.output_shape[-1])), np.float32)


def align_classes(
    probabilities: np.ndarray, model_classes: Sequence[str], dataset_classes: Sequence[str]
) -> np.ndarray:
    """Reorder a model's probability columns into the dataset's class order.

    Raises FerError with a clear message when the model and dataset have different classes, or
    when the model's outputs do not match its own card.
    """
    model_classes, dataset_classes = list(model_classes), list(dataset_classes)
    if probabilities.shape[-1] != len(model_classes):
        raise FerError(
            f"the model has {probabilities.shape[-1]} outputs but its card names {len(model_classes)} "
            f"classes ({', '.join(model_classes)}); its .json card does not belong to it"
        )
    if set(model_classes) != set(dataset_classes):
        missing = [c for c in dataset_classes if c not in model_classes]
        extra = [c for c in model_classes if c not in dataset_classes]
        details = "; ".join(filter(None, [
            f"the dataset has {', '.join(missing)} which the model does not know" if missing else "",
            f"the model predicts {', '.join(extra)} which the dataset does not have" if extra else "",
        ]))
        raise FerError(
            f"the model's classes ({', '.join(model_classes)}) differ from the dataset's "
            f"({', '.join(dataset_classes)}): {details}. Evaluate it on a dataset with the same classes."
        )
    return probabilities[:, [model_classes.index(name) for name in dataset_classes]]


def check_classes(model, model_classes: Sequence[str], dataset_classes: Sequence[str]) -> None:
    """Raise FerError with a clear message unless the model predicts the dataset's classes (any order)."""
    align_classes(np.zeros((0, int(model.output_shape[-1])), np.float32), model_classes, dataset_classes)


# --- Score -------------------------------------------------------------------------------------


class ClassMetrics(NamedTuple):
    """One row of the per-class table."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


class Reliability(NamedTuple):
    """Calibration by confidence bin: what the model claimed vs. how often it was right."""

    edges: np.ndarray  # (bins + 1,) from 0 to 1
    counts: np.ndarray  # (bins,) images whose top probability falls in the bin
    confidence: np.ndarray  # (bins,) mean top probability per bin, NaN where empty
    accuracy: np.ndarray  # (bins,) fraction right per bin, NaN where empty
    ece: float  # Σ (count / N) · |accuracy − confidence|


class ConfidenceHistogram(NamedTuple):
    """Counts of top-class probabilities, split into right and wrong predictions."""

    edges: np.ndarray  # (bins + 1,)
    correct: np.ndarray  # (bins,)
    wrong: np.ndarray  # (bins,)


class Confusion(NamedTuple):
    """An off-diagonal cell of the confusion matrix."""

    true: str
    predicted: str
    count: int
    share: float  # Of all images of the true class.


class Mistake(NamedTuple):
    """A misclassified image: its index in the split, what it is, what the model said."""

    index: int
    true: str
    predicted: str
    confidence: float  # The model's probability for the (wrong) predicted class.


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A model's predictions on a split and the metrics computed from them."""

    classes: tuple[str, ...]
    labels: np.ndarray  # (N,) true class indexes
    probabilities: np.ndarray  # (N, C), columns in `classes` order
    accuracy: float
    balanced_accuracy: float  # Mean recall over the classes present, so rare classes count fully.
    macro_f1: float
    per_class: tuple[ClassMetrics, ...]
    confusion: np.ndarray  # (C, C) counts, rows true, columns predicted
    ece: float

    @property
    def images(self) -> int:
        return len(self.labels)

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1) if self.images else np.zeros(0, int)

    @property
    def confidences(self) -> np.ndarray:
        return self.probabilities.max(axis=1) if self.images else np.zeros(0, np.float32)

    @property
    def normalized_confusion(self) -> np.ndarray:
        """The confusion matrix with each row divided by its total (rows with no images stay 0)."""
        totals = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(self.confusion, totals, out=np.zeros(self.confusion.shape), where=totals > 0)


def score(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], *,
          bins: int = CALIBRATION_BINS) -> Evaluation:
    """Every metric of `probabilities` (N, C) against true class indexes `labels` (N,)."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

    classes = tuple(classes)
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise ValueError(f"probabilities must be (N, {len(classes)}), got {probabilities.shape}")
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} rows of probabilities")
    if len(labels) == 0:
        raise FerError("this split has no images to evaluate")
    if labels.min() < 0 or labels.max() >= len(classes):
        raise ValueError(f"labels must be class indexes 0..{len(classes) - 1}")
    predicted = probabilities.argmax(axis=1)
    everything = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=everything, zero_division=0
    )
    confusion = confusion_matrix(labels, predicted, labels=everything)
    with warnings.catch_warnings():
        # Warns when a class is predicted but absent from the split; the score is still right.
        warnings.simplefilter("ignore")
        balanced = balanced_accuracy_score(labels, predicted)
    return Evaluation(
        classes=classes,
        labels=labels,
        probabilities=probabilities,
        accuracy=float(np.mean(predicted == labels)),
        balanced_accuracy=float(balanced),
        macro_f1=float(np.mean(f1[_occurring(confusion)])),
        per_class=tuple(
            ClassMetrics(name, float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        ),
        confusion=confusion,
        ece=reliability_bins(labels, probabilities, bins=bins).ece,
    )


def _occurring(confusion: np.ndarray) -> np.ndarray:
    """Classes that are true or predicted at least once: the ones macro averages count.

    This is scikit-learn's default; a class absent from both would otherwise add a meaningless 0.
    """
    return (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, *, bins: int = CALIBRATION_BINS) -> Reliability:
    """Equal-width confidence bins [0, 0.1), [0.1, 0.2), …, [0.9, 1.0] and the expected calibration error."""
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")
    labels = np.asarray(labels)
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)  # 1.0 goes in the last bin.
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=right, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(accuracy - mean_confidence), 0.0)
    ece = float(np.sum(counts / max(len(labels), 1) * gaps))
    return Reliability(edges, counts, mean_confidence, accuracy, ece)


def reliability(evaluation: Evaluation, *, bins: int = CALIBRATION_BINS) -> Reliability:
    """The reliability diagram's bins for an Evaluation."""
    return reliability_bins(evaluation.labels, evaluation.probabilities, bins=bins)


def confidence_histogram(evaluation: Evaluation, *, bins: int = 20) -> ConfidenceHistogram:
    """How confident the model was, for right and for wrong predictions."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    right = evaluation.predictions == evaluation.labels
    correct, _ = np.histogram(evaluation.confidences[right], bins=edges)
    wrong, _ = np.histogram(evaluation.confidences[~right], bins=edges)
    return ConfidenceHistogram(edges, correct, wrong)


def top_confusions(evaluation: Evaluation, *, limit: int = 10) -> list[Confusion]:
    """The most frequent (true, predicted) mistakes, largest count first."""
    matrix = evaluation.confusion
    totals = matrix.sum(axis=1)
    cells = [
        Confusion(evaluation.classes[t], evaluation.classes[p], int(matrix[t, p]), float(matrix[t, p] / totals[t]))
        for t in range(len(matrix)) for p in range(len(matrix)) if t != p and matrix[t, p] > 0
    ]
    return sorted(cells, key=lambda cell: (-cell.count, -cell.share))[:limit]


def misclassified(evaluation: Evaluation, *, true_class: str | None = None,
                  predicted_class: str | None = None, limit: int | None = None) -> list[Mistake]:
    """Wrong predictions, most confident first, optionally only one true and/or predicted class."""
    predictions, confidences = evaluation.predictions, evaluation.confidences
    wrong = predictions != evaluation.labels
    for name, column in ((true_class, evaluation.labels), (predicted_class, predictions)):
        if name is not None:
            if name not in evaluation.classes:
                raise FerError(f"unknown class '{name}'; choose one of: {', '.join(evaluation.classes)}")
            wrong &= column == evaluation.classes.index(name)
    indexes = np.flatnonzero(wrong)
    indexes = indexes[np.argsort(-confidences[indexes], kind="stable")][:limit]
    return [Mistake(int(i), evaluation.classes[evaluation.labels[i]], evaluation.classes[predictions[i]],
                    float(confidences[i])) for i in indexes]


class TtaEffect(NamedTuple):
    """How flip test-time augmentation changed the predictions."""

    changed: int  # Predictions that differ from the plain ones.
    fixed: int  # Wrong without TTA, right with it.
    broken: int  # Right without TTA, wrong with it.


def tta_effect(plain: Evaluation, tta: Evaluation) -> TtaEffect:
    """Compare the predictions of the same model on the same split without and with TTA."""
    if plain.images != tta.images:
        raise ValueError("the two evaluations must cover the same images")
    before, after = plain.predictions == plain.labels, tta.predictions == tta.labels
    return TtaEffect(int(np.sum(plain.predictions != tta.predictions)), int(np.sum(~before & after)),
                     int(np.sum(before & ~after)))


# --- Report ------------------------------------------------------------------------------------


def report(evaluation: Evaluation, *, model: str, split: str, tta: bool = False, dataset: str = "",
           seconds: float | None = None) -> dict:
    """A JSON-ready summary: headline metrics, per-class table, confusion matrix, top confusions."""
    return {
        "model": model,
        "dataset": dataset,
        "split": split,
        "tta": tta,
        "images": evaluation.images,
        "classes": list(evaluation.classes),
        "accuracy": round(evaluation.accuracy, 6),
        "balanced_accuracy": round(evaluation.balanced_accuracy, 6),
        "macro_f1": round(evaluation.macro_f1, 6),
        "expected_calibration_error": round(evaluation.ece, 6),
        "per_class": {
            row.name: {"precision": round(row.precision, 6), "recall": round(row.recall, 6),
                       "f1": round(row.f1, 6), "support": row.support}
            for row in evaluation.per_class
        },
        "confusion_matrix": evaluation.confusion.tolist(),
        "top_confusions": [cell._asdict() for cell in top_confusions(evaluation)],
        **({"seconds": round(seconds, 2)} if seconds is not None else {}),
    }


def report_csv(evaluation: Evaluation) -> str:
    """The per-class table with each class's row of the confusion matrix, then macro and weighted averages.

    The macro average (over classes that occur) of f1 is `macro_f1`; the support-weighted
    average of recall is the accuracy.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["class", "precision", "recall", "f1", "support", *(f"predicted_{c}" for c in evaluation.classes)])
    for row, counts in zip(evaluation.per_class, evaluation.confusion):
        writer.writerow([row.name, f"{row.precision:.6f}", f"{row.recall:.6f}", f"{row.f1:.6f}", row.support,
                         *counts.tolist()])
    rows = [row for row, occurs in zip(evaluation.per_class, _occurring(evaluation.confusion)) if occurs]
    support = np.array([row.support for row in rows], dtype=float)
    for name, weights in (("macro avg", np.ones_like(support)), ("weighted avg", support)):
        averages = [np.average([getattr(row, field) for row in rows], weights=weights)
                    for field in ("precision", "recall", "f1")]
        writer.writerow([name, *(f"{value:.6f}" for value in averages), int(support.sum())])
    return out.getvalue()


def predictions_csv(evaluation: Evaluation, files: Sequence[str]) -> str:
    """Every image's prediction, one row each in split order: file, true class, predicted class, whether
    they agree, the confidence and each class's probability (4 decimals)."""
    if len(files) != evaluation.images:
        raise ValueError(f"{evaluation.images} predictions but {len(files)} file names")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "true", "predicted", "correct", "confidence", *evaluation.classes])
    names = evaluation.classes
    for file, label, predicted, row in zip(files, evaluation.labels, evaluation.predictions, evaluation.probabilities):
        writer.writerow([file, names[label], names[predicted], "yes" if label == predicted else "no",
                         f"{row[predicted]:.4f}", *(f"{value:.4f}" for value in row)])
    return out.getvalue()


def per_class_table(evaluation: Evaluation):
    """A pandas DataFrame, one row per class: class (with its emoji), precision, recall, F1, support."""
    import pandas as pd

    return pd.DataFrame(
        [(class_label(row.name), row.precision, row.recall, row.f1, row.support)
         for row in evaluation.per_class],
        columns=["class", "precision", "recall", "F1", "support"],
    )


# --- All together ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SplitEvaluation:
    """An Evaluation with what it was computed on and how long the predictions took."""

    evaluation: Evaluation
    model: str
    split: str
    tta: bool
    seconds: float

    def report(self, dataset: str = "") -> dict:
        return report(self.evaluation, model=self.model, split=self.split, tta=self.tta, dataset=dataset,
                      seconds=self.seconds)


def view_probabilities(model, images: np.ndarray, *, mirrored: bool = False, batch_size: int = BATCH_SIZE,
                       progress: Progress | None = None) -> np.ndarray:
    """(N, C) probabilities for a split's (N, 48, 48[, 1]) images, or for their mirror images: one pass,
    columns in the model's own class order (see `combine_and_score`)."""
    return predict_probabilities(model, mirror(images) if mirrored else images, batch_size=batch_size,
                                 progress=progress)


def combine_and_score(plain: np.ndarray, mirrored: np.ndarray | None, labels: np.ndarray,
                      model_classes: Sequence[str], dataset_classes: Sequence[str]) -> Evaluation:
    """Score the plain view, or with `mirrored` the flip TTA mean of both views, against `labels`.

    The model's columns are put in the dataset's class order first; FerError if the classes differ.
    """
    probabilities = plain if mirrored is None else tta_average(plain, mirrored)
    return score(labels, align_classes(probabilities, model_classes, dataset_classes), dataset_classes)


def evaluate_split(model, model_classes: Sequence[str], dataset, split: str, *, tta: bool = False,
                   model_name: str = "", batch_size: int = BATCH_SIZE,
                   progress: Progress | None = None) -> SplitEvaluation:
    """Predict and score one split of a `fer.data.datasets.Dataset`; FerError on mismatched classes."""
    images, labels = dataset.arrays(split)
    if len(labels) == 0:
        raise FerError(f"the '{split}' split has no images to evaluate")
    check_classes(model, model_classes, dataset.classes)  # Before spending time on predictions.
    views = (False, True) if tta else (False,)
    started = time.perf_counter()
    outputs = [view_probabilities(model, images, mirrored=mirrored, batch_size=batch_size,
                                  progress=_share(progress, index, len(views)))
               for index, mirrored in enumerate(views)]
    seconds = time.perf_counter() - started
    evaluation = combine_and_score(outputs[0], outputs[1] if tta else None, labels, model_classes, dataset.classes)
    return SplitEvaluation(evaluation, model_name, split, tta, seconds)


def _share(progress: Progress | None, index: int, count: int) -> Progress | None:
    """Report pass `index` of `count` as its share of the whole: (index + fraction) / count."""
    if progress is None:
        return None
    return lambda fraction, message: progress((index + fraction) / count, message)
