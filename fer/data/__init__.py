"""Data: dataset sources opened into 48×48 arrays (datasets), image decoding (images), the synthetic
demo set (synthetic), NumPy batches for training (batches) and exploratory analysis (eda)."""
