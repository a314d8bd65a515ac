"""fer.train.distribution: devices and hosts under Keras's distribution API, and the sentences for bad input.

The JAX tests run `python -m fer train` (or a short script) in fresh processes: XLA's device count and
JAX's distributed runtime are fixed when JAX starts. They skip with a reason where JAX is not installed
(pip install -r requirements-jax.txt, which requirements-test.txt includes).
"""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.dataset_files import write_faces
from fer.errors import FerError
from fer.train import distribution
from fer.data.batches import ProcessShare
from fer.train.distribution import Cluster, Placement, cluster_from_env, check_tf_config
from fer.train.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[3]
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed (pip install -r requirements-jax.txt)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def jax_env(home: Path, **extra) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KERAS_DISTRIBUTION_", "TF_CONFIG", "MLFLOW_"))}
    return {**env, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "FER_STUDIO_HOME": str(home),
            "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


# --- Reading the environment ---------------------------------------------------------------------


def test_the_keras_distribution_variables_describe_a_cluster():
    env = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "node1:1234,node2:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
           "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    assert cluster_from_env(env) == Cluster("node1:1234", 2, 1)
    assert cluster_from_env({}) is None
    assert Cluster("[::1]:99", 2, 0).host_port == ("::1", 99)


@pytest.mark.parametrize("env, sentence", [
    ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"},
     "KERAS_DISTRIBUTION_JOB_ADDRESSES and KERAS_DISTRIBUTION_PROCESS_ID are not set"),
    ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "node1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "two",
      "KERAS_DISTRIBUTION_PROCESS_ID": "0"}, "are whole numbers, got 'two' and '0'"),
    ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "node1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
      "KERAS_DISTRIBUTION_PROCESS_ID": "2"}, "must be between 0 and KERAS_DISTRIBUTION_NUM_PROCESSES − 1 (1), got 2"),
    ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b:1,c:1", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
      "KERAS_DISTRIBUTION_PROCESS_ID": "0"}, "names 3 addresses for 2 processes"),
    ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "node1", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
      "KERAS_DISTRIBUTION_PROCESS_ID": "0"}, "starts with 'node1', which is not host:port"),
])
def test_a_malformed_cluster_gets_a_sentence(env, sentence):
    with pytest.raises(FerError, match=re.escape(sentence)):
        cluster_from_env(env)


def test_tf_config_is_refused_with_the_reason_and_what_works_instead():
    two_workers = json.dumps({"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
                              "task": {"type": "worker", "index": 1}})
    with pytest.raises(FerError, match=r"TF_CONFIG asks for 2 TensorFlow hosts \(this is worker 1\).*"
                                       r"MultiWorkerMirroredStrategy.*KERAS_BACKEND=jax"):
        check_tf_config({"TF_CONFIG": two_workers})
    with pytest.raises(FerError, match="TF_CONFIG is not a TensorFlow cluster description"):
        check_tf_config({"TF_CONFIG": "{not json"})
    check_tf_config({})  # Unset: nothing to refuse.
    with pytest.raises(FerError, match="TF_CONFIG asks for 2"):
        distribution.prepare(environ={"TF_CONFIG": two_workers})  # The test process runs TensorFlow's backend.


def test_more_devices_than_tensorflow_sees_gets_a_sentence():
    with pytest.raises(FerError, match=r"--devices 2: TensorFlow sees 1 cpu device here"):
        distribution.prepare(2, environ={})
    with pytest.raises(FerError, match="--devices must be at least 1, got 0"):
        distribution.prepare(0, environ={})
    assert distribution.prepare(1, environ={}).placement.strategy == "one device"


# --- Meeting on time --------------------------------------------------------------------------------


def test_a_process_that_cannot_reach_process_0_says_so_on_time():
    port = free_port()  # Closed: nobody listens.
    started = time.monotonic()
    with pytest.raises(FerError, match=rf"process 1 could not join process 0 at 127.0.0.1:{port} within 1 s "
                                       r"\(connection refused\)"):
        distribution._call_in(Cluster(f"127.0.0.1:{port}", 2, 1), seconds=1)
    assert time.monotonic() - started < 5
    with pytest.raises(FerError, match="cannot find the host 'no-such-host.invalid'"):
        distribution._call_in(Cluster("no-such-host.invalid:1234", 2, 1), seconds=5)


