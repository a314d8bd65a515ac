"""How a training run spreads over devices and hosts, on Keras's and TensorFlow's own engines.

- Under `KERAS_BACKEND=jax`, Keras's distribution API (`keras.distribution.DataParallel`) splits each
  batch over every visible device (or the first `devices` of them). Several hosts join one run from
  the `KERAS_DISTRIBUTION_*` variables, with gloo for JAX's CPU collectives.
- Under TensorFlow, a `tf.distribute` strategy: MirroredStrategy over several GPUs, else the default.

The batch size a run is given is the global batch: each of N devices computes on batch/N images and
their gradients are averaged, so one step of N devices is one step of one device on the same batch,
and the learning rate stays as it is. Raising the batch with the devices (batch × k) calls for the
learning rate × k with a few warm-up epochs (the linear scaling rule, Goyal et al. 2017).
Keras loads only where a run is placed, so the Train page reads a Placement without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from fer.errors import FerError

JOB_ADDRESSES, NUM_PROCESSES, PROCESS_ID = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                                            "KERAS_DISTRIBUTION_PROCESS_ID")
# Hosts of one run are started by hand or by a scheduler, seconds to a minute apart.
JOIN_SECONDS = 60.0  # The default wait for the other processes; FER_JOIN_SECONDS changes it.
# JAX ends a process whose peer has sent no heartbeat for this long; its default (100 s) keeps a
# run that lost a host waiting.
HEARTBEAT_SECONDS = 30
_HELLO, _GO = b"fer-join ", b"go\n"


class PeerLost(FerError):
    """Another process of a several-host run stopped answering; the run can be resumed."""


@dataclass(frozen=True)
class Cluster:
    """Where the processes of a several-host JAX run meet, from the KERAS_DISTRIBUTION_* variables."""

    coordinator: str  # host:port of process 0, which JAX's coordination service listens on.
    processes: int
    process_id: int

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.coordinator.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Placement:
    """How a run computes: recorded in the model card and shown on the Train page."""

    backend: str  # Keras backend: jax, tensorflow or torch.
    strategy: str  # "DataParallel", "MirroredStrategy" or "one device".
    devices: int  # Devices that train, over all processes.
    processes: int = 1
    process_id: int = 0
    device_kind: str = "cpu"  # Platform of the devices: cpu, gpu, tpu.

    @property
    def is_chief(self) -> bool:
        """Process 0 writes the run directory; the others train alongside it."""
        return self.process_id == 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Placement | None:
        try:
            return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})
        except (TypeError, KeyError):
            return None

    def describe(self) -> str:
        """One line, e.g. 'DataParallel over 4 gpu devices in 2 processes under Keras's jax backend'."""
        backend = f"under Keras's {self.backend} backend"
        if self.strategy == "one device":
            return f"one {self.device_kind} device {backend}"
        processes = f" in {self.processes} processes" if self.processes > 1 else ""
        return f"{self.strategy} over {self.devices} {self.device_kind} devices{processes} {backend}"


@dataclass
class Distribution:
    """A run's placement and the scope its model is built and trained in."""

    placement: Placement
    engine: Any = None  # A keras.distribution.Distribution or a tf.distribute.Strategy; None: one device.

    def scope(self):
        return self.engine.scope() if self.engine is not None else contextlib.nullcontext()

    @property
    def tf_strategy(self):
        """The tf.distribute strategy the loop builds the model in (None under JAX or on one device)."""
        return self.engine if self.placement.backend == "tensorflow" else None

    def batches(self, batches):
        """This process's share of `batches` (a keras PyDataset of global batches) under several JAX devices."""
        if self.placement.backend != "jax" or self.engine is None:
            return batches
        if batches.batch_size < self.placement.devices:
            raise FerError(f"a batch of {batches.batch_size} images cannot be split over {self.placement.devices} "
                           f"devices: use a batch size of at least {self.placement.devices}")
        from fer.data.batches import ProcessShare

        return ProcessShare(batches, self.placement.devices, self.placement.processes, self.placement.process_id)


