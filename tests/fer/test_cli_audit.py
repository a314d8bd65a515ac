"""`fer audit` on the command line: its JSON report and its errors."""

from __future__ import annotations

import json


from fer.cli import main
from fer.labels import CLASSES
from fer.model.cards import ModelCard
from fer.model.files import save_model
from fer.model.presets import build_model


def test_audit_json_is_a_list_most_suspicious_first(kaggle_folder, tmp_path, capsys):
    path = save_model(build_model("tiny"), tmp_path / "tiny.keras", ModelCard(name="tiny", preset="tiny",
                                                                               classes=CLASSES))
    assert main(["audit", "--dataset", str(kaggle_folder), "--model", str(path), "--json", "--limit", "10"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert isinstance(entries, list) and len(entries) == 10
    assert all(set(entry) == {"file", "given", "suggested", "score"} for entry in entries)
    assert all(entry["given"] in CLASSES and entry["suggested"] in CLASSES for entry in entries)
    assert all(entry["file"].startswith("images/validation/") for entry in entries)
    scores = [entry["score"] for entry in entries]
    assert scores == sorted(scores)


def test_audit_refuses_a_missing_split_in_words(kaggle_folder, capsys):
    assert main(["audit", "--dataset", str(kaggle_folder), "--split", "nope"]) == 2
    assert "no 'nope' split" in capsys.readouterr().err
