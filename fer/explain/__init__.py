"""See inside a model: why a face got its label (Grad-CAM), which dataset labels look wrong (audit),
and what the network sees and learned (augmented inputs, penultimate features)."""
