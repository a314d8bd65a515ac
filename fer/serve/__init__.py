"""Serving: find faces (detection), classify crops (prediction), draw results (drawing) and follow
a live stream (live)."""
