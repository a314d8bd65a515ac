"""The see-inside widgets the pages share, one module each, named for what it shows.

They live outside `pages/` (the folder Streamlit scans for pages) and only lay out widgets: what to
show is chosen by fer.explain.galleries and drawn by fer.charts. Each takes the page's
fer.serve.served.ServedModel handle for the model it explains.
"""
