"""Sections of the pages with a name of their own, one module each, named for what it shows.

They live outside `pages/` (the folder Streamlit scans for pages) and only lay out widgets. The
see-inside ones (gradcam, confusion_cell, feature_map, label_audit, augmentation_preview) show what
fer.explain.galleries chooses and fer.charts draws, for the page's fer.serve.served.ServedModel;
Predict's sections are face_results, photo_batch and webcam; Train's form has start_from.
"""
