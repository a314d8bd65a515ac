"""In a real Chromium: a new user downloads the shipped model's ONNX file from Home."""

from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest

from browser.conftest import ROOT, wait_for_app

pytestmark = pytest.mark.browser

SHIPPED_ONNX = ROOT / "models" / "fer2013.onnx"


@pytest.mark.skipif(not SHIPPED_ONNX.exists(), reason="the shipped model's ONNX export is missing")
def test_home_offers_the_shipped_model_as_onnx(page, app_server, tmp_path):
    page.goto(app_server)
    wait_for_app(page)
    page.get_by_text("Download this model").click()
    row = page.get_by_text("ONNX float32").locator("xpath=ancestor::div[@data-testid='stHorizontalBlock'][1]")
    assert "validation accuracy 70.8%" in row.inner_text()
    with page.expect_download(timeout=60_000) as download:
        row.get_by_role("button", name="Download").click()
    saved = Path(tmp_path / download.value.suggested_filename)
    download.value.save_as(saved)

    assert saved.name == "fer2013.onnx" and saved.read_bytes() == SHIPPED_ONNX.read_bytes()
    session = onnxruntime.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape[-1] == 7
    assert page.console_errors == []
