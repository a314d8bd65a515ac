"""Train: configure a run, queue it as a background job, watch it live, stop/resume, compare runs.

The run itself is a subprocess managed by fer.train.jobs, so it keeps going through reruns, page changes
and browser reloads; this page only reads the run directory's files. A user sees and controls only
their own runs (pages.common.current_user()); a run waits in the server's queue until a slot is free.
"""

import os
from pathlib import Path

import streamlit as st

from fer.charts.training import comparison_figure, curves_figure, learning_rate_figure
from fer.errors import FerError
from fer.model.augmentation import Augmentation
from fer.model.registry import list_models
from fer.train import jobs, tracking
from fer.train.job_queue import max_jobs, max_jobs_per_user
from fer.train import reports as run_reports
from fer.train.config import (AUGMENTATION_MODES, CUSTOM_AUGMENTATION, Setting, TrainConfig, applied_augmentation,
                              augmentation_for, settings_in)
from fer.train.distribution import Placement
from fer.train.hardware import mixed_bfloat16_advice
from fer.train.run_dir import RunDir
from pages import common
from widgets import start_from
from widgets.augmentation_preview import show_augmentation_preview

RUN_KEY = "train_run"  # The run directory shown in the live view when no job is running.
MESSAGE_KEY = "train_message"  # A Stop/Resume refusal, shown once by the live view.
REFRESH_SECONDS = 2.0
DEFAULTS = TrainConfig()
NO_VALIDATION = "(none)"
NO_TEACHER = "(none: learn from the labels only)"
STATUS_ICONS = {"queued": ":material/schedule:", "starting": ":material/hourglass_top:",
                "running": ":material/directions_run:", "stopping": ":material/pause:", "stopped": ":material/stop:",
                "finished": ":material/check_circle:", "failed": ":material/error:"}
COMPARE_METRICS = ["val_accuracy", "val_loss", "accuracy", "loss"]
EXTRA_HELP = {"dtype_policy": lambda: "\n\n" + mixed_bfloat16_advice()}  # Help that depends on this machine.


def described(choices: dict[str, str]) -> str:
    """A help text listing each choice with its description."""
    return "\n".join(f"- **{name}**: {description}" for name, description in choices.items())


def training_form(dataset) -> None:
    """The run configuration, one widget per declared setting (fer.train.config.SETTINGS); on Start,
    launch the job and show it.

    Not an st.form: the augmentation sliders follow the preset and the augmentation mode as they change.
    """
    parent = start_from.start_from_input(common.current_user())
    defaults = start_from.defaults_for(parent)
    decided = start_from.DECIDED_BY_PARENT if parent else ()  # Fields the parent fixes: no widget for them.
    data, model, optimisation = st.columns(3)
    values = split_inputs(dataset.split_names, data)
    for group, column in (("data", data), ("model", model), ("optimisation", optimisation)):
        values |= setting_inputs(group, column, defaults, decided)
    left, right = st.columns(2)
    with left.expander("Augmentation", expanded=True):
        if parent:
            st.caption("A fine-tuned model keeps its parent's augmentation (its layers are inside the model).")
            custom = applied_augmentation(defaults.preset, None)
        else:
            mode = st.radio("Augmentation", list(AUGMENTATION_MODES), horizontal=True, label_visibility="collapsed",
                            help=described(AUGMENTATION_MODES))
            custom = augmentation_sliders(mode, values["preset"])
            values["augmentation"] = augmentation_for(mode, custom)
        show_augmentation_preview(dataset, custom, values["train_split"])
    with right.expander("Loss and model", expanded=True):
        values |= setting_inputs("loss", st, defaults, decided)
        if parent:
            start_from.describe_parent(parent, defaults)
            values |= {"parent": str(parent), "preset": defaults.preset, **setting_inputs("finetune", st, defaults)}
        else:
            values |= distillation_inputs()
        model_name = st.text_input("Register the finished model as", placeholder="leave empty to decide later",
                                   help="With a name, the best epoch's model is registered under it when the run "
                                        "finishes. Without, nothing piles up in the model picker: register the run "
                                        "later, if it is worth it, on the Models page.")
        mlflow = mlflow_switch()
    if st.button("Start training", type="primary"):
        start_training(values, model_name.strip() or None, mlflow)


def split_inputs(splits: list[str], column) -> dict:
    """The train and validation splits (TrainConfig's train_split and validation_split)."""
    train_split = column.selectbox("Train split", splits, index=splits.index("train") if "train" in splits else 0)
    options = [*splits, NO_VALIDATION]
    validation = column.selectbox("Validation split", options,
                                  index=options.index("validation") if "validation" in splits else len(splits))
    return {"train_split": train_split, "validation_split": "" if validation == NO_VALIDATION else validation}