def cluster_from_env(environ=None) -> Cluster | None:
    """The several-host run the KERAS_DISTRIBUTION_* variables describe (None when unset), checked."""
    environ = os.environ if environ is None else environ
    given = [name for name in (JOB_ADDRESSES, NUM_PROCESSES, PROCESS_ID) if environ.get(name)]
    if not given:
        return None
    if len(given) < 3:
        missing = sorted({JOB_ADDRESSES, NUM_PROCESSES, PROCESS_ID} - set(given))
        raise FerError(f"a several-host run needs {JOB_ADDRESSES}, {NUM_PROCESSES} and {PROCESS_ID}; "
                       f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
    try:
        processes, process_id = int(environ[NUM_PROCESSES]), int(environ[PROCESS_ID])
    except ValueError:
        raise FerError(f"{NUM_PROCESSES} and {PROCESS_ID} are whole numbers, got "
                       f"'{environ[NUM_PROCESSES]}' and '{environ[PROCESS_ID]}'") from None
    if processes < 1 or not 0 <= process_id < processes:
        raise FerError(f"{PROCESS_ID} must be between 0 and {NUM_PROCESSES} − 1 ({processes - 1}), "
                       f"got {process_id}")
    addresses = [address.strip() for address in environ[JOB_ADDRESSES].split(",") if address.strip()]
    if len(addresses) not in (1, processes):
        raise FerError(f"{JOB_ADDRESSES} names {len(addresses)} addresses for {processes} processes: give "
                       "process 0's host:port alone, or one per process")
    host, _, port = addresses[0].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FerError(f"{JOB_ADDRESSES} starts with '{addresses[0]}', which is not host:port "
                       "(e.g. node1.example.org:1234)")
    return Cluster(addresses[0], processes, process_id)


def check_tf_config(environ=None) -> None:
    """Refuse TF_CONFIG (several TensorFlow hosts) with a sentence saying why and what works instead.

    Keras 3's `model.fit` fails on its first batch under TensorFlow's MultiWorkerMirroredStrategy (it
    averages the nested (images, labels) batch across workers to build the model, then each step's
    scalar metrics along an axis they do not have), so several hosts train under JAX instead."""
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        return
    import keras

    try:
        config = json.loads(text)
        workers = sum(len(hosts) for hosts in config["cluster"].values())
        task = f"{config['task']['type']} {int(config['task']['index'])}"
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FerError("TF_CONFIG is not a TensorFlow cluster description: it should be JSON like "
                       '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", '
                       '"index": 0}}') from None
    raise FerError(f"TF_CONFIG asks for {workers} TensorFlow hosts (this is {task}), but Keras "
                   f"{keras.__version__}'s model.fit fails under TensorFlow's MultiWorkerMirroredStrategy. "
                   "Train several hosts under KERAS_BACKEND=jax with the KERAS_DISTRIBUTION_* variables "
                   "instead (docs/scaling.md), and unset TF_CONFIG")


def prepare(devices: int | None = None, environ=None) -> Distribution:
    """Join the cluster the environment describes (if any) and choose the devices a run trains on.

    `devices` (None: all) is how many of this process's devices to use. Raises FerError with a
    sentence for a device count beyond what exists, a backend that cannot split a batch, a malformed
    cluster description, or a cluster that does not form within JOIN_SECONDS."""
    import keras

    if devices is not None and devices < 1:
        raise FerError(f"--devices must be at least 1, got {devices}")
    backend = keras.backend.backend()
    if backend == "jax":
        return _prepare_jax(devices, cluster_from_env(environ))
    if cluster_from_env(environ) is not None:
        raise FerError(f"the KERAS_DISTRIBUTION_* variables start a several-host run under JAX; this process "
                       f"runs Keras's {backend} backend: set KERAS_BACKEND=jax")
    if backend == "tensorflow":
        check_tf_config(environ)
        return _prepare_tensorflow(devices)
    if devices not in (None, 1):
        raise FerError(f"--devices {devices} needs KERAS_BACKEND=jax or tensorflow; Keras's {backend} backend "
                       "trains on one device here")
    return Distribution(Placement(backend, "one device", 1, device_kind=_torch_kind()))


def _prepare_jax(devices: int | None, cluster: Cluster | None) -> Distribution:
    import jax
    import keras

    if cluster is not None and cluster.processes > 1:
        join_cluster(cluster)
    local = jax.local_devices()
    if devices is not None and devices > len(local):
        raise FerError(f"--devices {devices}: this machine has {_count(len(local), local[0].platform)} "
                       f"that JAX can use ({', '.join(str(device) for device in local)})")
    per_process = devices or len(local)
    processes = jax.process_count()
    # Every process picks the same global list: the first `per_process` devices of each process.
    chosen = [device for process in range(processes)
              for device in [d for d in jax.devices() if d.process_index == process][:per_process]]
    placement = Placement("jax", "DataParallel" if len(chosen) > 1 else "one device", len(chosen), processes,
                          jax.process_index(), local[0].platform)
    if len(chosen) == 1:
        return Distribution(placement)
    engine = keras.distribution.DataParallel(
        devices=[f"{device.platform}:{device.id}" for device in chosen],
        # Several processes each feed their own share (Distribution.batches): Keras's auto-sharding wants tf.data.
        auto_shard_dataset=processes == 1)
    return Distribution(placement, engine)


def _prepare_tensorflow(devices: int | None) -> Distribution:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    kind = "gpu" if gpus else "cpu"
    available = len(gpus) or 1
    if devices is not None and devices > available:
        raise FerError(f"--devices {devices}: TensorFlow sees {_count(available, kind)} here"
                       + ("" if gpus else " (KERAS_BACKEND=jax with XLA_FLAGS=--xla_force_host_platform_device_count=N "
                                          "splits a CPU into N devices)"))
    chosen = devices or available
    if chosen == 1:
        return Distribution(Placement("tensorflow", "one device", 1, device_kind=kind))
    strategy = tf.distribute.MirroredStrategy([gpu.name for gpu in gpus[:chosen]])
    return Distribution(Placement("tensorflow", "MirroredStrategy", chosen, device_kind=kind), strategy)


def _torch_kind() -> str:
    try:
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _count(number: int, kind: str) -> str:
    return f"{number} {kind} device{'s' if number != 1 else ''}"


# --- Several hosts ---------------------------------------------------------------------------


def join_seconds() -> float:
    """How long processes wait for each other: FER_JOIN_SECONDS, or JOIN_SECONDS; FerError in words if unreadable."""
    given = os.environ.get("FER_JOIN_SECONDS", "").strip()
    try:
        seconds = float(given) if given else JOIN_SECONDS
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise FerError(f"FER_JOIN_SECONDS must be a positive number of seconds, not '{given}'")
    return seconds


def join_cluster(cluster: Cluster, seconds: float | None = None) -> None:
    """Meet the other processes within `seconds` (JOIN_SECONDS), then start JAX's distributed runtime.

    JAX ends a process with a native crash report, not an exception, when its peers do not come in
    time; so the processes first meet on the coordinator's port themselves (process 0 listens, the
    others call in), each failing with a sentence on time, and JAX starts only once all are there."""
    import jax

    seconds = join_seconds() if seconds is None else seconds
    if cluster.process_id == 0:
        _gather(cluster, seconds)
    else:
        _call_in(cluster, seconds)
    # CPU collectives across processes need gloo; set before JAX starts its backends.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(cluster.coordinator, cluster.processes, cluster.process_id,
                               initialization_timeout=max(int(seconds), 1),
                               heartbeat_timeout_seconds=HEARTBEAT_SECONDS)


