"""Dataset: class balance, sample faces, mean faces and image quality of the active dataset."""

from pathlib import Path

import numpy as np
import streamlit as st

from fer.charts import dataset as charts

from fer.data import eda
from fer.data.datasets import DEMO, Dataset
from pages.common import active_dataset, active_dataset_source, active_model_name, served_model, use_app_shell
from widgets.label_audit import show_audit

SEED_KEY = "dataset_sample_seed"  # Bumped by "Re-roll": a new draw of samples per class.
ALL_SPLITS = "all splits"
MAX_GALLERY = 60  # Flagged images shown at once; the table lists them all.
MOSAIC_CONFIG = {"displayModeBar": False}  # Zoom and pan buttons only get in the way of a picture grid.


# Computations are cached by content (fingerprint) and origin (file names come from the source);
# the Dataset itself is passed with a leading underscore so Streamlit does not hash its arrays.
@st.cache_data(show_spinner="Computing mean faces and histograms…", max_entries=16)
def cached_profiles(fingerprint: str, source: str, split: str | None, _dataset: Dataset) -> eda.ClassProfiles:
    return eda.class_profiles(_dataset, split)


@st.cache_data(show_spinner="Checking image quality…", max_entries=8)
def cached_quality(fingerprint: str, source: str, _dataset: Dataset) -> eda.QualityReport:
    return eda.quality_report(_dataset)


def show_source(dataset: Dataset) -> None:
    name = "the built-in demo faces" if active_dataset_source() == DEMO else Path(dataset.source).name
    total = sum(len(split) for split in dataset.splits.values())
    st.caption(f"**{name}** · {total:,} images · format `{dataset.format}` · fingerprint `{dataset.fingerprint}` "
               "(a hash of every pixel and label: same fingerprint, same data)"
               + ("" if dataset.source == DEMO else f"  \nfrom `{dataset.source}`"))


def show_distribution(dataset: Dataset) -> None:
    st.header("Class distribution")
    distribution = eda.class_distribution(dataset)
    value = st.segmented_control("Show", ["count", "percent"], default="count", required=True,
                                 key="distribution_value", label_visibility="collapsed")
    with st.container(key="distribution_chart"):
        st.plotly_chart(charts.distribution_chart(distribution, value=value))
    counts = dataset.counts()
    columns = st.columns(len(counts))
    for column, (split, split_counts) in zip(columns, counts.items()):
        if sum(split_counts.values()):
            ratio = eda.imbalance_ratio(split_counts)
            column.metric(f"Imbalance ratio ({split})", "∞" if ratio == float("inf") else f"{ratio:.1f}×",
                          help="Images in the largest class divided by images in the smallest.")
    training = "train" if "train" in counts else next(iter(counts))
    if sum(counts[training].values()):
        st.info(f"**{training}:** {eda.class_weight_hint(counts[training])}")
    with st.expander("Counts and percentages"):
        st.dataframe(eda.distribution_table(distribution))


def show_samples(dataset: Dataset) -> None:
    st.header("Samples")
    st.session_state.setdefault(SEED_KEY, 0)
    left, middle, right = st.columns([2, 2, 1], vertical_alignment="bottom")
    split = left.selectbox("Split", dataset.split_names, key="sample_split")
    per_class = middle.slider("Images per class", 4, 16, 8, key="sample_per_class")
    if right.button("🎲 Re-roll", width="stretch"):
        st.session_state[SEED_KEY] += 1
    seed = st.session_state[SEED_KEY]
    samples = eda.sample_per_class(dataset, split, per_class=per_class, seed=seed)
    images = eda.gather_images(dataset, [(s.split, s.index) for s in samples])
    st.caption(f"Seed {seed}. Hover a face for its file name; click one to enlarge it.")
    with st.container(key="sample_grid"):
        # The key changes with the draw, so a click on an old grid does not point into a new one.
        event = st.plotly_chart(charts.sample_grid(images, samples, dataset.classes), on_select="rerun",
                                selection_mode="points", key=f"samples-{split}-{per_class}-{seed}",
                                config=MOSAIC_CONFIG)
    show_clicked(event, images, [f"{s.file} · {s.label} · {s.split} #{s.index}" for s in samples])


def show_clicked(event, images: np.ndarray, captions: list[str]) -> None:
    """Enlarge the face clicked in a mosaic (its markers are trace 1, marker i = image i)."""
    points = [p for p in event.selection.points if p.get("curve_number") == 1]
    if points:
        index = points[0]["point_index"]
        st.image(images[index], caption=captions[index], width=192)