def setting_inputs(group: str, container, defaults: TrainConfig = DEFAULTS, skipped=()) -> dict:
    """One widget per declared setting of `group` (but those `skipped`), starting at `defaults`: {field: value}."""
    return {setting.field: setting_input(setting, container, defaults) for setting in settings_in(group)
            if setting.field not in skipped}


def setting_input(setting: Setting, container, defaults: TrainConfig = DEFAULTS):
    """The widget a Setting declares, and its value as the TrainConfig field's type."""
    default = getattr(defaults, setting.field)
    kind = type(default)
    bounds = {name: kind(value) for name, value in (("min_value", setting.minimum), ("max_value", setting.maximum),
                                                       ("step", setting.step)) if value is not None}
    if setting.choices is not None:
        names = list(setting.choices)
        help_text = described(setting.choices) + EXTRA_HELP.get(setting.field, lambda: "")()
        return container.selectbox(setting.label, names, index=names.index(default), help=help_text,
                                   format_func=lambda name: f"{name}: {setting.choices[name]}"
                                   if setting.described_choices else name)
    if setting.options is not None:
        return kind(container.select_slider(setting.label, list(setting.options), value=default))
    if kind is bool:
        return container.checkbox(setting.label, value=default)
    if setting.slider:
        return kind(container.slider(setting.label, value=default, **bounds))
    return kind(container.number_input(setting.label, value=default, format=setting.number_format, **bounds))


def mlflow_switch() -> bool:
    """The "Log to MLflow" switch: on and fixed when MLFLOW_TRACKING_URI is set, off and fixed without MLflow."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return st.toggle("Log to MLflow", value=True, disabled=True,
                         help=f"MLFLOW_TRACKING_URI is set: every run logs to {uri}.")
    if not tracking.mlflow_installed():
        return st.toggle("Log to MLflow", value=False, disabled=True,
                         help="MLflow is not installed: pip install -r requirements-tracking.txt.")
    return st.toggle("Log to MLflow", value=False,
                     help="Log the parameters, each epoch's metrics, the model card and the model to MLflow's "
                          "local store in FER_STUDIO_HOME/mlruns (MLFLOW_TRACKING_URI names a server instead). "
                          "Every run also writes TensorBoard files: tensorboard --logdir FER_STUDIO_HOME/runs.")


def start_training(values: dict, model_name: str | None, mlflow: bool = False) -> None:
    """Start a job with the form's values; a refusal is shown in words."""
    try:
        run_dir = jobs.start_job(common.active_dataset_source(), TrainConfig(**values), register=model_name is not None,
                                 register_as=model_name, user=common.current_user(), mlflow=mlflow)
    except jobs.JobBusy as busy:
        st.warning(f"Not started: {busy}.")
        return
    except FerError as error:
        st.error(f"Not started: {error}")
        return
    st.session_state[RUN_KEY] = str(run_dir)
    st.rerun()


def distillation_inputs() -> dict:
    """A registered model to distil from (fer.train.distill), with the distillation settings when one is chosen."""
    models = {str(model.path): model.card.label for model in list_models(common.current_user())}
    teacher = st.selectbox("Teacher (knowledge distillation)", [NO_TEACHER, *models],
                           format_func=lambda path: models.get(path, path),
                           help="Train on this model's softened probabilities as well as the labels.")
    if teacher == NO_TEACHER:
        return {"teacher": None}
    return {"teacher": teacher, **setting_inputs("distillation", st)}


def augmentation_sliders(mode: str, preset: str) -> Augmentation:
    """The augmentation settings: editable for "custom"; otherwise disabled, showing what the run will apply."""
    editable = mode == "custom"
    shown = applied_augmentation(preset, augmentation_for(mode, CUSTOM_AUGMENTATION))  # Custom starts as the seed's.
    # Keys per mode and preset: a disabled slider shows that preset's values, and custom keeps the user's own.
    key = "custom" if editable else f"{mode}-{preset}"
    settings = dict(disabled=not editable)
    augmentation = Augmentation(
        horizontal_flip=st.checkbox("Horizontal flip", value=shown.horizontal_flip, key=f"flip-{key}", **settings),
        rotation_degrees=float(st.slider("Rotation (± degrees)", 0, 45, int(shown.rotation_degrees),
                                         key=f"rotation-{key}", **settings)),
        zoom=float(st.slider("Zoom (±)", 0.0, 0.5, float(shown.zoom), 0.05, key=f"zoom-{key}", **settings)),
        shift_pixels=st.slider("Shift (± pixels)", 0, 8, shown.shift_pixels, key=f"shift-{key}", **settings),
        crop_size=st.select_slider("Random crop size (0 = none)", [0, 44, 40, 36], value=shown.crop_size,
                                   key=f"crop-{key}", **settings),
        contrast=float(st.slider("Contrast (±)", 0.0, 0.5, float(shown.contrast), 0.05, key=f"contrast-{key}",
                                 **settings)),
        erasing=float(st.slider("Random erasing (chance)", 0.0, 1.0, float(shown.erasing), 0.05,
                                key=f"erasing-{key}", **settings)),
    )
    if not editable:
        st.caption(f"{mode.capitalize()}: {AUGMENTATION_MODES[mode]}. Choose custom to change these.")
    return augmentation


