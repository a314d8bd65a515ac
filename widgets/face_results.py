"""How Predict shows the faces it read: a heading and chart for one face, one table with a bar per class for
several, the "uncertain" threshold they share, and the summary, table and downloads of many photos.
Used by the Photos tab, the batch of photos (widgets.photo_batch) and the webcam's snapshot (widgets.webcam).
"""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from fer.charts.prediction import probability_figure
from fer.formatting import count, percent
from fer.serve.batch import annotated_zip
from fer.serve.prediction import FacePrediction, ImageResult, results_for_people, results_table
from fer.serve.served import ServedModel

THRESHOLD_KEY = "predict_uncertain_below"  # Faces whose top class is less likely than this are "uncertain".
UNCERTAIN_DEFAULT = 50  # %: below an even chance, the top class is less likely than all the others together.
CHART_CONFIG = {"displayModeBar": False}


def uncertain_below() -> float:
    return st.session_state.get(THRESHOLD_KEY, UNCERTAIN_DEFAULT) / 100


def face_heading(number: int, face: FacePrediction) -> str:
    """"**Face 2** · happy 81%", with a word of caution for an uncertain face or a whole-image read."""
    title = "Whole image (no face found)" if face.whole_image else f"Face {number}"
    line = f"**{title}** · **{face.label}** {face.confidence:.0%}"
    return line + (" · uncertain" if face.confidence < uncertain_below() else "")


def show_faces(result_faces: Sequence[FacePrediction], chart_key: str) -> None:
    """One face: its probability chart. Several: one compact table, a bar per class, the number on each
    row the number drawn on its box; selecting a row highlights that box (returns through session state)."""
    if len(result_faces) <= 1:
        for number, face in enumerate(result_faces, start=1):
            st.markdown(face_heading(number, face))
            st.plotly_chart(probability_figure(face), key=f"{chart_key}-{number}", config=CHART_CONFIG)
        return
    threshold = uncertain_below()
    classes = list(result_faces[0].probabilities)
    rows = [{"face": number, "label": face.label, "sure": "uncertain" if face.confidence < threshold else "",
             **{name: round(face.probabilities[name] * 100, 1) for name in classes}}
            for number, face in enumerate(result_faces, start=1)]
    bars = {name: st.column_config.ProgressColumn(name, min_value=0, max_value=100, format="%.1f%%", width="small",
                                                  help=f"The probability of {name}") for name in classes}
    st.caption("Each row's number is drawn on its face's box. Select a row to highlight that face.")
    st.dataframe(rows, hide_index=True, key=chart_key, on_select="rerun", selection_mode="single-row",
                 column_config={"face": st.column_config.NumberColumn("#", width="small"),
                                "sure": st.column_config.TextColumn("flag", width="small",
                                                                    help="uncertain: below the threshold above"),
                                **bars})


def selected_face(chart_key: str) -> int | None:
    """The 0-based face whose row is selected in a `show_faces` table, else None."""
    selection = st.session_state.get(chart_key)
    rows = (selection or {}).get("selection", {}).get("rows") if isinstance(selection, dict) else None
    if rows is None and selection is not None and hasattr(selection, "selection"):
        rows = selection.selection.rows
    return rows[0] if rows else None


def summary(results: Sequence[ImageResult]) -> str:
    """"**3 images · 5 faces found** · 1 read as a whole image · 1 could not be read"."""
    found = sum(not face.whole_image for result in results for face in result.faces)
    whole = sum(any(face.whole_image for face in result.faces) for result in results)
    failed = sum(not result.ok for result in results)
    uncertain = sum(face.confidence < uncertain_below() for result in results for face in result.faces)
    return (f"**{count(len(results), 'image')} · {count(found, 'face')} found**"
            + (f" · {whole} read as a whole image (no face found)" if whole else "")
            + (f" · {uncertain} uncertain (below {percent(uncertain_below(), decimals=0)})" if uncertain else "")
            + (f" · {failed} could not be read" if failed else ""))


def show_results_table(results: Sequence[ImageResult], served: ServedModel, pictures: list[tuple[str, bytes]],
                       *, key: str) -> None:
    """The summary, every face's row (percentages, no empty "None" cells), its CSV and one zip of the photos."""
    st.markdown(summary(results))
    table = results_table(results, served.classes, uncertain_below=uncertain_below())
    with st.expander("Results table", expanded=len(results) > 1):
        st.dataframe(results_for_people(table), hide_index=True, column_config={
            "file": st.column_config.TextColumn("file", width="medium"),
            "note": st.column_config.TextColumn("note", width="medium",
                                                help="Why a row has no face, or how it was read"),
        })
        left, right = st.columns(2)
        left.download_button("Download results (CSV)", table.to_csv(index=False).encode(), file_name="predictions.csv",
                             mime="text/csv", icon=":material/download:", key=f"download-{key}-csv")
        if pictures:
            right.download_button(f"Download {count(len(pictures), 'annotated photo')} (.zip)",
                                  annotated_zip(pictures), file_name="annotated-photos.zip", mime="application/zip",
                                  icon=":material/folder_zip:", key=f"download-{key}-zip")
