"""Serving: load a model on onnxruntime (runtime), run TFLite exports (tflite_runtime), find faces
(detection), classify crops (prediction), draw results (drawing), and follow a live stream (live) or a
video file (video)."""
