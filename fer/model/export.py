"""Export a model beside its `.keras` file: ONNX (checked against Keras), quantised ONNX, TFLite.

- `export_onnx` writes `<name>.onnx` with Keras's exporter (tf2onnx under the TensorFlow backend) and
  checks it against the Keras model on a batch of real faces on onnxruntime: every class probability
  within `PARITY_TOLERANCE`, else the file is not kept. The check is recorded in the model card.
- `quantise_onnx` writes float16 and int8 (dynamic, or static calibrated on training faces) variants;
  `choose_served` picks the one to serve by a rule fixed before anything was measured.
  `export_served_onnx` is the whole of `python -m fer export MODEL --format onnx --quantise` (also run
  by scripts/ship_model.py), and `variants_table` prints what it measured.
- `export_tflite` writes TFLite float16 and int8 (dynamic-range) files for phones and the like.
Each file's validation accuracy and speed are measured on the faces `validation_faces` finds, on the
runtime the caller passes in (the serving package's `OnnxModel` and `TfliteModel`): the files are
measured as they will run, and the model package does not depend on the serving one.

Importing this module is light; TensorFlow/Keras load only inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.model.cards import Export, ModelCard, read_card, write_card
from fer.paths import PROJECT_ROOT

PARITY_TOLERANCE = 1e-4  # Largest allowed |ONNX − Keras| of any class probability.
PARITY_FACES = 256
# Serve the fastest variant (ms a face in batches) whose validation accuracy is at most this far below
# float32's; float32 when none is faster. Fixed before the variants were measured, so the measurements
# could not pick their own rule.
ACCURACY_MARGIN = 0.003
ONNX_VARIANTS = ("float32", "float16", "int8-dynamic", "int8-static")
TFLITE_VARIANTS = ("float16", "int8")
CALIBRATION_FACES = 512
FER2013 = PROJECT_ROOT.parent / "shared" / "datasets" / "fer2013" / "images.zip"

# Opens a model file as something with predict_on_batch: the serving package's OnnxModel or TfliteModel.
Runtime = Callable[[Path], Any]


class Faces(NamedTuple):
    """Faces to check or score a model on: (N, 48, 48, 1) uint8, labels into `classes`, and where from."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str


def export_file(model_path: str | Path, format: str, variant: str = "float32") -> Path:
    """Where an export of `model_path` goes: models/x.keras → x.onnx, x.float16.onnx, x.int8.tflite, …"""
    model_path = Path(model_path)
    suffix = "" if (format, variant) == ("onnx", "float32") else f".{variant}"
    return model_path.with_name(f"{model_path.stem}{suffix}.{format}")


# --- Faces -----------------------------------------------------------------------------------------


def validation_faces(card: ModelCard, split: str = "validation") -> Faces:
    """The faces exports are checked and scored on: the model's own training data's `split` if it is
    here, else FER2013's if ../shared has it, else the synthetic demo faces."""
    from fer.data.datasets import open_dataset

    recorded = (card.dataset or {}).get("source")
    for source in filter(None, (_existing(recorded), FER2013 if FER2013.exists() else None)):
        try:
            dataset = open_dataset(str(source))
            images, labels = dataset.arrays(split)
        except FerError:
            continue
        name = "FER2013" if Path(source).resolve() == FER2013.resolve() else Path(source).name
        return Faces(images, labels, dataset.classes, f"{name} {split} ({len(labels):,} faces)")
    from fer.data.synthetic import make_faces
    from fer.labels import CLASSES

    images, labels = make_faces(50 if split == "validation" else 100, seed=1 if split == "validation" else 0)
    return Faces(images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1), labels, CLASSES,
                 f"synthetic demo faces ({len(labels):,})")


