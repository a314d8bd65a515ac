"""Plotly figures, one module per page or view: dataset, training, evaluation, explain, prediction, video.

Every colour they use comes from palette, which fer.serve.drawing shares for boxes drawn on images.
"""
