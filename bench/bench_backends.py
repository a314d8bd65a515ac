"""Which Keras backend and dtype policy train a preset fastest on this machine? Images/s per cell.

Each cell (backend × preset × dtype policy) runs in its own Python process, because Keras picks its
backend once, at import. A cell builds the preset with `fer.model.presets.build_model` (its own
augmentation, as `fer train` does), compiles it with Adam and categorical cross-entropy, fits
`--warmup` untimed batches of random 48×48 images (tracing, first allocations), then times
`model.fit` over `--batches` more. Cells run one after another, so run this on an otherwise idle
machine: a training run alongside takes CPU from whichever cell happens to share it. A cell slower
than `--timeout` seconds is reported as such rather than waited for.

    .venv/bin/python bench/bench_backends.py                  # tensorflow and torch, seed and vgg40
    .venv/bin/python bench/bench_backends.py --backends torch --presets vgg40 --policies float32
    .venv/bin/python bench/bench_backends.py --json

The torch backend needs `pip install -r requirements-train.txt`; a backend that does not import
is reported as not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from fer.train.hardware import cpu_bf16_units


def measure(preset: str, policy: str, batches: int, warmup: int, batch_size: int) -> dict:
    """Images/s of `model.fit` for one cell, in this process's backend."""
    import importlib

    import keras
    import numpy as np

    from fer.labels import CLASSES, IMAGE_SIZE
    from fer.model.presets import build_model

    keras.utils.set_random_seed(0)
    model = build_model(preset, dtype_policy=policy)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=((warmup + batches) * batch_size, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")
    labels = np.eye(len(CLASSES), dtype="float32")[rng.integers(0, len(CLASSES), size=len(images))]
    split = warmup * batch_size
    model.fit(images[:split], labels[:split], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    start = time.perf_counter()
    model.fit(images[split:], labels[split:], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    backend = keras.backend.backend()  # Also the name of the module that implements it.
    return {"images_per_second": round(batches * batch_size / seconds, 1), "seconds": round(seconds, 1),
            "parameters": model.count_params(), "version": importlib.import_module(backend).__version__}


def run_cell(backend: str, preset: str, policy: str, args) -> dict:
    """One cell in a fresh process under `backend`; its result, or why there is none."""
    command = [sys.executable, __file__, "--cell", preset, policy, "--batches", str(args.batches),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cell = {"backend": backend, "preset": preset, "policy": policy}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**cell, "error": f"over {args.timeout:.0f} s"}
    if done.returncode != 0:
        missing = "ModuleNotFoundError" in done.stderr or "No module named" in done.stderr
        return {**cell, "error": "not installed" if missing else done.stderr.strip().splitlines()[-1][:120]}
    return {**cell, **json.loads(done.stdout.strip().splitlines()[-1])}


def table(results: list[dict], backends: list[str]) -> str:
    """Markdown: a row per preset and policy, a column per backend."""
    versions = {r["backend"]: r["version"] for r in results if "version" in r}
    header = "| preset | dtype policy | " + " | ".join(f"{b} {versions.get(b, '')}".strip() for b in backends) + " |"
    lines = [header, "|---|---|" + "---|" * len(backends)]
    rows = sorted({(r["preset"], r["policy"]) for r in results}, key=lambda row: (row[0], row[1] != "float32"))
    for preset, policy in rows:
        cells = []
        for backend in backends:
            result = next(r for r in results if (r["backend"], r["preset"], r["policy"]) == (backend, preset, policy))
            cells.append(result.get("error") or f"{result['images_per_second']:.0f} img/s")
        lines.append(f"| {preset} | {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="tensorflow,torch", help="comma-separated Keras backends")
    parser.add_argument("--presets", default="seed,vgg40")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per cell")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches per cell first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=240, help="seconds a cell may take in all")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cell", nargs=2, metavar=("PRESET", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batches < 1 or args.warmup < 1:
        parser.error("--batches and --warmup must be at least 1")
    if args.cell:
        print(json.dumps(measure(*args.cell, args.batches, args.warmup, args.batch_size)))
        return 0

    backends = args.backends.split(",")
    cells = [(b, p, d) for p in args.presets.split(",") for d in args.policies.split(",") for b in backends]
    started, load = time.time(), os.getloadavg()[0]
    results = []
    for backend, preset, policy in cells:
        results.append(run_cell(backend, preset, policy, args))
        if not args.json:
            print(f"  {backend:>10} {preset:>6} {policy:>14}: "
                  f"{results[-1].get('error') or str(results[-1]['images_per_second']) + ' img/s'}", flush=True)
    if args.json:
        print(json.dumps({"results": results, "batches": args.batches, "batch_size": args.batch_size,
                          "load_average_before": round(load, 2), "cpus": os.cpu_count(),
                          "bf16_units": cpu_bf16_units()}, indent=2))
        return 0
    print()
    print(table(results, backends))
    print(f"\n{args.batches} timed batches of {args.batch_size} per cell after {args.warmup} warm-up; "
          f"{os.cpu_count()} CPUs (bf16 units: {', '.join(cpu_bf16_units()) or 'none'}); "
          f"1-min load average {load:.2f} before; {time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
