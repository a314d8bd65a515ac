"""Training throughput on 1 and on N JAX devices of this machine, measured side by side in one process.

On a CPU, `--xla_force_host_platform_device_count=N` splits it into N JAX devices (set here before JAX
loads). Rounds alternate 1 device, N devices, 1, N, ..., so a machine whose load changes during the run
slows both alike; each run trains `fer.train.loop.train` (the same path as `fer train --devices`) for
`--epochs` epochs and its first epoch (compiling) is left out. The load average before and after is
printed with the table, since other work on the machine takes CPU from both.

    .venv/bin/python bench/bench_devices.py                      # tiny preset, 2 devices, 2 rounds
    .venv/bin/python bench/bench_devices.py --preset seed --images 4096 --rounds 3
    .venv/bin/python bench/bench_devices.py --devices 8          # on a machine with 8 GPUs: 1 vs 8

Needs JAX (pip install -r requirements-jax.txt).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--devices", type=int, default=2, help="the N to compare with 1 device")
    parser.add_argument("--images", type=int, default=2048, help="synthetic training faces")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first (compiling) is not timed")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    os.environ.setdefault("KERAS_BACKEND", "jax")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:  # Only CPUs split; a GPU machine has its devices.
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={args.devices}".strip()

    import jax

    from fer.data.datasets import dataset_from_arrays
    from fer.data.synthetic import make_faces
    from fer.train.config import TrainConfig
    from fer.train.hardware import training_device
    from fer.train.loop import train

    per_class = -(-args.images // 7)
    dataset = dataset_from_arrays({"train": make_faces(per_class, seed=1), "validation": make_faces(8, seed=2)})
    config = TrainConfig(preset=args.preset, epochs=args.epochs, batch_size=args.batch_size)
    load_before = os.getloadavg()
    measured: dict[int, list[float]] = {1: [], args.devices: []}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            for devices in measured:
                result = train(dataset, config, Path(folder) / f"{round_number}-{devices}", devices=devices,
                               resume=False, evaluate_splits=False)
                rates = [epoch["images_per_second"] for epoch in result.history[1:]]
                measured[devices].append(sum(rates) / len(rates))
                print(f"round {round_number + 1}, {devices} device(s): {measured[devices][-1]:,.0f} images/s",
                      flush=True)
    load_after = os.getloadavg()
    print(f"\n{training_device('jax')}; JAX {jax.__version__}, {jax.devices()[0].platform}; preset {args.preset}, "
          f"{len(dataset.split('train').labels):,} images, global batch {args.batch_size}, {args.rounds} rounds; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    print("| devices | images/s (mean of rounds) | each round |")
    print("|---|---|---|")
    for devices, rates in measured.items():
        print(f"| {devices} | {sum(rates) / len(rates):,.0f} | {', '.join(f'{rate:,.0f}' for rate in rates)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
