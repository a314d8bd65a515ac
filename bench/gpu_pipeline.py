"""Distillation's one driver: teachers → teacher ensemble → students with and without distillation → frontier table.

    # On the GPU machine, inside one device call (Keras's JAX backend, NumPy batches, no TensorFlow):
    XLA_PYTHON_CLIENT_PREALLOCATE=false KERAS_BACKEND=jax python bench/gpu_pipeline.py run \
        --dataset shared/fer2013/images.zip --out $OUT --budget-seconds 480
    # Here, afterwards: re-time every row on this 2-core CPU (onnxruntime) from the files that came back
    .venv/bin/python bench/gpu_pipeline.py frontier RESULTS_DIR
    # Parameters, FLOPs, file size and onnxruntime ms a face of each preset (untrained: speed needs no training)
    .venv/bin/python bench/gpu_pipeline.py presets

`run` trains every job of a phase side by side, one `python -m fer train` process each (the shipped
model's recipe, docs/model.md), as the run that trained the shipped model did. Each phase's epochs are
sized from a probe: the phase's exact jobs run for `--probe-epochs` epochs under the same load first,
and each job then gets the epochs that fit its share of the budget (at most `--max-epochs`). Students of
each preset and seed are trained plain and distilled for the same number of epochs. The candidates,
seeds and the shipping rule are fixed in docs/model.md ("Next: distillation") before any result.

What comes back through $OUT (at most 8 files, 16 MiB each): frontier.md, frontier.json, driver.log,
logs.tar.gz (every run's config, metrics, cards and console log) and the students' weights in tar files
of at most 15 MiB. Teachers and their ensemble are too large to come back; their numbers are in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# The shipped model's recipe (docs/model.md); only the preset, epochs, seed and teacher change.
RECIPE = ["--batch-size", "64", "--learning-rate", "0.05", "--optimizer", "sgd", "--schedule", "cosine",
          "--warmup-epochs", "2", "--weight-decay", "0.0005", "--label-smoothing", "0.1"]
TEACHERS = ("vgg48", "resnet18", "vgg40w")  # Fixed before any result (docs/model.md).
STUDENTS = ("vgg40s", "vgg40")
TEACHER_SEEDS = (3,)
STUDENT_SEEDS = (3, 4)
TEACHER_SHARE = 0.5  # Of the time left after the probes: the students get what the teachers leave.
WEIGHTS_TAR_BYTES = 15 * 2**20  # Under the 16 MiB a returned file may have.
WEIGHT_TARS = 4  # 8 returned files at most, less frontier.md, frontier.json, driver.log and logs.tar.gz.


@dataclass
class Job:
    """One `python -m fer train` process."""

    name: str
    role: str  # "teacher" or "student"
    preset: str
    seed: int
    teacher: str | None = None
    epochs: int = 1
    run_dir: str = ""
    wall_seconds: float | None = None
    returncode: int | None = None
    epoch_seconds: list = field(default_factory=list)

    def command(self, dataset: str) -> list[str]:
        command = [sys.executable, "-m", "fer", "train", "--dataset", dataset, "--preset", self.preset,
                   "--epochs", str(self.epochs), *RECIPE, "--seed", str(self.seed), "--out", self.run_dir]
        return command + (["--teacher", self.teacher] if self.teacher else [])


class Log:
    """Prints and appends to driver.log in $OUT as it goes, so a run stopped at its limit still says how far it got."""

    def __init__(self, path: Path):
        self.path = path
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.started:7.1f}s] {message}"
        print(line, flush=True)
        with self.path.open("a") as stream:
            stream.write(line + "\n")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --- Running a phase -------------------------------------------------------------------------------


def run_side_by_side(jobs: list[Job], dataset: str, folder: Path, log: Log) -> None:
    """Start every job at once (one process each) and wait for all; fills wall time, return code, epoch times."""
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    running = []
    for job in jobs:
        job.run_dir = str(folder / job.name)
        stream = (folder / f"{job.name}.log").open("w")
        stream.write(" ".join(job.command(dataset)) + "\n")
        stream.flush()
        running.append((job, subprocess.Popen(job.command(dataset), cwd=ROOT, env=environment, stdout=stream,
                                              stderr=subprocess.STDOUT), stream, time.perf_counter()))
    log(f"started {len(jobs)} side by side in {folder.name}: " + ", ".join(f"{j.name} ({j.epochs} ep)" for j in jobs))
    for job, process, stream, started in running:
        job.returncode = process.wait()
        job.wall_seconds = round(time.perf_counter() - started, 1)
        stream.close()
        job.epoch_seconds = [row["seconds"] for row in read_metrics(Path(job.run_dir))]
        state = "ok" if job.returncode == 0 else f"FAILED (exit {job.returncode}, see {folder.name}/{job.name}.log)"
        log(f"  {job.name}: {state}, {job.wall_seconds}s, epochs {len(job.epoch_seconds)}, "
            f"epoch seconds {job.epoch_seconds[-3:]}")


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fitted_epochs(probe: Job, budget_seconds: float, probe_epochs: int, max_epochs: int) -> int:
    """The epochs of `probe`'s job that fit `budget_seconds` of wall time: the probe's later epochs
    set the pace, and what its process spent outside them (start, compiling, final evaluation) is paid once."""
    if probe.returncode != 0 or not probe.epoch_seconds:
        return 0
    per_epoch = probe.epoch_seconds[-1]  # The first epoch compiles; the last is the steady pace.
    once = probe.wall_seconds - per_epoch * probe_epochs
    return max(1, min(max_epochs, int((budget_seconds - once) // per_epoch)))


# --- The teacher ensemble --------------------------------------------------------------------------


def save_teacher_ensemble(teachers: list[Job], dataset_path: str, path: Path) -> Path:
    """The teachers' best models averaged, saved with a card that lists its members and its validation accuracy."""
    from fer.data.datasets import open_dataset
    from fer.evaluate.scoring import predict_probabilities
    from fer.model.cards import ModelCard
    from fer.model.files import load_model, save_model
    from fer.model.presets import ensemble

    models, members = [], []
    for job in teachers:
        best = Path(job.run_dir) / "best.keras"
        model, card = load_model(best)
        models.append(model)
        members.append({"source": str(best), "preset": job.preset, "epoch": card.epoch,
                        "validation_accuracy": card.accuracy("validation")})
    dataset = open_dataset(dataset_path)
    validation = dataset.split("validation")
    combined = ensemble(models)
    probabilities = predict_probabilities(combined, validation.images, batch_size=512)
    accuracy = round(float(np.mean(probabilities.argmax(axis=1) == validation.labels)), 4)
    card = ModelCard(name=path.stem, preset="+".join(job.preset for job in teachers), classes=tuple(dataset.classes),
                     ensemble=members, metrics={"validation": {"accuracy": accuracy, "images": len(validation)}})
    return save_model(combined, path, card)


