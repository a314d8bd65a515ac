"""Models: presets and their layers (presets, augmentation), the model card (cards), saving and
loading .keras files (files), the registry of models a user can pick (registry) and their ONNX and
TFLite exports (export)."""
