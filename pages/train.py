"""Train: configure a run, start it as a background job, watch it live, stop/resume, compare runs.

The run itself is a subprocess managed by fer.train.jobs, so it keeps going through reruns, page changes
and browser reloads; this page only reads the run directory's files.
"""

from pathlib import Path

import streamlit as st

from fer.train import jobs

from fer.train import reports as run_reports
from fer.errors import FerError
from fer.model.presets import PRESETS
from fer.model.augmentation import NO_AUGMENTATION, Augmentation
from fer.train.hardware import mixed_bfloat16_advice
from fer.train.loop import DTYPE_POLICIES, TrainConfig, read_metrics
from fer.charts.training import comparison_figure, curves_figure, learning_rate_figure
from pages import common

RUN_KEY = "train_run"  # The run directory shown in the live view when no job is running.
MESSAGE_KEY = "train_message"  # A Stop/Resume refusal, shown once by the live view.
REFRESH_SECONDS = 2.0
DEFAULTS = TrainConfig()
NO_VALIDATION = "(none)"
STATUS_ICONS = {"starting": "⏳", "running": "🏃", "stopping": "⏸️", "stopped": "⏹️", "finished": "✅", "failed": "❌"}
COMPARE_METRICS = ["val_accuracy", "val_loss", "accuracy", "loss"]


def training_form(dataset) -> None:
    """The run configuration; on Start, launch the job and show it."""
    splits = dataset.split_names
    with st.form("train_form"):
        data, model, optimisation = st.columns(3)
        train_split = data.selectbox("Train split", splits, index=splits.index("train") if "train" in splits else 0)
        validation_options = [*splits, NO_VALIDATION]
        validation_split = data.selectbox(
            "Validation split", validation_options,
            index=validation_options.index("validation") if "validation" in splits else len(splits))
        seed = data.number_input("Random seed", min_value=0, value=DEFAULTS.seed, step=1)
        preset = model.selectbox("Model preset", list(PRESETS), format_func=lambda name: f"{name}: "
                                 f"{PRESETS[name].description}")
        epochs = model.number_input("Epochs", min_value=1, max_value=500, value=DEFAULTS.epochs, step=1)
        batch_size = model.select_slider("Batch size", [16, 32, 64, 128, 256], value=DEFAULTS.batch_size)
        early_stopping = model.number_input("Early stopping patience (epochs, 0 = off)", min_value=0,
                                            value=DEFAULTS.early_stopping_patience, step=1)
        optimizer = optimisation.selectbox("Optimizer", ["adam", "adamw", "sgd"])
        learning_rate = optimisation.number_input("Learning rate", min_value=1e-6, max_value=1.0,
                                                  value=DEFAULTS.learning_rate, step=1e-4, format="%.5f")
        schedule = optimisation.selectbox("Learning-rate schedule", ["constant", "cosine", "plateau"],
                                          help="cosine: per-step decay after the warm-up; plateau: halve the "
                                               "rate when validation loss stalls for 3 epochs")
        warmup_epochs = optimisation.number_input("Warm-up epochs (cosine)", min_value=0, value=0, step=1)
        weight_decay = optimisation.number_input("Weight decay (adamw, sgd)", min_value=0.0, value=0.0,
                                                 step=1e-4, format="%.5f")

        left, right = st.columns(2)
        with left.expander("Augmentation", expanded=True):
            mode = st.radio("Augmentation", ["preset's own", "custom", "off"], horizontal=True,
                            label_visibility="collapsed",
                            help="The preset's own: what the architecture was designed with (see fer.model.presets).")
            flip = st.checkbox("Horizontal flip", value=True)
            rotation = st.slider("Rotation (± degrees)", 0, 45, 20)
            zoom = st.slider("Zoom (±)", 0.0, 0.5, 0.2, 0.05)
            shift = st.slider("Shift (± pixels)", 0, 8, 0)
            crop = st.select_slider("Random crop size (0 = none)", [0, 44, 40, 36], value=0)
            contrast = st.slider("Contrast (±)", 0.0, 0.5, 0.0, 0.05)
        with right.expander("Loss and model", expanded=True):
            class_weights = st.checkbox("Class weights (inverse class frequency)", value=DEFAULTS.class_weights)
            label_smoothing = st.slider("Label smoothing", 0.0, 0.3, DEFAULTS.label_smoothing, 0.05)
            dtype_policy = st.selectbox("Compute precision", DTYPE_POLICIES, help=mixed_bfloat16_advice())
            model_name = st.text_input("Register the finished model as", placeholder="the run's name",
                                       help="The best epoch's model is copied to models/ under this name.")
        submitted = st.form_submit_button("Start training", type="primary")

    if not submitted:
        return
    augmentation = {"preset's own": None, "off": NO_AUGMENTATION}.get(mode) or Augmentation(
        rotation_degrees=float(rotation), zoom=float(zoom), horizontal_flip=flip, shift_pixels=shift,
        crop_size=crop, contrast=float(contrast))
    try:
        config = TrainConfig(
            preset=preset, epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
            optimizer=optimizer, schedule=schedule, warmup_epochs=int(warmup_epochs),
            weight_decay=float(weight_decay), label_smoothing=float(label_smoothing), class_weights=class_weights,
            early_stopping_patience=int(early_stopping), seed=int(seed), augmentation=augmentation,
            dtype_policy=dtype_policy,
            train_split=train_split, validation_split="" if validation_split == NO_VALIDATION else validation_split,
        )
        run_dir = jobs.start_job(common.active_dataset_source(), config, register_as=model_name.strip() or None)
    except jobs.JobBusy as busy:
        st.warning(f"Not started: {busy}.")
        return
    except FerError as error:
        st.error(f"Not started: {error}")
        return
    st.session_state[RUN_KEY] = str(run_dir)
    st.rerun()


