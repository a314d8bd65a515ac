"""Models: presets and their layers (presets, augmentation), the model card (cards), saving and
loading .keras files (files), the registry of models a user can pick (registry), their ONNX and
TFLite exports (export) and the files a user can download of each (downloads)."""
