"""The label audit: rank a split's images by how much the model doubts their label, mark them, export the fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import streamlit as st

from fer.errors import FerError, in_words
from fer.explain.audit import (Audit, OutOfFold, audit_split, copy_suffix, corrected_copy_in, datasets_limit_bytes,
                               fitted_split, relabel_csv, suspects_json)
from fer.explain.galleries import page_count, page_of, relabels_from_marks
from fer.paths import user_datasets_dir
from fer.serve.served import ServedModel
from pages.common import current_user

AUDIT_KEY = "dataset_audit"  # {"key": (source, fingerprint, split, model name, out_of_fold), "audit", "fitted"}.
DECISIONS_KEY = "dataset_audit_decisions"  # {file: "wrong" | "keep"}
AUDIT_PAGE = 24  # Suspects per page.
MARKS = ("wrong", "keep")


@st.cache_data(show_spinner="Timing a training step for the estimate…", max_entries=8)
def out_of_fold_estimate(images: int, folds: int) -> float:
    from fer.explain.audit import estimate_out_of_fold_seconds

    return estimate_out_of_fold_seconds(images, OutOfFold(folds=folds))


def show_audit(dataset, source: str, model_name: str | None,
               serve: Callable[[str], ServedModel | None]) -> None:
    """Rank a split's images by how much the model called `model_name` doubts their label; mark them, export
    the fixes. `serve` turns the name into its handle (pages.common.served_model), only once Audit is pressed:
    the Dataset page does not load a model for a user who never audits."""
    st.subheader("Label audit")
    st.caption("Which given labels does the model doubt most? The ranking is cleanlab's label quality on the "
               "model's probabilities (each face averaged with its mirror image); the lowest scores come first.")
    names = [name for name in dataset.split_names if len(dataset.splits[name])]
    if model_name is None:
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
    key = (source, dataset.fingerprint, split, model_name, out_of_fold)
    if right.button("Audit", type="primary", width="stretch") and (served := serve(model_name)) is not None:
        _run_audit(key, dataset, split, served, out_of_fold)
    stored = st.session_state.get(AUDIT_KEY)
    if not stored or stored["key"] != key:
        return
    audit: Audit = stored["audit"]
    if not audit.out_of_fold and stored["fitted"]:
        st.warning(f"The model was trained on the **{split}** split, so it has fitted these labels and doubts few of "
                   "them: this ranking is weak. Turn on out-of-fold probabilities for a fair one.")
    show_suspects(dataset, split, audit, source)


def _run_audit(key: tuple, dataset, split: str, served: ServedModel, out_of_fold: bool) -> None:
    bar = st.progress(0.0, text="Auditing…")

    def report(fraction: float, message: str) -> None:
        bar.progress(min(fraction, 1.0), text=message)

    try:
        if out_of_fold:
            from fer.train.tasks import out_of_fold_in_child
            from pages.common import current_user

            probabilities = out_of_fold_in_child(dataset.source, split, OutOfFold(folds=3), user=current_user(),
                                                 progress=report)
            audit = audit_split(None, dataset.classes, dataset, split, probabilities=probabilities)
        else:
            audit = audit_split(served.model, served.card.classes, dataset, split, progress=report)
    except FerError as error:
        st.error(f"Could not audit: {error}")
        return
    finally:
        bar.empty()
    st.session_state[AUDIT_KEY] = {"key": key, "audit": audit, "fitted": fitted_split(served.card, split)}
    st.session_state[DECISIONS_KEY] = {}


def show_suspects(dataset, split: str, audit: Audit, source: str) -> None:
    decisions: dict[str, str] = st.session_state.setdefault(DECISIONS_KEY, {})
    images = dataset.split(split).images
    pages = page_count(len(audit.suspects), AUDIT_PAGE)
    top, counts = st.columns([1, 3], vertical_alignment="bottom")
    page = top.number_input(f"Page (of {pages:,}, most suspicious first)", 1, max(pages, 1), 1,
                            key="dataset_audit_page")
    wrong = sum(mark == "wrong" for mark in decisions.values())
    counts.caption(f"{len(audit.suspects):,} images ranked in {audit.seconds:.1f} s; "
                   f"{wrong:,} marked wrong, {len(decisions) - wrong:,} kept.")
    shown = page_of(audit.suspects, int(page), AUDIT_PAGE)
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
    relabels, given = relabels_from_marks(audit.suspects, decisions)
    left, middle, right = st.columns(3, vertical_alignment="bottom")
    left.download_button("⬇️ Relabel CSV (marked wrong)", relabel_csv(relabels, given, split=split),
                         file_name=f"relabel-{split}.csv", mime="text/csv", disabled=not relabels, width="stretch")
    middle.download_button("⬇️ Ranking (JSON)", json.dumps(suspects_json(audit.suspects), indent=2),
                           file_name=f"audit-{split}.json", mime="application/json", width="stretch")
    folder = user_datasets_dir(current_user())
    default = f"{Path(source).stem}-corrected" if source != "demo" else ""
    name = right.text_input(f"Corrected copy named ({copy_suffix(dataset) or 'a folder'})", value=default,
                            key="dataset_audit_target", max_chars=100,
                            help="The dataset in its own format with the marked labels changed to the suggested "
                                 "ones, saved under this new name in your datasets folder; open it in the sidebar "
                                 "(Path on the server) afterwards.")
    if right.button("Write corrected copy", disabled=not relabels or not name, width="stretch"):
        try:
            written = corrected_copy_in(folder, name, dataset, split, relabels, max_bytes=datasets_limit_bytes())
        except FerError as error:
            st.error(f"Not written: {error}")
        except OSError as error:
            st.error(f"Not written: {in_words(error)}")
        else:
            st.success(f"Wrote {written}: {len(relabels):,} label{'s' * (len(relabels) != 1)} changed.")