def live_view(run_dir: str, ticking: bool) -> None:
    """The shown run's status, progress, curves and controls; reruns every few seconds while it trains."""
    run = jobs.run_summary(run_dir)
    if ticking != run.pending:
        # The run ended or (re)started: redraw the whole page (history, form) and stop or start ticking.
        # Before drawing anything, so no button is shown that the full rerun would replace under a click.
        st.rerun()
    st.markdown(f"**{run.name}** · {STATUS_ICONS.get(run.status, '')} {run.status} · "
                f"preset `{run.config.preset if run.config else '?'}` · dataset `{run.dataset or '?'}`")
    placement = Placement.from_dict(RunDir(run.path).read_state().placement)
    if placement is not None:
        st.caption(f"Trains on {placement.describe()}.")
    if run.status == "queued":
        st.info(f"Queue position: **{run.queue_position}**. Waiting for a free slot: this server trains "
                f"{plural(max_jobs(), 'run')} at a time, and {plural(max_jobs_per_user(), 'run')} per user. "
                "It starts on its own, with this page open or not.")
    elif run.active:
        show_progress(run)
    elif run.status == "failed":
        st.error(f"Training failed: {run.error}")
        st.code(RunDir(run.path).log_tail(25) or "(the log is empty)", language=None)
    elif run.status == "stopped":
        st.info(f"Stopped after {run.epochs_done} of {run.epochs} epochs. Resume continues from the last checkpoint.")
    elif run.status == "finished":
        best = f"{run.best_accuracy:.1%}" if run.best_accuracy is not None else "–"
        model = run.registered_model and Path(run.registered_model).stem
        registered = (f" Registered as **{model}**: pick it in the sidebar, on Evaluate and on Predict."
                      if model else "")
        st.success(f"Finished in {run_reports.format_duration(run.training_seconds)}: best validation accuracy {best} "
                   f"{run_reports.describe_best_epoch(run.best_epoch)}.{registered}")
        if model and st.button(f"Open {model} on Predict", icon=":material/photo_camera:", key=f"predict-{run.name}",
                               type="primary",
                               on_click=choose_model, args=(model,), help="Photos and the webcam, read by this model"):
            st.switch_page("pages/predict.py")
    controls(run)

    folder = RunDir(run.path)
    records = folder.read_metrics()
    if records:
        st.caption(f"Last epoch · {run_reports.describe_epoch(records[-1], run.epochs)}")
    loss, accuracy, rate = st.columns(3)
    loss.plotly_chart(curves_figure(records, "loss"), key=f"loss-{run.name}")
    accuracy.plotly_chart(curves_figure(records, "accuracy", start=folder.start_accuracy(), best_epoch=run.best_epoch),
                          key=f"accuracy-{run.name}")
    rate.plotly_chart(learning_rate_figure(records), key=f"lr-{run.name}")
    if run.status != "failed":
        with st.expander("Log"):
            st.code(folder.log_tail(40) or "(no log yet)", language=None)


def show_progress(run: jobs.RunSummary) -> None:
    progress = jobs.read_progress(run.path, run)
    if run.status == "starting" or progress is None:
        st.progress(0.0, text="Starting: loading TensorFlow, the dataset and the model…")
        return
    speed = f"{progress.images_per_second:,.0f} images/s" if progress.images_per_second else "measuring speed"
    text = (f"Epoch {progress.epoch}/{progress.epochs} · batch {progress.batch}/{progress.batches} · {speed} · "
            f"ETA {run_reports.format_duration(progress.eta_seconds)}")
    if run.status == "stopping":
        text = "Stopping after the current batch, then saving a checkpoint… · " + text
    st.progress(progress.fraction, text=text)


def choose_model(name: str) -> None:
    """Make the registered model `name` the one every page uses (a callback: before the sidebar is drawn)."""
    st.session_state[common.MODEL_KEY] = name


def request_stop(run_dir: str) -> None:
    try:
        jobs.stop_job(run_dir, user=common.current_user())
    except FerError as error:
        st.session_state[MESSAGE_KEY] = str(error)