def test_process_0_waits_a_set_time_for_the_others_and_names_who_never_came():
    started = time.monotonic()
    with pytest.raises(FerError, match=r"process 0 waited 1 s on 127.0.0.1:\d+ for the other processes of the run; "
                                       r"processes 1, 2 never called in"):
        distribution._gather(Cluster(f"127.0.0.1:{free_port()}", 3, 0), seconds=1)
    assert time.monotonic() - started < 5


def test_a_peer_lost_mid_run_is_put_in_words_only_for_several_processes():
    two = Placement("jax", "DataParallel", 2, processes=2, process_id=0)
    error = ValueError("UNKNOWN: Gloo AllGather failed: [pair.cc:538] Read error [127.0.0.1]:26539: "
                       "Connection reset by peer")
    lost = distribution.peer_lost(two, error, epochs_done=3)
    assert str(lost).startswith("process 0 of 2 lost contact with the others during training")
    assert "holds 3 finished epochs. Start the same command on every host again to resume" in str(lost)
    assert distribution.peer_lost(Placement("jax", "DataParallel", 2), error, 3) is None
    assert distribution.peer_lost(two, ValueError("shapes do not match"), 3) is None


# --- Sharing batches --------------------------------------------------------------------------------


class Batches:
    """A stand-in for fer.data.batches.ArrayBatches: batches of row numbers."""

    batch_size = 5

    def __init__(self, rows: int):
        self.rows, self.epochs = np.arange(rows), 0

    def __len__(self):
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, index):
        rows = self.rows[index * self.batch_size:(index + 1) * self.batch_size]
        return rows[:, None], rows

    def on_epoch_end(self):
        self.epochs += 1


def test_each_process_gets_its_rows_of_every_batch_cut_to_a_multiple_of_the_devices():
    batches = Batches(12)  # Batches of 5, 5 and 2 rows.
    first = ProcessShare(batches, devices=4, processes=2, process_id=0)
    second = ProcessShare(batches, devices=4, processes=2, process_id=1)
    assert len(first) == 3
    assert first[0][1].tolist() == [0, 1] and second[0][1].tolist() == [2, 3]  # Row 4 dropped: 5 → 4.
    assert first[1][1].tolist() == [5, 6] and second[1][1].tolist() == [7, 8]
    with pytest.raises(FerError, match="a batch of 2 images cannot be split over 4 devices"):
        first[2]
    first.on_epoch_end()
    assert batches.epochs == 1


# --- Under JAX: every device, then several hosts ---------------------------------------------------------

TWO_DEVICES_SCRIPT = textwrap.dedent("""
    import json, sys
    from fer.data.datasets import dataset_from_arrays
    from fer.data.synthetic import make_faces
    from fer.errors import FerError
    from fer.train.config import TrainConfig
    from fer.train.loop import train
    dataset = dataset_from_arrays({"train": make_faces(12, seed=1), "validation": make_faces(4, seed=2)})
    runs = {}
    for devices in (1, 2):
        result = train(dataset, TrainConfig(preset="tiny", epochs=2, batch_size=16), f"{sys.argv[1]}/{devices}",
                       devices=devices, evaluate_splits=False)
        runs[devices] = {"history": result.history, "placement": result.card.placement}
    try:
        train(dataset, TrainConfig(preset="tiny", epochs=1), f"{sys.argv[1]}/3", devices=3)
    except FerError as error:
        runs["error"] = str(error)
    print("RESULT " + json.dumps(runs))
""")


@needs_jax
@pytest.mark.slow
def test_two_jax_devices_give_the_loss_curve_of_one(tmp_path):
    """Same global batch, seeds and data: DataParallel only splits each batch's arithmetic over the devices
    and averages their gradients, so the curves differ by float32 rounding in a different summation order,
    far below the 1e-3 relative tolerance (they agreed to all 5 recorded decimals here)."""
    env = jax_env(tmp_path / "home", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES_SCRIPT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.split("RESULT ", 1)[1])
    one, two = runs["1"], runs["2"]
    assert one["placement"]["strategy"] == "one device" and one["placement"]["devices"] == 1
    assert two["placement"] == {"backend": "jax", "strategy": "DataParallel", "devices": 2, "processes": 1,
                                "process_id": 0, "device_kind": "cpu"}
    for key in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose([epoch[key] for epoch in two["history"]],
                                   [epoch[key] for epoch in one["history"]], rtol=1e-3)
    assert runs["error"] == "--devices 3: this machine has 2 cpu devices that JAX can use (cpu:0, cpu:1)"