def live_view(run_dir: str, ticking: bool) -> None:
    """The shown run's status, progress, curves and controls; reruns every few seconds while it trains."""
    run = jobs.run_summary(run_dir)
    if ticking != run.active:
        # The run ended or (re)started: redraw the whole page (history, form) and stop or start ticking.
        # Before drawing anything, so no button is shown that the full rerun would replace under a click.
        st.rerun()
    st.markdown(f"**{run.name}** · {STATUS_ICONS.get(run.status, '')} {run.status} · "
                f"preset `{run.config.get('preset', '?')}` · dataset `{run.dataset or '?'}`")
    if run.active:
        show_progress(run)
    elif run.status == "failed":
        st.error(f"Training failed: {run.error}")
        st.code(jobs.log_tail(run.path, 25) or "(the log is empty)", language=None)
    elif run.status == "stopped":
        st.info(f"Stopped after {run.epochs_done} of {run.epochs} epochs. Resume continues from the last checkpoint.")
    elif run.status == "finished":
        best = f"{run.best_accuracy:.1%}" if run.best_accuracy is not None else "–"
        model = run.registered_model and Path(run.registered_model).stem
        st.success(f"Finished in {run_reports.format_duration(run.training_seconds)}: best validation accuracy {best} "
                   f"at epoch {run.best_epoch}." + (f" Registered as **{model}**: pick it in the sidebar, on "
                                                    "Evaluate and on Predict." if model else ""))
    controls(run)

    records = read_metrics(run.path)
    if records:
        st.caption(f"Last epoch · {run_reports.describe_epoch(records[-1], run.epochs)}")
    loss, accuracy, rate = st.columns(3)
    loss.plotly_chart(curves_figure(records, "loss"), key=f"loss-{run.name}")
    accuracy.plotly_chart(curves_figure(records, "accuracy"), key=f"accuracy-{run.name}")
    rate.plotly_chart(learning_rate_figure(records), key=f"lr-{run.name}")
    if run.status != "failed":
        with st.expander("Log"):
            st.code(jobs.log_tail(run.path, 40) or "(no log yet)", language=None)


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


def request_stop(run_dir: str) -> None:
    try:
        jobs.stop_job(run_dir)
    except FerError as error:
        st.session_state[MESSAGE_KEY] = str(error)


def request_resume(run_dir: str) -> None:
    try:
        jobs.resume_job(run_dir)
    except FerError as error:
        st.session_state[MESSAGE_KEY] = f"Not resumed: {error}"


def controls(run: jobs.RunSummary) -> None:
    # Callbacks, so the file is written before the rerun that draws the new status.
    if run.active:
        st.button("Stop", key=f"stop-{run.name}", disabled=run.status == "stopping", on_click=request_stop,
                  args=(str(run.path),),
                  help="Finish the current batch, save a checkpoint and stop; Resume goes on from there.")
    elif run.resumable:
        st.button("Resume", key=f"resume-{run.name}", type="primary", on_click=request_resume,
                  args=(str(run.path),), help="Continue this run from its last checkpoint.")
    if message := st.session_state.pop(MESSAGE_KEY, None):
        st.warning(message)


def shown_run(runs: list[jobs.RunSummary], busy: list[Path]) -> str | None:
    """This server's running job if any; else the run picked here (default: the newest)."""
    if busy:
        return str(busy[0])
    if not runs:
        return None
    names = [run.name for run in runs]
    chosen = st.session_state.get(RUN_KEY)
    current = next((i for i, run in enumerate(runs) if str(run.path) == chosen), 0)
    picked = runs[names.index(st.selectbox("Run", names, index=current))]
    st.session_state[RUN_KEY] = str(picked.path)
    return str(picked.path)


def history(runs: list[jobs.RunSummary]) -> None:
    st.subheader("Run history")
    table = run_reports.runs_table(runs)
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(table, hide_index=True, column_config={
        "best val acc": percent, "final train acc": percent, "final val acc": percent,
        "final val loss": st.column_config.NumberColumn(format="%.4f"),
        "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    })
    with_metrics = [run.name for run in runs if run.final]
    if len(with_metrics) < 2:
        return
    picked, metric = st.columns([3, 1])
    names = picked.multiselect("Compare runs", with_metrics, default=with_metrics[:4])
    chosen_metric = metric.selectbox("Metric", COMPARE_METRICS)
    paths = {run.name: run.path for run in runs}
    st.plotly_chart(comparison_figure({name: read_metrics(paths[name]) for name in names}, chosen_metric))


st.title("🏋️ Train")
st.caption("Training runs in the background: it keeps going if you switch pages or reload the browser.")
runs = jobs.list_runs()
busy = jobs.active_runs()  # Jobs holding this server's slot (a CLI run elsewhere does not block Start).

st.subheader("Current run")
shown = shown_run(runs, busy)
if shown is None:
    st.info("No training runs yet: set one up below and press **Start training**.")
else:
    active = jobs.run_summary(shown).active
    st.fragment(run_every=REFRESH_SECONDS if active else None)(live_view)(shown, active)

with st.expander("New run", expanded=not busy):
    if busy:
        st.info(f"**{busy[0].name}** is training. One run at a time: stop it or wait before starting another.")
    dataset = common.active_dataset()
    if dataset is not None:
        total = sum(len(split) for split in dataset.splits.values())
        st.markdown(f"Dataset: `{common.active_dataset_source()}` · {total:,} images in "
                    + ", ".join(f"{name} {len(split):,}" for name, split in dataset.splits.items())
                    + " (choose another in the sidebar)")
        training_form(dataset)
if runs:
    history(runs)