def request_resume(run_dir: str) -> None:
    try:
        jobs.resume_job(run_dir, user=common.current_user())
    except FerError as error:
        st.session_state[MESSAGE_KEY] = f"Not resumed: {error}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def controls(run: jobs.RunSummary) -> None:
    # Callbacks, so the file is written before the rerun that draws the new status.
    if run.status == "queued":
        st.button("Leave the queue", key=f"dequeue-{run.name}", on_click=request_stop, args=(str(run.path),),
                  help="Take this run out of the queue; Resume queues it again.")
    elif run.active:
        st.button("Stop", key=f"stop-{run.name}", disabled=run.status == "stopping", on_click=request_stop,
                  args=(str(run.path),),
                  help="Finish the current batch, save a checkpoint and stop; Resume goes on from there.")
    elif run.resumable:
        st.button("Resume", key=f"resume-{run.name}", type="primary", on_click=request_resume,
                  args=(str(run.path),), help="Continue this run from its last checkpoint.")
    if message := st.session_state.pop(MESSAGE_KEY, None):
        st.warning(message)


def shown_run(runs: list[jobs.RunSummary], busy: list[Path]) -> str | None:
    """The run last started here while it waits or trains; else the user's running job, else their first
    queued run; else the run picked here (default: the newest)."""
    chosen = st.session_state.get(RUN_KEY)
    if any(str(run.path) == chosen and run.pending for run in runs):
        return chosen
    if busy:
        return str(busy[0])
    queued = [run for run in runs if run.status == "queued"]
    if queued:
        return str(min(queued, key=lambda run: run.queue_position or 0).path)
    if not runs:
        return None
    names = [run.name for run in runs]
    current = next((i for i, run in enumerate(runs) if str(run.path) == chosen), 0)
    picked = runs[names.index(st.selectbox("Run", names, index=current))]
    st.session_state[RUN_KEY] = str(picked.path)
    return str(picked.path)


def history(runs: list[jobs.RunSummary]) -> None:
    st.subheader("Run history")
    ticking = any(run.pending for run in runs)
    st.fragment(run_every=REFRESH_SECONDS if ticking else None)(runs_table)(ticking)
    with_metrics = [run.name for run in runs if run.final]
    if len(with_metrics) < 2:
        return
    picked, metric = st.columns([3, 1])
    names = picked.multiselect("Compare runs", with_metrics, default=with_metrics[:4])
    chosen_metric = metric.selectbox("Metric", COMPARE_METRICS)
    paths = {run.name: run.path for run in runs}
    st.plotly_chart(comparison_figure({name: RunDir(paths[name]).read_metrics() for name in names}, chosen_metric))


def runs_table(ticking: bool) -> None:
    """Every run, read afresh on each tick while one trains, so a running run's row follows it."""
    runs = jobs.list_runs(common.current_user())
    if ticking and not any(run.pending for run in runs):
        st.rerun()  # The last run ended: redraw the page (comparison, form) and stop ticking.
    percent = st.column_config.NumberColumn(format="%.1f%%")
    st.dataframe(run_reports.runs_table(runs), hide_index=True, placeholder="", column_config={
        **{column: percent for column in run_reports.PERCENT_COLUMNS},
        "final val loss": st.column_config.NumberColumn(format="%.4f"),
        "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        # Widths that hold each header in full: Streamlit sizes a column to its values and cuts the header.
        "run": st.column_config.TextColumn("run", width="medium"),
        "learning rate": st.column_config.NumberColumn("learning rate", format="%.2g", width="medium"),
        "augmentation": st.column_config.TextColumn("augmentation", width="large"),
        "class weights": st.column_config.CheckboxColumn("class weights", width="medium"),
        "dataset": st.column_config.TextColumn("dataset", width="medium"),
        "model": st.column_config.TextColumn("model", width="medium",
                                             help="The registered model's name; empty when it was not registered"),
    })


common.use_app_shell()
st.title(":material/model_training: Train")
st.caption("Training runs in the background: it keeps going if you switch pages or reload the browser.")
user = common.current_user()
busy = jobs.active_runs(user)  # This user's jobs holding a slot; looking also starts waiting runs in free slots.
runs = jobs.list_runs(user)

st.subheader("Current run")
shown = shown_run(runs, busy)
if shown is None:
    st.info("No training runs yet: set one up below and press **Start training**.")
else:
    pending = jobs.run_summary(shown).pending
    st.fragment(run_every=REFRESH_SECONDS if pending else None)(live_view)(shown, pending)

with st.expander("New run", expanded=not busy):
    if busy:
        st.info(f"**{busy[0].name}** is training. A new run waits in the queue and starts when a slot frees.")
    dataset = common.active_dataset()
    if dataset is not None:
        total = sum(len(split) for split in dataset.splits.values())
        st.markdown(f"Dataset: `{common.active_dataset_source()}` · {total:,} images in "
                    + ", ".join(f"{name} {len(split):,}" for name, split in dataset.splits.items())
                    + " (choose another in the sidebar)")
        training_form(dataset)
if runs:
    history(runs)
