"""fer.train.parents: which models a run can start from (a name, a run or a file) and the Train form's list."""

import pytest

from fer.errors import FerError
from fer.train import parents
from fer.train.run_dir import RunDir


def finished_run(home, name, model):
    run = RunDir(home / "runs" / name)
    run.path.mkdir(parents=True)
    run.best_model.write_bytes(model.read_bytes())
    run.update_state(status="finished")
    return run


def test_the_parent_is_found_by_name_run_or_path_and_anything_else_is_refused(tiny_model_path, fer_home):
    from fer.paths import user_models_dir

    assert parents.resolve_parent(str(tiny_model_path)) == tiny_model_path
    assert parents.resolve_parent("fer2013").name == "fer2013.keras"
    registered = user_models_dir() / "mine.keras"
    registered.parent.mkdir(parents=True)
    registered.write_bytes(tiny_model_path.read_bytes())
    assert parents.resolve_parent("mine") == registered
    run = RunDir(fer_home / "runs" / "20260101-000000-tiny")
    run.path.mkdir(parents=True)
    run.best_model.write_bytes(tiny_model_path.read_bytes())
    run.update_state(status="finished")
    assert parents.resolve_parent(run.name) == run.best_model
    run.update_state(status="running")
    with pytest.raises(FerError, match="still training"):
        parents.resolve_parent(str(run.path))
    for given in ("nothing-here", "../../etc/passwd", ""):
        with pytest.raises(FerError, match="start from|registered model"):
            parents.resolve_parent(given)


def test_the_form_lists_the_shipped_model_then_registered_models_then_finished_runs(tiny_model_path, fer_home):
    from fer.paths import user_models_dir

    user_models_dir().mkdir(parents=True)
    (user_models_dir() / "mine.keras").write_bytes(tiny_model_path.read_bytes())
    finished_run(fer_home, "20260101-000000-tiny", tiny_model_path)
    unfinished = finished_run(fer_home, "20260101-000001-tiny", tiny_model_path)
    unfinished.update_state(status="stopped")
    names = list(parents.parent_choices())
    assert names[0] == "fer2013" and "mine" in names and "run:20260101-000000-tiny" in names
    assert names.index("mine") < names.index("run:20260101-000000-tiny")
    assert not any("000001" in name for name in names)
    assert parents.resolve_parent("run:20260101-000000-tiny") == fer_home / "runs" / "20260101-000000-tiny" / \
        "best.keras"


def test_the_history_names_a_parent_by_its_model_or_run():
    assert parents.parent_name("/x/models/fer2013.keras") == "fer2013"
    assert parents.parent_name("/x/runs/20260101-000000-tiny/best.keras") == "20260101-000000-tiny"
    assert parents.parent_name(None) is None