def start_process(process_id: int, port: int, data: Path, run: Path, home: Path, epochs: int, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "fer", "train", "--dataset", str(data), "--preset", "tiny", "--epochs", str(epochs),
         "--batch-size", "8", "--out", str(run)],
        env=jax_env(home, KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}", KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                    KERAS_DISTRIBUTION_PROCESS_ID=str(process_id), **env),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_jax
@pytest.mark.slow
@pytest.mark.timeout(1800)  # Four processes start JAX and TensorFlow: minutes on a loaded 2-core machine.
def test_two_jax_processes_train_one_run_that_survives_a_dead_worker(tmp_path):
    """Two processes on loopback: process 0 alone writes the run; killing process 1 mid-run gives process 0 a
    sentence, and the same two commands resume the run from its last finished epoch."""
    data = tmp_path / "faces"
    write_faces(data / "train", per_class=4, seed=1)
    write_faces(data / "validation", per_class=2, seed=2)
    run, home = tmp_path / "run", tmp_path / "home"
    port = free_port()
    chief = start_process(0, port, data, run, home, epochs=200)
    worker = start_process(1, port, data, run, home, epochs=200)
    deadline = time.monotonic() + 600
    while not RunDir(run).read_metrics() and chief.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    out, err = chief.communicate(timeout=300)
    assert chief.returncode == 2, err[-3000:]
    assert "training on: DataParallel over 2 cpu devices in 2 processes under Keras's jax backend" in out
    assert "error: process 0 of 2 lost contact with the others during training" in err
    assert "Check failure" not in err  # Not JAX's native crash report.
    state = RunDir(run).read_state()
    done = state.epochs_done
    assert state.status == "failed" and "Start the same command on every host again" in state.error
    assert 1 <= done < 200

    port = free_port()
    chief = start_process(0, port, data, run, home, epochs=done + 1)
    worker = start_process(1, port, data, run, home, epochs=done + 1)
    (out, err), (worker_out, worker_err) = chief.communicate(timeout=900), worker.communicate(timeout=900)
    assert chief.returncode == 0, err[-3000:]
    assert worker.returncode == 0, worker_err[-3000:]
    assert f"run directory: {run} (process 0 writes it)" in worker_out and "process 1 of 2: done" in worker_out
    state = RunDir(run).read_state()
    assert state.status == "finished" and state.epochs_done == done + 1 and state.pid == chief.pid
    assert [record["epoch"] for record in RunDir(run).read_metrics()] == list(range(1, done + 2))
    card = json.loads((run / "best.json").read_text())
    assert card["placement"]["processes"] == 2 and card["placement"]["devices"] == 2


@needs_jax
def test_a_jax_process_whose_peers_never_come_fails_on_time_with_a_sentence(tmp_path):
    """Neither process meets the other (each has its own port): both fail after FER_JOIN_SECONDS, with a sentence
    and exit status 2, not with JAX's native abort after its five-minute default."""
    data = tmp_path / "faces"
    write_faces(data / "train", per_class=1, seed=1)
    started = time.monotonic()
    alone_chief = start_process(0, free_port(), data, tmp_path / "a", tmp_path / "home", 1, FER_JOIN_SECONDS="3")
    alone_worker = start_process(1, free_port(), data, tmp_path / "b", tmp_path / "home", 1, FER_JOIN_SECONDS="3")
    chief_err, worker_err = alone_chief.communicate(timeout=300)[1], alone_worker.communicate(timeout=300)[1]
    assert alone_chief.returncode == 2 and alone_worker.returncode == 2, chief_err[-2000:] + worker_err[-2000:]
    assert "error: process 0 waited 3 s on 127.0.0.1:" in chief_err and "process 1 never called in" in chief_err
    assert "error: process 1 could not join process 0 at 127.0.0.1:" in worker_err
    assert "within 3 s (connection refused)" in worker_err
    assert time.monotonic() - started < 280
    assert not (tmp_path / "a").exists()  # Nothing written before the run could start.


def test_the_join_wait_is_read_when_processes_meet_and_refused_in_words_when_unreadable(monkeypatch):
    monkeypatch.delenv("FER_JOIN_SECONDS", raising=False)
    assert distribution.join_seconds() == distribution.JOIN_SECONDS
    monkeypatch.setenv("FER_JOIN_SECONDS", "2.5")
    assert distribution.join_seconds() == 2.5
    for bad in ("soon", "0", "-3", "inf"):
        monkeypatch.setenv("FER_JOIN_SECONDS", bad)
        with pytest.raises(FerError, match=f"FER_JOIN_SECONDS must be a positive number of seconds, not '{bad}'"):
            distribution.join_seconds()