def parity_faces(count: int = PARITY_FACES, seed: int = 0) -> tuple[np.ndarray, str]:
    """(count, 48, 48, 1) uint8 real faces to compare exports on, and where they came from: FER2013
    validation faces read straight from its zip when ../shared has it (quick, no full decode), else the
    synthetic demo faces."""
    if FER2013.exists():
        import zipfile

        from fer.data.images import decode_face

        with zipfile.ZipFile(FER2013) as archive:
            names = sorted(name for name in archive.namelist()
                           if "/validation/" in name and name.lower().endswith((".jpg", ".jpeg", ".png")))
            if names:
                picked = np.random.default_rng(seed).choice(len(names), min(count, len(names)), replace=False)
                faces = np.stack([decode_face(archive.read(names[i]))[0] for i in sorted(picked)])
                return faces[..., None], "FER2013 validation"
    from fer.data.synthetic import make_faces

    images, _ = make_faces(-(-count // 7), seed=1)
    return images[:count, ..., None], "synthetic demo faces"


def _existing(source: str | None) -> Path | None:
    if not source:
        return None
    for path in (Path(source), PROJECT_ROOT / source):
        if path.exists():
            return path
    return None


def sample(faces: Faces, count: int, seed: int = 0) -> Faces:
    """`count` faces drawn at random (all when there are fewer), same source."""
    if len(faces.labels) <= count:
        return faces
    picked = np.sort(np.random.default_rng(seed).choice(len(faces.labels), count, replace=False))
    return faces._replace(images=faces.images[picked], labels=faces.labels[picked])


# --- ONNX --------------------------------------------------------------------------------------------


def export_onnx(model_path: str | Path, *, keras_model=None) -> Export:
    """Write `<name>.onnx` beside a .keras model, check it against Keras on `parity_faces` and record
    both in the card. Raises FerError (and keeps no file) when the probabilities differ by more than
    PARITY_TOLERANCE."""
    from fer.model.files import load_model

    model_path = Path(model_path)
    model = keras_model if keras_model is not None else load_model(model_path)[0]
    images, source = parity_faces()
    pixels = images.astype(np.float32)
    expected = np.asarray(model.predict_on_batch(pixels), np.float32)  # Also "calls" the model, which export needs.
    target = export_file(model_path, "onnx")
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.tmp.onnx")
    try:
        _quietly(lambda: model.export(str(temporary), format="onnx", verbose=False))
        difference = float(np.abs(_onnx_probabilities(temporary, pixels) - expected).max())
        if not difference <= PARITY_TOLERANCE:
            raise FerError(f"the ONNX export of {model_path.name} differs from the Keras model by up to "
                           f"{difference:.2g} on {len(pixels)} faces (allowed {PARITY_TOLERANCE:g}); not kept")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    record = Export("onnx", "float32", target.name, target.stat().st_size, _now(), difference, len(pixels), source)
    write_card(model_path, read_card(model_path).with_export(record))
    return record


def _onnx_probabilities(path: Path, pixels: np.ndarray) -> np.ndarray:
    """The ONNX file's outputs for `pixels` on onnxruntime's default session: the parity check compares
    numbers, so it needs none of the serving runtime's speed settings."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: pixels})[0], np.float32)


def _quietly(action) -> None:
    """Run `action` with the converter's console chatter (tf2onnx logs, TF warnings) silenced."""
    import logging
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            action()
    finally:
        logging.disable(previous)


def quantise_onnx(onnx_path: str | Path, variant: str, calibration: np.ndarray | None = None) -> Path:
    """Write a float16 or int8 variant of a float32 ONNX model beside it; returns its path.

    "int8-dynamic" quantises weights ahead and activations on the fly; "int8-static" also fixes the
    activations' ranges from `calibration` faces ((N, 48, 48, 1) uint8, from the training split).
    """
    onnx_path = Path(onnx_path)
    target = onnx_path.with_name(f"{onnx_path.stem}.{variant}.onnx")
    if variant == "float16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
        onnx.save(model, str(target))
        return target
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        if variant == "int8-dynamic":
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
        elif variant == "int8-static":
            if calibration is None:
                raise FerError("static int8 quantisation needs calibration faces")
            quantize_static(str(prepared), str(target), _Calibration(calibration, _input_name(prepared)),
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        else:
            raise FerError(f"unknown ONNX variant '{variant}'; expected one of {', '.join(ONNX_VARIANTS)}")
    return target


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


class _Calibration:
    """onnxruntime's CalibrationDataReader over faces, 64 at a time."""

    def __init__(self, images: np.ndarray, input_name: str):
        self._batches = iter([{input_name: images[start:start + 64].astype(np.float32)}
                              for start in range(0, len(images), 64)])

    def get_next(self):
        return next(self._batches, None)


class Measured(NamedTuple):
    """One model file's validation accuracy and speed (crop → probabilities)."""

    accuracy: float
    ms_per_face_batch: float  # Batches of 256, median over rounds.
    ms_one_face: float  # One face at a time, median.


def accuracy(model, faces: Faces, model_classes: Sequence[str], batch_size: int = 256) -> float:
    """Top-1 accuracy of anything with predict_on_batch on `faces` (classes aligned by name)."""
    from fer.evaluate.scoring import align_classes, predict_probabilities

    probabilities = predict_probabilities(model, faces.images, batch_size=batch_size)
    aligned = align_classes(probabilities, model_classes, faces.classes)
    return float(np.mean(aligned.argmax(axis=1) == faces.labels))


def time_side_by_side(models: dict[str, object], faces: Faces, rounds: int = 5) -> dict[str, tuple[float, float]]:
    """{name: (ms a face in batches of 256, ms for one face)}, the models timed in turn in each round
    so a busy shared CPU slows them alike; medians over rounds."""
    batch = faces.images[:256].astype(np.float32)
    one = batch[:1]
    for model in models.values():  # Warm up.
        model.predict_on_batch(batch)
        model.predict_on_batch(one)
    batched, single = {name: [] for name in models}, {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            started = time.perf_counter()
            model.predict_on_batch(batch)
            batched[name].append((time.perf_counter() - started) * 1000 / len(batch))
            started = time.perf_counter()
            for _ in range(10):
                model.predict_on_batch(one)
            single[name].append((time.perf_counter() - started) * 1000 / 10)
    return {name: (statistics.median(batched[name]), statistics.median(single[name])) for name in models}


def choose_served(measured: dict[str, Measured]) -> str:
    """The variant to serve: the fastest in batches among those within ACCURACY_MARGIN of float32's accuracy."""
    floor = measured["float32"].accuracy - ACCURACY_MARGIN
    eligible = [name for name, result in measured.items() if result.accuracy >= floor - 1e-12]
    return min(eligible, key=lambda name: (measured[name].ms_per_face_batch, name != "float32"))


def export_onnx_variants(model_path: str | Path, variants: Sequence[str] = ONNX_VARIANTS, *, runtime: Runtime,
                         rounds: int = 5, progress=print) -> dict[str, Measured]:
    """Export float32 ONNX (if missing) and `variants`, measure each on the validation faces side by side
    on `runtime` (the serving one, so the speeds are the served speeds), record them in the card with the
    served one, and delete the files of variants not served."""
    model_path = Path(model_path)
    card = read_card(model_path)
    faces = validation_faces(card)
    float32 = export_file(model_path, "onnx")
    if not float32.exists() or card.export("onnx") is None:
        progress(f"exporting {float32.name} and checking it against Keras…")
        export_onnx(model_path)
    calibration = sample(validation_faces(card, "train"), CALIBRATION_FACES, seed=1).images \
        if "int8-static" in variants else None
    files = {"float32": float32}
    for variant in variants:
        if variant != "float32":
            progress(f"writing the {variant} variant…")
            files[variant] = quantise_onnx(float32, variant, calibration)
    models = {variant: runtime(path) for variant, path in files.items()}
    measured = {}
    for variant, model in models.items():
        progress(f"scoring {variant} on {faces.source}…")
        measured[variant] = Measured(accuracy(model, faces, card.classes), 0.0, 0.0)
    progress(f"timing {', '.join(models)} side by side…")
    for variant, (batched, single) in time_side_by_side(models, faces, rounds).items():
        measured[variant] = measured[variant]._replace(ms_per_face_batch=batched, ms_one_face=single)
    served = choose_served(measured)
    card = read_card(model_path)
    for variant, path in files.items():
        previous = card.export("onnx", variant) or Export("onnx", variant, path.name)
        result = measured[variant]
        card = card.with_export(dataclasses.replace(previous,
            file=path.name, bytes=path.stat().st_size, created=previous.created or _now(),
            validation_accuracy=round(result.accuracy, 6), validation_faces=len(faces.labels),
            validation_source=faces.source.split(" (")[0], ms_per_face_batch=round(result.ms_per_face_batch, 3),
            ms_one_face=round(result.ms_one_face, 3)))
    write_card(model_path, card.replace(serving=files[served].name))
    for variant, path in files.items():
        if variant not in ("float32", served):
            path.unlink()  # Measured and recorded; only the float32 and served files are kept.
    return measured


def export_served_onnx(model_path: str | Path, *, runtime: Runtime,
                       progress=print) -> tuple[Export, dict[str, Measured]]:
    """`python -m fer export MODEL --format onnx --quantise`: a fresh float32 ONNX export checked against Keras,
    then its variants scored and timed side by side on `runtime` and the fastest within ACCURACY_MARGIN
    recorded as the one served (`card.serving`). Returns the float32 export's record and the measurements."""
    record = export_onnx(model_path)
    return record, export_onnx_variants(model_path, runtime=runtime, progress=progress)


def variants_table(measured: dict[str, Measured]) -> str:
    """The measured ONNX variants as a text table, the served one marked."""
    served = choose_served(measured)
    lines = [f"{'variant':<14}{'accuracy':>10}{'ms/face (256)':>15}{'ms (1 face)':>13}"]
    lines += [f"{variant:<14}{result.accuracy:>10.4f}{result.ms_per_face_batch:>15.2f}{result.ms_one_face:>13.2f}"
              f"{'  served' if variant == served else ''}" for variant, result in measured.items()]
    return "\n".join(lines)


# --- TFLite ------------------------------------------------------------------------------------------


def export_tflite(model_path: str | Path, variant: str = "float16", *, runtime: Runtime, faces: Faces | None = None,
                  keras_model=None) -> Export:
    """Write a TFLite float16 or int8 (dynamic-range: int8 weights) file beside the model, score it on the
    validation faces on `runtime` (a TFLite interpreter) and record it in the card. Needs TensorFlow's
    converter."""
    from fer.model.files import load_model

    if variant not in TFLITE_VARIANTS:
        raise FerError(f"unknown TFLite variant '{variant}'; expected one of {', '.join(TFLITE_VARIANTS)}")
    import tensorflow as tf

    model_path = Path(model_path)
    card = read_card(model_path)
    model = keras_model if keras_model is not None else load_model(model_path)[0]
    model.predict_on_batch(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32))
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if variant == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    target = export_file(model_path, "tflite", variant)
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.tmp.tflite")
    try:
        _quietly(lambda: model.export(str(temporary), format="litert", verbose=False, **options))
        faces = faces if faces is not None else validation_faces(card)
        score = accuracy(runtime(temporary), faces, card.classes)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    record = Export("tflite", variant, target.name, target.stat().st_size, _now(),
                    validation_accuracy=round(score, 6), validation_faces=len(faces.labels),
                    validation_source=faces.source.split(" (")[0])
    write_card(model_path, read_card(model_path).with_export(record))
    return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