def show_profiles(dataset: Dataset) -> None:
    st.header("Mean face and pixel histogram per class")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    choice = left.selectbox("Over", [ALL_SPLITS, *dataset.split_names], key="profile_split")
    stretch = right.toggle("Stretch contrast", value=True, key="profile_stretch",
                           help="Map each mean face's darkest to brightest value onto black to white.")
    profiles = cached_profiles(dataset.fingerprint, dataset.source, None if choice == ALL_SPLITS else choice,
                               dataset)
    st.plotly_chart(charts.mean_faces_chart(profiles, stretch=stretch), config=MOSAIC_CONFIG)
    st.plotly_chart(charts.pixel_histogram_chart(profiles))


def show_quality(dataset: Dataset) -> None:
    st.header("Image quality")
    report = cached_quality(dataset.fingerprint, dataset.source, dataset)
    summary = report.summary()
    metrics = st.columns(6)
    metrics[0].metric("Conversions", f"{summary['converted']:,}",
                      help="Decoding steps taken: a mode change to grayscale, a resize to 48×48 "
                           "(an image may need both).")
    metrics[1].metric("Skipped", f"{summary['skipped']:,}", help="Unreadable files left out.")
    metrics[2].metric("Near-blank", f"{summary['near_blank']:,}")
    metrics[3].metric("Low contrast", f"{summary['low_contrast']:,}")
    metrics[4].metric("Duplicate groups", f"{len(report.groups):,}",
                      help=f"{summary['redundant_copies']:,} images are exact copies of another.")
    metrics[5].metric("Across splits", f"{summary['duplicate_groups_across']:,}",
                      help="Identical images in two splits: they make validation scores look better.")
    duplicates, flagged, skipped, conversions = st.tabs(
        ["Duplicates", "Near-blank & low contrast", "Skipped files", "Conversions"])
    with duplicates:
        show_duplicates(dataset, report)
    with flagged:
        show_flagged(dataset, report)
    with skipped:
        if report.skipped.empty:
            st.success("No file was skipped: every image decoded.")
        else:
            st.dataframe(report.skipped, hide_index=True)
    with conversions:
        if not report.conversions:
            st.success("No image needed converting: all were 48×48 grayscale already.")
        else:
            st.dataframe({"conversion": list(report.conversions), "images": list(report.conversions.values())},
                         hide_index=True)


def show_duplicates(dataset: Dataset, report: eda.QualityReport) -> None:
    if report.groups.empty:
        st.success("No exact duplicates.")
        return
    st.caption(f"{len(report.groups):,} groups of identical images ({report.summary()['conflicting_labels']:,} "
               "with conflicting labels). Select a row to see its images.")
    scopes = ["all", *sorted(report.groups["scope"].unique())]
    scope = st.selectbox("Scope", scopes, key="duplicate_scope")
    groups = report.groups if scope == "all" else report.groups[report.groups["scope"] == scope]
    picked = st.dataframe(groups, hide_index=True, on_select="rerun", selection_mode="single-row",
                          key=f"duplicate_groups-{scope}", height=240)
    rows = picked.selection.rows
    group = int(groups.iloc[rows[0] if rows else 0]["group"])
    members = report.duplicates[report.duplicates["group"] == group]
    images = eda.gather_images(dataset, list(zip(members["split"], members["index"])))
    hover = [f"<b>{f}</b><br>{c} · {s} #{i}" for f, c, s, i in
             zip(members["file"], members["class"], members["split"], members["index"])]
    st.markdown(f"**Group {group}**: {len(members)} identical images")
    st.plotly_chart(charts.image_grid(images, hover, columns=12), key=f"duplicate_grid-{group}",
                    config=MOSAIC_CONFIG)


def show_flagged(dataset: Dataset, report: eda.QualityReport) -> None:
    st.plotly_chart(charts.contrast_chart(report.contrast, report.thresholds))
    if report.flagged.empty:
        st.success("No near-blank or low-contrast images.")
        return
    st.dataframe(report.flagged, hide_index=True, height=240)
    shown = report.flagged.head(MAX_GALLERY)
    images = eda.gather_images(dataset, list(zip(shown["split"], shown["index"])))
    hover = [f"<b>{f}</b><br>{issue} (contrast {c:.1f}) · {label}" for f, issue, c, label in
             zip(shown["file"], shown["issue"], shown["contrast"], shown["class"])]
    if len(report.flagged) > MAX_GALLERY:
        st.caption(f"The first {MAX_GALLERY} of {len(report.flagged):,}:")
    st.plotly_chart(charts.image_grid(images, hover, columns=12), config=MOSAIC_CONFIG)


use_app_shell()
st.title("🗂️ Dataset")
dataset = active_dataset()
if dataset is None:
    st.stop()
show_source(dataset)
show_distribution(dataset)
show_samples(dataset)
show_profiles(dataset)
show_quality(dataset)
show_audit(dataset, active_dataset_source(), active_model_name(), served_model)
