"""Stand-ins for the parts a test wants to misbehave, and the noise a quiet process must not print."""

from __future__ import annotations

TENSORFLOW_START_UP = ("oneDNN", "cuda drivers", "absl::InitializeLog", "cpu_feature_guard")


class CrashingDetector:
    """A face detector whose every search fails with an error that is not ours."""

    name = "broken"

    def detect(self, image):
        raise RuntimeError("detector fell over")
