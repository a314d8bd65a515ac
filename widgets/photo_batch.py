"""Predict's "many photos at once": a folder on the server (inside the user's data roots) or one zip, read
into one results table, its CSV and a zip of the annotated photos.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from fer.errors import FerError
from fer.formatting import escape_markdown
from fer.serve.batch import photos_in_folder, photos_in_zip
from fer.serve.drawing import annotate, encode_image
from fer.serve.prediction import predict_file
from fer.serve.served import ServedModel
from pages.common import accounts_configured, current_user
from widgets.face_results import show_results_table

BATCH_KEY = "predict_batch"  # ([ImageResult], [(name, annotated JPEG)]) of the last batch read.


def data_roots_of_user():
    """The folders this user's browser may read from (fer.data.roots), looked up when a folder is asked for."""
    from fer.data.roots import data_roots

    return data_roots(accounts=accounts_configured(), user=current_user())


def batch_section(served: ServedModel, detector) -> None:
    """Many photos at once, from a folder on the server (inside the data roots) or one zip: a table and a zip."""
    with st.expander("Many photos at once: a folder on the server, or a zip"):
        with st.form("predict_batch_form", border=False):
            folder = st.text_input("Folder on the server", key="predict_batch_folder",
                                   help="Inside the folders this server opens datasets from; sub-folders are read too.")
            archive = st.file_uploader("or a zip of photos", type=["zip"], key="predict_batch_zip")
            submitted = st.form_submit_button("Read them", icon=":material/photo_library:")
        if submitted:
            try:
                photos = (photos_in_zip(archive.getvalue()) if archive is not None
                          else photos_in_folder(folder, data_roots_of_user()))
            except FerError as error:
                st.error(f"Could not read the photos: {escape_markdown(str(error))}")
                return
            bar = st.progress(0.0, text="Analysing photos…")
            results, pictures = [], []
            for number, photo in enumerate(photos, start=1):
                result = predict_file(photo.name, photo.data, served.classifier, detector)
                if result.image is not None:
                    pictures.append((photo.name, encode_image(annotate(result.image, result.faces, numbered=True),
                                                              "JPEG")))
                results.append(replace(result, image=None))
                bar.progress(number / len(photos), text=f"Analysed {number} of {len(photos)}")
            bar.empty()
            st.session_state[BATCH_KEY] = (results, pictures)
        stored = st.session_state.get(BATCH_KEY)
        if stored:
            show_results_table(stored[0], served, stored[1], key="batch")