def _gather(cluster: Cluster, seconds: float) -> None:
    """Process 0: wait until every other process has called in, then tell them all to go on."""
    host, port = cluster.host_port
    deadline = time.monotonic() + seconds
    try:
        listener = socket.create_server(("", port), reuse_port=False)
    except OSError as error:
        raise FerError(f"process 0 cannot listen on port {port} ({cluster.coordinator}): "
                       f"{error.strerror or error}; choose another port in {JOB_ADDRESSES}") from None
    arrived: dict[int, socket.socket] = {}
    with listener:
        while len(arrived) < cluster.processes - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                for connection in arrived.values():
                    connection.close()
                missing = sorted(set(range(1, cluster.processes)) - set(arrived))
                raise FerError(
                    f"process 0 waited {seconds:.0f} s on {cluster.coordinator} for the other processes of "
                    f"the run; process{'es' if len(missing) > 1 else ''} {', '.join(map(str, missing))} never "
                    f"called in. Start them with {PROCESS_ID} set (the same {JOB_ADDRESSES} and "
                    f"{NUM_PROCESSES}={cluster.processes}), and check that port {port} is open between the hosts")
            listener.settimeout(left)
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            process_id = _read_hello(connection, deadline)
            if process_id is None or not 0 < process_id < cluster.processes or process_id in arrived:
                connection.close()
                continue
            arrived[process_id] = connection
        for connection in arrived.values():
            with connection:
                connection.sendall(_GO)
                connection.settimeout(5)
                with contextlib.suppress(OSError):
                    connection.recv(1)  # Let the caller close first, so the port is free for JAX at once.