# --- Sizes and speeds ------------------------------------------------------------------------------


def flops_per_face(model) -> int:
    """Multiply-adds × 2 of the conv and dense layers for one 48×48 face, nested models (ensemble members) included."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += flops_per_face(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_height, kernel_width, channels_in, _ = layer.kernel.shape
            total += 2 * height * width * kernel_height * kernel_width * channels_in * channels_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return int(total)


def time_on_onnxruntime(models: dict, rounds: int = 5) -> dict[str, tuple[float, float] | str]:
    """{name: (ms a face in batches of 256, ms for one face)} on onnxruntime with 2 threads (this project's
    CPU), the models timed in turn in each round; a model that cannot be exported gets the reason instead."""
    from types import SimpleNamespace

    from fer.model.export import time_side_by_side
    from fer.serve.runtime import OnnxModel, SessionSettings

    faces = SimpleNamespace(images=np.random.default_rng(0).integers(0, 256, (256, 48, 48, 1)).astype(np.uint8))
    sessions, failed = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            path = Path(folder) / f"{len(sessions) + len(failed)}.onnx"
            try:
                model.predict_on_batch(faces.images[:2].astype(np.float32))
                model.export(str(path), format="onnx", verbose=False)
                sessions[name] = OnnxModel(path, SessionSettings(intra_op_threads=2))
            except Exception as error:  # No TensorFlow or onnxruntime here (the GPU machine): time it on the CPU later.
                failed[name] = f"not timed: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
        timed = time_side_by_side(sessions, faces, rounds=rounds) if sessions else {}
    return {**timed, **failed}


def architecture(preset: str, members: tuple[str, ...] = ()):
    """An untrained build of `preset` (or an ensemble of `members`): what speed and size depend on."""
    from fer.model.presets import build_model, ensemble

    return ensemble([build_model(member) for member in members]) if members else build_model(preset)


def presets_table(names) -> str:
    """Parameters, FLOPs a face, file size and onnxruntime speed of each preset, timed side by side."""
    import keras

    models = {name: architecture(name) for name in names}
    speeds = time_on_onnxruntime(models)
    rows = ["| preset | parameters | MFLOPs a face | .keras file | ms a face (batches of 256) | ms for one face |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            path = Path(folder) / f"{name}.keras"
            keras.Model.save(model, path)
            speed = speeds[name]
            timing = f"{speed[0]:.2f} | {speed[1]:.2f}" if isinstance(speed, tuple) else f"{speed} | "
            rows.append(f"| {name} | {model.count_params():,} | {flops_per_face(model) / 1e6:,.0f} | "
                        f"{path.stat().st_size / 1e6:.1f} MB | {timing} |")
    return "\n".join(rows)


# --- The frontier ----------------------------------------------------------------------------------


def frontier_rows(plan: dict) -> list[dict]:
    """One row per teacher, the teacher ensemble and each student: accuracy, cost and where it came from."""
    from fer.model.cards import read_card

    rows = []
    for job in [Job(**item) for item in plan["teachers"] + plan["students"]]:
        best = Path(job.run_dir) / "best.keras"
        card = read_card(best) if best.with_suffix(".json").exists() else None
        rows.append({"name": job.name, "role": job.role, "preset": job.preset, "seed": job.seed,
                     "distilled": bool(job.teacher), "epochs": job.epochs,
                     "best_epoch": card.epoch if card else None,
                     "validation_accuracy": card.accuracy("validation") if card else None,
                     "train_accuracy": card.accuracy("train") if card else None,
                     "training_seconds": card.training_seconds if card else None,
                     "file_bytes": best.stat().st_size if best.exists() else None, "members": ()})
    if plan.get("ensemble"):
        path = Path(plan["ensemble"])
        card = read_card(path) if path.with_suffix(".json").exists() else None
        rows.append({"name": path.stem, "role": "teacher ensemble", "preset": card.preset if card else None,
                     "seed": None, "distilled": False, "epochs": None, "best_epoch": None,
                     "validation_accuracy": card.accuracy("validation") if card else None, "train_accuracy": None,
                     "training_seconds": None, "file_bytes": path.stat().st_size if path.exists() else None,
                     "members": tuple(plan["teacher_presets"])})
    models = architectures(rows)
    for row in rows:
        model = models[_architecture_key(row)]
        row["parameters"], row["flops"] = model.count_params(), flops_per_face(model)
    return rows


def _architecture_key(row: dict) -> str:
    return "+".join(row["members"]) or row["preset"]


def architectures(rows: list[dict]) -> dict:
    """One untrained build per distinct architecture among `rows` (speed and size do not depend on weights)."""
    models = {}
    for row in rows:
        if _architecture_key(row) not in models:
            models[_architecture_key(row)] = architecture(row["preset"], tuple(row["members"]))
    return models


def add_timings(rows: list[dict]) -> list[dict]:
    """Each row's ms a face on onnxruntime (2 threads), every architecture timed side by side on this machine."""
    speeds = time_on_onnxruntime(architectures(rows))
    for row in rows:
        speed = speeds.get(_architecture_key(row), "not timed")
        row["ms_per_face_batch"], row["ms_one_face"] = speed if isinstance(speed, tuple) else (None, None)
        row["timing_note"] = None if isinstance(speed, tuple) else speed
    return rows


