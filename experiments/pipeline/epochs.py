"""Steady-state epochs: `python -m imgexp experiment=seed_tutorial` against the tutorial's own script.

    python experiments/pipeline/epochs.py                      # 1,000 + 200 JPEGs of 300 px, 6 epochs, 2 rounds
    python experiments/pipeline/epochs.py --data /tmp/seed300  # keep / reuse the generated folder

Each round runs, one after the other on the same folder: the tutorial's script
(tutorial_script.py), imgexp with its defaults (precision auto, cache auto) and
imgexp in float32. Epoch 1 (tracing) is left out; medians are of epochs 2+.
The tutorial trains samples // batch_size = 31 batches (992 images) an epoch,
and under Keras 3 every second epoch runs out of data after one batch: those
cut-short epochs are left out, and its epoch times are scaled by 1,000 / 992 so
both sides are seconds per 1,000 training images. Epoch times include
validation on both sides (the tutorial: 192 images, imgexp: 200).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def make_folder(root: Path, train_per_class: int, val_per_class: int, side: int, seed: int = 0) -> Path:
    """Two classes told apart by a colour cast over smooth random texture, as JPEGs of side x side px."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("validation", val_per_class)):
        for label, name in enumerate(("cats", "dogs")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                small[..., label] //= 2
                Image.fromarray(small).resize((side, side), Image.BICUBIC).save(root / split / name / f"{i:05d}.jpg")
    return root


def env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def tutorial_epochs(data: Path, epochs: int, work: Path) -> list[float]:
    """Seconds per 1,000 training images of the tutorial's full epochs 2+."""
    out = work / "tutorial.json"
    subprocess.run([sys.executable, str(HERE / "tutorial_script.py"), str(data), str(epochs), str(out)],
                   check=True, env=env(), capture_output=True)
    result = json.loads(out.read_text())
    full = result["train_samples"] // result["batch_size"]
    images = full * result["batch_size"]
    return [e["seconds"] * result["train_samples"] / images for e in result["epochs"][1:] if e["batches"] == full]


def imgexp_epochs(data: Path, epochs: int, run_dir: Path, *overrides: str) -> tuple[list[float], dict]:
    """Seconds of epochs 2+ from the run's own history.csv (epoch_seconds: training + validation)."""
    subprocess.run([sys.executable, "-m", "imgexp", "experiment=seed_tutorial", f"dataset.path={data}",
                    f"trainer.epochs={epochs}", "trainer.verbose=0", f"hydra.run.dir={run_dir}", *overrides],
                   check=True, env=env(), capture_output=True)
    with (run_dir / "history.csv").open() as f:
        seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(f)]
    return seconds[1:], json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="keep / reuse the generated folder here")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[], metavar="'NAME: KEY=VALUE ...'",
                        help="another imgexp row with these overrides, e.g. 'float32 streamed: "
                             "trainer.precision=float32 dataset.cache=null' (repeatable)")
    args = parser.parse_args()
    variants = {"imgexp defaults": [], "imgexp float32": ["trainer.precision=float32"]}
    for variant in args.variant:
        name, _, overrides = variant.partition(":")
        variants[f"imgexp {name.strip()}"] = overrides.split()
    work = Path(tempfile.mkdtemp(prefix="imgexp-epochs-"))
    data = args.data or work / "images"
    if not (data / "train").is_dir():
        make_folder(data, 500, 100, side=300)

    rows: dict[str, list[list[float]]] = {"tutorial script": [], **{name: [] for name in variants}}
    metrics: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(args.rounds):  # interleaved
        rows["tutorial script"].append(tutorial_epochs(data, args.epochs, work))
        for i, (name, overrides) in enumerate(variants.items()):
            seconds, run_metrics = imgexp_epochs(data, args.epochs, work / f"variant{i}_{r}", *overrides)
            rows[name].append(seconds)
            metrics[name].append(run_metrics)

    base = statistics.median([s for run in rows["tutorial script"] for s in run])
    print(f"data: {data}; {args.epochs} epochs a run, {args.rounds} rounds; epochs 2+ only\n")
    print("| training | median s / epoch | max / median, per run | epoch seconds, per run | vs tutorial |")
    print("|---|---:|---|---|---:|")
    for name, runs in rows.items():
        median = statistics.median([s for run in runs for s in run])
        steadiness = ", ".join(f"{max(run) / statistics.median(run):.2f}" for run in runs)
        each = " / ".join(", ".join(f"{s:.1f}" for s in run) for run in runs)
        print(f"| {name} | {median:.2f} | {steadiness} | {each} | {base / median:.2f}x |")
    for name, runs in metrics.items():
        print(f"{name}: " + "; ".join(f"precision {m.get('precision')}, cache {m.get('cache')}, "
                                      f"val_accuracy {m['val_accuracy']:.4f}" for m in runs))
    print("\n" + json.dumps({"epoch_seconds": rows, "metrics": metrics}, indent=1))


if __name__ == "__main__":
    main()