def _read_hello(connection: socket.socket, deadline: float) -> int | None:
    connection.settimeout(max(deadline - time.monotonic(), 0.1))
    try:
        line = connection.recv(64)
    except OSError:
        return None
    if not line.startswith(_HELLO):
        return None
    try:
        return int(line[len(_HELLO):].strip())
    except ValueError:
        return None


def _call_in(cluster: Cluster, seconds: float) -> None:
    """Process 1 and up: reach process 0 within `seconds` and wait for its word that all are there."""
    host, port = cluster.host_port
    deadline = time.monotonic() + seconds
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, max(deadline - time.monotonic(), 0.1))) \
                    as connection:
                connection.sendall(_HELLO + f"{cluster.process_id}\n".encode())
                connection.settimeout(max(deadline - time.monotonic(), 0.1))
                if connection.recv(len(_GO)) == _GO:
                    return
                last_error = "process 0 closed the connection before all processes arrived"
        except socket.gaierror:
            raise FerError(f"process {cluster.process_id} cannot find the host '{host}' of {JOB_ADDRESSES} "
                           f"({cluster.coordinator}): no such host name") from None
        except OSError as error:
            last_error = (error.strerror or str(error) or type(error).__name__).lower()
        time.sleep(0.5)
    raise FerError(f"process {cluster.process_id} could not join process 0 at {cluster.coordinator} within "
                   f"{seconds:.0f} s ({last_error}). Start process 0 there (the same {JOB_ADDRESSES}, "
                   f"{PROCESS_ID}=0) and check that port {port} is open between the hosts")


def peer_lost(placement: Placement, error: BaseException, epochs_done: int) -> PeerLost | None:
    """The sentence for `error` when it is a several-process run losing one of its processes, else None."""
    if placement.processes < 2 or isinstance(error, (FerError, KeyboardInterrupt)):
        return None
    text = str(error)
    markers = ("Gloo", "gloo", "Connection reset by peer", "Connection closed", "heartbeat", "UNAVAILABLE",
               "NCCL", "Socket closed", "Broken pipe", "DEADLINE_EXCEEDED")
    if not any(marker in text for marker in markers):
        return None
    return PeerLost(
        f"process {placement.process_id} of {placement.processes} lost contact with the others during training "
        f"(one of them stopped or its host went away); the run directory holds {epochs_done} finished "
        f"epoch{'s' if epochs_done != 1 else ''}. Start the same command on every host again to resume from there")


def worker_copy(run_path, scratch) -> None:
    """Copy into `scratch` what a process other than the chief reads to resume the run at `run_path`
    (config, state, metrics, the last checkpoint), so it trains into `scratch` and never writes `run_path`."""
    import shutil
    from pathlib import Path

    run_path, scratch = Path(run_path), Path(scratch)
    for name in ("config.json", "state.json", "metrics.jsonl", "checkpoints/last.keras"):
        if (run_path / name).is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_path / name, scratch / name)