def frontier_markdown(rows: list[dict], dataset: str, where: str) -> str:
    """The frontier table, most accurate first, and the spread over seeds of each student kind."""
    lines = [f"Validation accuracy on the validation split of {dataset}; ms a face on onnxruntime float32, "
             f"2 threads, an untrained build of each architecture (weights do not change the speed), {where}.", "",
             "| model | role | preset | seed | distilled | epochs (best) | validation accuracy | train accuracy "
             "| parameters | MFLOPs a face | file | ms a face (batch 256) | ms one face |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def number(value, pattern):
        return pattern.format(value) if value is not None else "—"

    for row in sorted(rows, key=lambda row: -(row["validation_accuracy"] or 0)):
        epochs = f"{row['epochs']} ({row['best_epoch']})" if row["epochs"] else "—"
        lines.append(
            f"| {row['name']} | {row['role']} | {row['preset']} | {number(row['seed'], '{}')} | "
            f"{'yes' if row['distilled'] else 'no'} | {epochs} | {number(row['validation_accuracy'], '{:.4f}')} | "
            f"{number(row['train_accuracy'], '{:.4f}')} | {row['parameters']:,} | {row['flops'] / 1e6:,.0f} | "
            f"{number(row['file_bytes'] and row['file_bytes'] / 1e6, '{:.1f} MB')} | "
            f"{number(row['ms_per_face_batch'], '{:.2f}')} | {number(row['ms_one_face'], '{:.2f}')} |")
    lines += ["", "Students over seeds (validation accuracy):", ""]
    kinds = {}
    for row in rows:
        if row["role"] == "student" and row["validation_accuracy"] is not None:
            kinds.setdefault((row["preset"], row["distilled"]), []).append(row["validation_accuracy"])
    for (preset, distilled), values in sorted(kinds.items()):
        spread = f"mean {statistics.mean(values):.4f}, range {min(values):.4f}–{max(values):.4f}"
        lines.append(f"- {preset} {'distilled' if distilled else 'plain'}: {len(values)} seed(s), {spread}")
    return "\n".join(lines) + "\n"


def write_frontier(plan: dict, rows: list[dict], folder: Path, where: str) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frontier.json").write_text(json.dumps({"plan": plan, "rows": rows}, indent=2, default=str) + "\n")
    (folder / "frontier.md").write_text(frontier_markdown(rows, plan["dataset"], where))
    return rows


# --- Packing what comes back -----------------------------------------------------------------------


def pack(plan: dict, work: Path, out: Path, log: Log) -> None:
    """logs.tar.gz (configs, metrics, cards, console logs of every run) and the students' weights in tars ≤ 15 MiB."""
    with tarfile.open(out / "logs.tar.gz", "w:gz") as archive:
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".txt"):
                archive.add(path, arcname=str(path.relative_to(work)))
    students = [Path(item["run_dir"]) / "best.keras" for item in plan["students"]]
    bundles, current, size = [], [], 0
    for path in (p for p in students if p.exists()):
        bytes_needed = path.stat().st_size + path.with_suffix(".json").stat().st_size
        if current and size + bytes_needed > WEIGHTS_TAR_BYTES:
            bundles.append(current)
            current, size = [], 0
        current.append(path)
        size += bytes_needed
    bundles += [current] if current else []
    for index, bundle in enumerate(bundles[:WEIGHT_TARS], start=1):
        with tarfile.open(out / f"students-{index}.tar", "w") as archive:
            for path in bundle:
                for file in (path, path.with_suffix(".json")):
                    archive.add(file, arcname=str(file.relative_to(work)))
        log(f"students-{index}.tar: {', '.join(path.parent.name for path in bundle)}")
    for bundle in bundles[WEIGHT_TARS:]:
        log(f"left behind (no room in $OUT): {', '.join(path.parent.name for path in bundle)}")


