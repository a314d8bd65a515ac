"""Plotly figures, one module per page: dataset, training, evaluation; colours in palette."""
