"""See-inside widgets shared by the pages: Grad-CAM over faces, the clickable confusion matrix, the feature map,
the label audit and the augmentation preview. Not a page of its own (app.py lists the pages).

Grad-CAM and features need the Keras model (gradients, inner layers), which serving never loads; it is loaded
here on demand, with a spinner, only when the user asks for one of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import streamlit as st

from fer.charts.explain import (clickable_confusion, feature_map_figure, selected_cell, selected_points)
from fer.errors import FerError
from fer.evaluate.scoring import Evaluation
from fer.explain.audit import (Audit, OutOfFold, audit_split, corrected_copy, fitted_split, relabel_csv,
                               suspects_json)

CELL_KEY = "evaluate_confusion_cell"  # st.plotly_chart's selection state of the clickable matrix.
FEATURES_KEY = "evaluate_feature_map"  # {"key": what it was drawn for, "map", "labels", "predicted"}.
FEATURE_CHART_KEY = "evaluate_feature_chart"
AUDIT_KEY = "dataset_audit"  # {"key": (source, fingerprint, split, model, out_of_fold), "audit"}.
DECISIONS_KEY = "dataset_audit_decisions"  # {file: "wrong" | "keep"}
CELL_GALLERY = 48  # Faces of a confusion cell shown at once, most confident first.
AUDIT_PAGE = 24  # Suspects per page.
MARKS = ("wrong", "keep")


# --- Grad-CAM -----------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the Keras model (Grad-CAM and features need its gradients and layers)…",
                   max_entries=2)
def keras_model(path: str, modified: float):
    """The Keras model at `path`, loaded once per server process (`modified` reloads a replaced file)."""
    from fer.model.files import load_model

    return load_model(path)[0]


@st.cache_resource(show_spinner=False, max_entries=2)
def gradcam(path: str, modified: float):
    from fer.explain.gradcam import GradCam

    return GradCam(keras_model(path, modified))


@st.cache_data(show_spinner="Computing Grad-CAM…", max_entries=32)
def heatmap_overlays(path: str, modified: float, faces: np.ndarray,
                     labels: tuple[str, ...] | None = None) -> list[np.ndarray]:
    """Each (48, 48) face with the Grad-CAM of the class named in `labels` (default: the model's top class
    for the face) over it, as RGB."""
    from fer.explain.gradcam import overlay
    from fer.model.cards import read_card

    classes = None
    if labels is not None:
        order = list(read_card(path).classes)
        classes = [order.index(label) for label in labels]
    maps = gradcam(path, modified)(faces, classes).maps
    return [overlay(face, heat) for face, heat in zip(faces, maps)]


def faces_with_gradcam(path: str | None, faces: list[np.ndarray], *, key: str,
                       labels: list[str] | None = None) -> list[np.ndarray]:
    """`faces` as they are, or with the Grad-CAM heat maps of `labels` (the classes the page shows as
    predicted; default: the model's own top class) when the user turns the toggle on."""
    if not faces or path is None:
        return faces
    shown = st.toggle("Grad-CAM: where the evidence for the predicted class is", key=key,
                      help="Red marks the parts of the face that pushed the model most towards its top class "
                           "(for an ensemble, the mean over its networks). Loads the Keras model on first use.")
    if not shown:
        return faces
    try:
        return heatmap_overlays(path, os.path.getmtime(path), np.stack(faces),
                                None if labels is None else tuple(labels))
    except (FerError, ValueError) as error:  # ValueError: a class the model's card does not name.
        st.warning(f"No Grad-CAM for this model: {error}")
        return faces


def show_photo_heatmaps(data: bytes, detector, path: str | None, *, whole_image: bool, key: str) -> None:
    """Predict page: on request, each face of a photo as the model read it (48×48), with its Grad-CAM."""
    import cv2

    from fer.data.images import open_image, to_rgb
    from fer.serve.detection import Face, crop_face
    from fer.serve.prediction import whole_image_box

    if path is None or not st.toggle("Grad-CAM: where the evidence is", key=key,
                                     help="Each face as the model reads it, with red where the evidence for its "
                                          "top class lies. Loads the Keras model on first use."):
        return
    rgb = to_rgb(open_image(data))  # The same decoding and detection as the prediction, so the same crops.
    faces = detector.detect(rgb)
    if not faces and whole_image:
        faces = [Face(whole_image_box(rgb.shape[1], rgb.shape[0]), 1.0)]
    if not faces:
        return
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    crops = np.stack([crop_face(gray, face) for face in faces])
    try:
        overlays = heatmap_overlays(path, os.path.getmtime(path), crops)
    except FerError as error:
        st.warning(f"No Grad-CAM for this model: {error}")
        return
    with st.container(key=f"{key}_faces"):
        st.image([picture for pair in zip(crops, overlays) for picture in pair], width=96,
                 caption=[text for number in range(1, len(crops) + 1) for text in (f"face {number}", "Grad-CAM")])


# --- Clickable confusion matrix -----------------------------------------------------------------


def confusion_chart(result: Evaluation, *, normalized: bool) -> None:
    """The confusion matrix; clicking a cell selects it (read by `show_cell_faces`)."""
    st.plotly_chart(clickable_confusion(result, normalized=normalized), key=CELL_KEY, on_select="rerun",
                    selection_mode="points")


def show_cell_faces(result: Evaluation, images: np.ndarray, path: str | None) -> None:
    """The faces of the clicked confusion cell, most confident first, with their probabilities."""
    cell = selected_cell(st.session_state.get(CELL_KEY))
    if cell is None:
        st.caption("Click a cell of the matrix to see its faces.")
        return
    true, predicted = cell
    names = result.classes
    members = np.flatnonzero((result.labels == true) & (result.predictions == predicted))
    members = members[np.argsort(-result.probabilities[members, predicted], kind="stable")]
    what = f"true **{names[true]}**, predicted **{names[predicted]}**"
    if not len(members):
        st.info(f"No faces are {what.replace('**', '')}.")
        return
    st.markdown(f"{len(members):,} faces: {what}" + (f" (the {CELL_GALLERY} most confident)"
                                                     if len(members) > CELL_GALLERY else ""))
    shown = members[:CELL_GALLERY]
    faces = faces_with_gradcam(path, [images[i] for i in shown], key="evaluate_cell_gradcam",
                               labels=[names[predicted]] * len(shown))
    captions = [f"{names[predicted]} {result.probabilities[i, predicted]:.0%}" + (
        "" if true == predicted else f" · {names[true]} {result.probabilities[i, true]:.0%}") for i in shown]
    with st.container(key="confusion_cell_faces"):
        st.image(faces, width=96, caption=captions)


# --- Feature map --------------------------------------------------------------------------------


def show_feature_map(path: str, dataset, split: str, result: Evaluation) -> None:
    """A 2-D map of the network's penultimate features for a sample of `split`, drawn on request."""
    from fer.explain.features import MAX_POINTS

    left, middle, right = st.columns([2, 2, 1.2], vertical_alignment="bottom")
    method = left.segmented_control("Projection", ["pca", "tsne"], default="pca", required=True,
                                    format_func={"pca": "PCA", "tsne": "t-SNE"}.get, key="evaluate_map_method",
                                    help="PCA is instant; t-SNE separates clusters better but takes about a minute "
                                         "per 1,000 faces on a 2-core CPU.")
    cap = middle.number_input("Faces (at most)", 100, 5000, MAX_POINTS if method == "pca" else 1000, step=100,
                              key=f"evaluate_map_cap_{method}")
    key = (path, os.path.getmtime(path), dataset.fingerprint, split, method, int(cap))
    stored = st.session_state.get(FEATURES_KEY)
    if right.button("Draw the map", width="stretch"):
        stored = _draw_feature_map(key, dataset, split, result)
    if not stored or stored["key"] != key:
        st.caption("The map places each face by the vector the network hands its class layer: faces the network "
                   "finds alike sit together. Drawing it loads the Keras model.")
        return
    mapped = stored["map"]
    if mapped.explained is not None:
        st.caption(f"{len(mapped.indexes):,} faces; the two axes keep {mapped.explained:.0%} of the features' "
                   "variance. Click a point or lasso several to see the faces.")
    event = st.plotly_chart(feature_map_figure(mapped, stored["labels"], stored["predicted"], dataset.classes),
                            key=FEATURE_CHART_KEY, on_select="rerun", selection_mode=("points", "lasso", "box"))
    chosen = selected_points(event)[:CELL_GALLERY]
    if chosen:
        images, names = dataset.split(split).images, result.classes
        st.image([images[i] for i in chosen], width=96, caption=[
            f"{names[result.labels[i]]} → {names[result.predictions[i]]}" for i in chosen])


def _draw_feature_map(key: tuple, dataset, split: str, result: Evaluation) -> dict | None:
    from fer.explain.features import capped_sample, feature_map, penultimate_features

    path, modified, *_, method, cap = key
    chosen = capped_sample(result.labels, cap)
    model = keras_model(path, modified)
    bar = st.progress(0.0, text="Reading features…")
    try:
        features = penultimate_features(model, dataset.split(split).images[chosen],
                                        progress=lambda fraction, message: bar.progress(fraction * 0.9, text=message))
        bar.progress(0.9, text="t-SNE (about a minute per 1,000 faces)…" if method == "tsne" else "PCA…")
        mapped = feature_map(features, chosen, method=method)
    except FerError as error:
        st.warning(f"No feature map: {error}")
        return None
    finally:
        bar.empty()
    stored = {"key": key, "map": mapped, "labels": result.labels[chosen], "predicted": result.predictions[chosen]}
    st.session_state[FEATURES_KEY] = stored
    return stored


# --- Label audit --------------------------------------------------------------------------------


@st.cache_data(show_spinner="Timing a training step for the estimate…", max_entries=8)
def out_of_fold_estimate(images: int, folds: int) -> float:
    from fer.explain.audit import estimate_out_of_fold_seconds

    return estimate_out_of_fold_seconds(images, OutOfFold(folds=folds))


def show_audit(dataset, source: str, model_path: str | None) -> None:
    """Rank a split's images by how much the model doubts their label; mark them, export the fixes."""
    st.subheader("Label audit")
    st.caption("Which given labels does the model doubt most? The ranking is cleanlab's label quality on the "
               "model's probabilities (each face averaged with its mirror image); the lowest scores come first.")
    names = [name for name in dataset.split_names if len(dataset.splits[name])]
    if model_path is None:
        st.info("Choose or train a model first: the audit reads its predictions.")
        return
    left, middle, right = st.columns([1.5, 2.5, 1], vertical_alignment="bottom")
    split = left.selectbox("Split", names, index=names.index("validation") if "validation" in names else 0,
                           key="dataset_audit_split")
    out_of_fold = middle.toggle("Out-of-fold probabilities (3 tiny models, each trained without a third)",
                                key="dataset_audit_oof",
                                help="A model has fitted the labels of the split it was trained on, so it doubts "
                                     "few of them. Out-of-fold, every face is judged by a model that never saw it.")
    if out_of_fold:
        seconds = out_of_fold_estimate(len(dataset.split(split)), 3)
        middle.caption(f"About {seconds / 60:.0f} min on this machine (3 models × {OutOfFold().epochs} epochs).")
    key = (source, dataset.fingerprint, split, model_path, os.path.getmtime(model_path), out_of_fold)
    if right.button("Audit", type="primary", width="stretch"):
        _run_audit(key, dataset, split, model_path, out_of_fold)
    stored = st.session_state.get(AUDIT_KEY)
    if not stored or stored["key"] != key:
        return
    audit: Audit = stored["audit"]
    if not audit.out_of_fold and stored["fitted"]:
        st.warning(f"The model was trained on the **{split}** split, so it has fitted these labels and doubts few of "
                   "them: this ranking is weak. Turn on out-of-fold probabilities for a fair one.")
    show_suspects(dataset, split, audit, source)


def _run_audit(key: tuple, dataset, split: str, model_path: str, out_of_fold: bool) -> None:
    from pages.common import cached_model

    bar = st.progress(0.0, text="Auditing…")

    def report(fraction: float, message: str) -> None:
        bar.progress(min(fraction, 1.0), text=message)

    try:
        model, card = cached_model(model_path, os.path.getmtime(model_path))
        if out_of_fold:
            from fer.train.tasks import out_of_fold_in_child
            from pages.common import current_user

            probabilities = out_of_fold_in_child(dataset.source, split, OutOfFold(folds=3), user=current_user(),
                                                 progress=report)
            audit = audit_split(None, dataset.classes, dataset, split, probabilities=probabilities)
        else:
            audit = audit_split(model, card.classes, dataset, split, progress=report)
    except FerError as error:
        st.error(f"Could not audit: {error}")
        return
    finally:
        bar.empty()
    st.session_state[AUDIT_KEY] = {"key": key, "audit": audit, "fitted": fitted_split(card, split)}
    st.session_state[DECISIONS_KEY] = {}


def show_suspects(dataset, split: str, audit: Audit, source: str) -> None:
    decisions: dict[str, str] = st.session_state.setdefault(DECISIONS_KEY, {})
    images = dataset.split(split).images
    pages = -(-len(audit.suspects) // AUDIT_PAGE)
    top, counts = st.columns([1, 3], vertical_alignment="bottom")
    page = top.number_input(f"Page (of {pages:,}, most suspicious first)", 1, max(pages, 1), 1,
                            key="dataset_audit_page")
    wrong = sum(mark == "wrong" for mark in decisions.values())
    counts.caption(f"{len(audit.suspects):,} images ranked in {audit.seconds:.1f} s; "
                   f"{wrong:,} marked wrong, {len(decisions) - wrong:,} kept.")
    shown = audit.suspects[(page - 1) * AUDIT_PAGE:page * AUDIT_PAGE]
    with st.container(key="audit_suspects"):
        for row in range(0, len(shown), 6):
            for column, suspect in zip(st.columns(6), shown[row:row + 6]):
                column.image(images[suspect.index], width=96)
                column.caption(f"{Path(suspect.file).name}  \ngiven **{suspect.given}** → **{suspect.suggested}**?  "
                               f"\nscore {suspect.score:.3f}")
                mark = column.segmented_control("Mark", MARKS, key=f"audit_mark_{suspect.file}",
                                                default=decisions.get(suspect.file), label_visibility="collapsed")
                if mark:
                    decisions[suspect.file] = mark
                else:
                    decisions.pop(suspect.file, None)
    show_exports(dataset, split, audit, decisions, source)


def show_exports(dataset, split: str, audit: Audit, decisions: dict[str, str], source: str) -> None:
    by_file = {suspect.file: suspect for suspect in audit.suspects}
    relabels = {file: by_file[file].suggested for file, mark in decisions.items() if mark == "wrong"}
    given = {file: by_file[file].given for file in relabels}
    left, middle, right = st.columns(3, vertical_alignment="bottom")
    left.download_button("⬇️ Relabel CSV (marked wrong)", relabel_csv(relabels, given, split=split),
                         file_name=f"relabel-{split}.csv", mime="text/csv", disabled=not relabels, width="stretch")
    middle.download_button("⬇️ Ranking (JSON)", json.dumps(suspects_json(audit.suspects), indent=2),
                           file_name=f"audit-{split}.json", mime="application/json", width="stretch")
    suffix = ".csv" if dataset.format == "fer2013-csv" else ".zip" if dataset.format.endswith("-zip") else ""
    default = str(Path(source).with_name(f"{Path(source).stem}-corrected{suffix}")) if source != "demo" else ""
    target = right.text_input("Corrected copy to", value=default, key="dataset_audit_target",
                              help="The dataset in its own format with the marked labels changed to the suggested "
                                   "ones; open it in the sidebar afterwards.")
    if right.button("Write corrected copy", disabled=not relabels or not target, width="stretch"):
        try:
            written = corrected_copy(dataset, split, relabels, target)
        except (FerError, OSError) as error:
            st.error(f"Not written: {error}")
        else:
            st.success(f"Wrote {written}: {len(relabels):,} label{'s' * (len(relabels) != 1)} changed.")


# --- Augmentation preview -----------------------------------------------------------------------


@st.cache_data(show_spinner="Augmenting…", max_entries=8)
def augmented(faces: np.ndarray, augmentation, copies: int, seed: int) -> np.ndarray:
    from fer.explain.features import augmented_examples

    return augmented_examples(faces, augmentation, copies=copies, seed=seed)


def show_augmentation_preview(dataset, augmentation, split: str) -> None:
    """On request: training faces as the network will see them, through the same augmentation layers."""
    if not st.toggle("Preview: faces as training sees them", key="train_augmentation_preview",
                     help="Six faces, each drawn six times through the same augmentation layers the model trains "
                          "with (the crop too, for presets that crop)."):
        return
    images = dataset.split(split).images
    if not len(images):
        return
    seed = int(st.session_state.get("train_preview_draw", 0))
    faces = images[np.linspace(0, len(images) - 1, 6).astype(int)]
    grid = augmented(faces, augmentation, 6, seed)  # (6 faces, 6 draws, S, S)
    with st.container(key="augmentation_preview"):
        for face, draws in zip(faces, grid):
            st.image([face, *draws], width=56)
    if st.button("New draw", key="train_preview_new"):
        st.session_state["train_preview_draw"] = seed + 1
        st.rerun()