# --- The pipeline ----------------------------------------------------------------------------------


def run_pipeline(args) -> int:
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = Log(out / "driver.log")
    import keras

    log(f"backend {keras.backend.backend()}, dataset {args.dataset}, budget {args.budget_seconds}s, "
        f"teachers {args.teachers} (seeds {args.teacher_seeds}), students {args.students} (seeds {args.student_seeds})")

    def teacher_jobs():
        return [Job(f"teacher-{preset}-s{seed}", "teacher", preset, seed)
                for preset in args.teachers for seed in args.teacher_seeds]

    def student_jobs(teacher_file: str):
        return [Job(f"student-{preset}-{'kd' if teacher else 'plain'}-s{seed}", "student", preset, seed, teacher)
                for preset in args.students for seed in args.student_seeds for teacher in (None, teacher_file)]

    def probed(jobs: list[Job], folder: str) -> bool:
        """Run `jobs` for the probe's epochs, side by side; False (logged) if any failed."""
        for job in jobs:
            job.epochs = args.probe_epochs
        run_side_by_side(jobs, args.dataset, work / folder, log)
        if any(job.returncode for job in jobs):
            log(f"a probe in {folder} failed; stopping")
            return False
        return True

    # Probe the teachers' phase, then make a probe ensemble so the students' probe runs distillation for real.
    probes = teacher_jobs()
    if not probed(probes, "probe-teachers"):
        return 1
    probe_ensemble = save_teacher_ensemble(probes, args.dataset, work / "probe-teachers" / "teachers.keras")
    student_probes = student_jobs(str(probe_ensemble))
    if not probed(student_probes, "probe-students"):
        return 1

    # Teachers: each gets the epochs that fit its share of what is left.
    reserve = args.reserve_seconds
    teachers_budget = (args.budget_seconds - log.elapsed - reserve) * TEACHER_SHARE
    teachers = teacher_jobs()
    for job, probe in zip(teachers, probes):
        job.epochs = fitted_epochs(probe, teachers_budget, args.probe_epochs, args.max_epochs)
    log(f"teachers' budget {teachers_budget:.0f}s → epochs {[job.epochs for job in teachers]}")
    run_side_by_side(teachers, args.dataset, work / "teachers", log)
    good_teachers = [job for job in teachers if job.returncode == 0]
    if not good_teachers:
        log("every teacher failed; stopping")
        return 1
    ensemble_file = save_teacher_ensemble(good_teachers, args.dataset, work / "teachers" / "teachers.keras")
    log(f"teacher ensemble: {ensemble_file}")

    # Students: the plain and the distilled one of each preset and seed get the same epochs (the slower's fit).
    students_budget = args.budget_seconds - log.elapsed - reserve
    students = student_jobs(str(ensemble_file))
    paced = {job.name: fitted_epochs(probe, students_budget, args.probe_epochs, args.max_epochs)
             for job, probe in zip(students, student_probes)}
    for job in students:
        pair = [paced[other.name] for other in students if (other.preset, other.seed) == (job.preset, job.seed)]
        job.epochs = max(1, min(pair))
    log(f"students' budget {students_budget:.0f}s → epochs {[job.epochs for job in students]}")
    run_side_by_side(students, args.dataset, work / "students", log)

    plan = {"dataset": args.dataset, "backend": keras.backend.backend(), "recipe": " ".join(RECIPE),
            "teacher_presets": [job.preset for job in good_teachers], "ensemble": str(ensemble_file),
            "teachers": [asdict(job) for job in teachers], "students": [asdict(job) for job in students],
            "probes": [asdict(job) for job in probes + student_probes], "budget_seconds": args.budget_seconds}
    (work / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    rows = frontier_rows(plan)
    if not args.no_timing:
        add_timings(rows)
    write_frontier(plan, rows, out, where=f"on {os.uname().nodename}, the machine that trained "
                   "(re-time on the 2-core CPU with `frontier`)")
    log("frontier written")
    pack(plan, work, out, log)
    log(f"done in {log.elapsed:.0f}s")
    return 0


def refresh_frontier(args) -> int:
    """Re-time every row of a run's frontier.json here (onnxruntime, 2 threads) and write the table into `--into`."""
    recorded = json.loads((Path(args.results) / "frontier.json").read_text())
    load = os.getloadavg()[0]
    rows = add_timings(recorded["rows"])
    into = Path(args.into)
    write_frontier(recorded["plan"], rows, into, where=f"re-timed on {os.uname().nodename} (load {load:.1f} "
                   "at the start)")
    print((into / "frontier.md").read_text())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="teachers → ensemble → students → frontier, sized to a time budget")
    run.add_argument("--dataset", required=True, help="the dataset (FER2013 images.zip, or 'demo' for a test)")
    run.add_argument("--out", required=True, help="where the table, logs and students' weights go ($OUT)")
    run.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "gpu-pipeline"),
                     help="where the run directories go (large: teachers stay there)")
    run.add_argument("--budget-seconds", type=float, default=480, help="wall-clock budget of the whole run")
    run.add_argument("--reserve-seconds", type=float, default=45,
                     help="kept back for the ensemble, the frontier and packing")
    run.add_argument("--teachers", nargs="+", default=list(TEACHERS))
    run.add_argument("--students", nargs="+", default=list(STUDENTS))
    run.add_argument("--teacher-seeds", nargs="+", type=int, default=list(TEACHER_SEEDS))
    run.add_argument("--student-seeds", nargs="+", type=int, default=list(STUDENT_SEEDS))
    run.add_argument("--probe-epochs", type=int, default=2)
    run.add_argument("--max-epochs", type=int, default=100)
    run.add_argument("--no-timing", action="store_true", help="leave ms a face to the `frontier` command")
    frontier = commands.add_parser("frontier", help="re-time a run's frontier on this machine")
    frontier.add_argument("results", help="the folder $OUT came back to (read only)")
    frontier.add_argument("--into", default=str(Path(tempfile.gettempdir()) / "gpu-frontier"),
                          help="where the re-timed frontier.md and frontier.json go")
    presets = commands.add_parser("presets", help="parameters, FLOPs, file size and speed of presets")
    presets.add_argument("names", nargs="*", help="presets (default: all)")
    args = parser.parse_args()
    if args.command == "run":
        return run_pipeline(args)
    if args.command == "frontier":
        return refresh_frontier(args)
    from fer.model.presets import PRESETS

    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    print(presets_table(args.names or list(PRESETS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
