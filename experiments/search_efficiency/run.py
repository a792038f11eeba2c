"""What pruning and continuing Hyperband save: the same search budget, five ways, on two datasets.

    python experiments/search_efficiency/run.py [--seeds 3] [--out experiments/search_efficiency/results.json]

Each search runs as a user would run it (`python -m imgexp tuner=... search_space=...` in a fresh
process), on the digits and on a generated folder, with tuner seeds 1..N:

    (a) random                      tuner=random tuner.max_trials=12 trainer.epochs=9
    (b) random + median pruning     (a) + pruner=median (its defaults)
    (c) random + ASHA               (a) + pruner=asha (its defaults)
    (d) hyperband, from scratch     tuner=hyperband tuner.max_epochs=9 tuner.factor=3 tuner.continue_promoted=false
    (e) hyperband, continuing       (d) with tuner.continue_promoted=true (the default)

The space includes hopeless learning rates (up to 1.0), so pruning has something to find. Reported per
search: epochs trained (each trial's own epochs; a continued trial's parent epochs are not counted twice),
wall time of the command, best val_accuracy. Rounds are interleaved: for each seed, every variant on
each dataset before the next seed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

SPACE = {"optimizer.lr": {"min": 1e-4, "max": 1.0, "sampling": "log"},
         "model.dense_units": [32, 64, 128]}
TINY = ["dataset.image_size=[16,16]", "model.filters=[8,16]", "trainer.verbose=0",
        "tuner.max_consecutive_failed_trials=100"]  # a diverged trial (lr near 1) must not end the search
RANDOM = ["tuner=random", "tuner.max_trials=12", "trainer.epochs=9"]
RANDOM_18 = ["tuner=random", "tuner.max_trials=12", "trainer.epochs=18"]
HYPERBAND = ["tuner=hyperband", "tuner.max_epochs=9", "tuner.factor=3"]
HYPERBAND_2 = ["tuner=hyperband", "tuner.max_epochs=8", "tuner.factor=2"]
VARIANTS = {
    "a random": RANDOM,
    "b random + median": [*RANDOM, "pruner=median"],
    "c random + asha": [*RANDOM, "pruner=asha"],
    "d hyperband from scratch": [*HYPERBAND, "tuner.continue_promoted=false"],
    "e hyperband continuing": HYPERBAND,
    # Extra rows (--variants): KerasTuner's brackets with factor 2, where more of the epochs are promotions.
    "d2 hyperband factor 2 from scratch": [*HYPERBAND_2, "tuner.continue_promoted=false"],
    "e2 hyperband factor 2 continuing": HYPERBAND_2,
    "b4 random + median, warmup 4": [*RANDOM, "pruner=median", "pruner.warmup_epochs=4"],
    # Session 5: the same with 18 epochs per trial, where a stopped trial leaves more unspent.
    "a18 random, 18 epochs": RANDOM_18,
    "b18 random + median, 18 epochs": [*RANDOM_18, "pruner=median"],
    "c18 random + asha, 18 epochs": [*RANDOM_18, "pruner=asha"],
}
DEFAULT_VARIANTS = ["a", "b", "c", "d", "e"]


def make_folder(root: Path, per_class: int, size: int = 24, seed: int = 0) -> Path:
    """Three classes of noisy stripes (horizontal, vertical, diagonal), hard enough not to saturate at once."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("validation", per_class // 3)):
        for label, name in enumerate(("horizontal", "vertical", "diagonal")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = rng.integers(0, 200, (size, size, 3)).astype(np.uint8)
                stripes = np.zeros((size, size), bool)
                offset = rng.integers(0, 4)
                if label == 0:
                    stripes[offset::4] = True
                elif label == 1:
                    stripes[:, offset::4] = True
                else:
                    stripes[(np.add.outer(np.arange(size), np.arange(size)) + offset) % 4 == 0] = True
                image[stripes] = np.minimum(255, image[stripes].astype(int) + 90).astype(np.uint8)
                Image.fromarray(image).save(root / split / name / f"{i:04d}.jpg", quality=90)
    return root


def search_figures(search_dir: Path) -> dict:
    """Epochs trained by all trials (failed ones too: a diverged trial trained until its loss was NaN)."""
    epochs, best, statuses = 0, 0.0, []
    for trial in sorted(search_dir.glob("trial_*")):
        history = trial / "history.csv"
        rows = len(history.read_text().splitlines()) - 1 if history.is_file() else 0
        if not (trial / "metrics.json").is_file():
            epochs += rows
            statuses.append("failed")
            continue
        metrics = json.loads((trial / "metrics.json").read_text())
        epochs += metrics.get("epochs_trained", rows)
        best = max(best, metrics["val_accuracy"])
        statuses.append(metrics.get("status", "finished"))
    return {"epochs": epochs, "best": best, "trials": len(statuses), "pruned": statuses.count("pruned"),
            "failed": statuses.count("failed")}


def run_search(workdir: Path, dataset: list[str], variant: list[str], seed: int, name: str) -> dict:
    command = [sys.executable, "-m", "imgexp", "--config-dir", str(workdir / "conf"), "search_space=efficiency",
               *dataset, *TINY, *variant, f"tuner.seed={seed}", f"search.dir={workdir / 'searches'}",
               f"search.name={name}", f"hydra.run.dir={workdir / 'launch' / name}"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    return {**search_figures(workdir / "searches" / name), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="tuner seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="letters of the variants to run")
    args = parser.parse_args()
    variants = {name: v for name, v in VARIANTS.items() if name.split()[0] in args.variants}
    workdir = Path(tempfile.mkdtemp(prefix="imgexp-efficiency-"))
    (workdir / "conf" / "search_space").mkdir(parents=True)
    (workdir / "conf" / "search_space" / "efficiency.yaml").write_text(yaml.safe_dump(SPACE))
    folder = make_folder(workdir / "stripes", per_class=120)
    datasets = {"digits": ["dataset=digits"], "stripes": ["dataset=folder", f"dataset.path={folder}"]}
    results: list[dict] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for data_name, dataset in datasets.items():
            for variant_name, variant in variants.items():
                name = f"{data_name}-{variant_name.split()[0]}-{seed}"
                row = {"dataset": data_name, "variant": variant_name, "seed": seed,
                       **run_search(workdir, dataset, variant, seed, name)}
                results.append(row)
                print(json.dumps(row), flush=True)
                args.out.write_text(json.dumps(results, indent=1) + "\n")
    print_summary(results)


def print_summary(results: list[dict]) -> None:
    print("\n| dataset | variant | epochs (median, each seed) | wall s (median) | best val_accuracy (median, each seed) | pruned trials |")
    print("|---|---|---|---:|---|---|")
    for data_name in dict.fromkeys(r["dataset"] for r in results):
        for variant in VARIANTS:
            rows = [r for r in results if r["dataset"] == data_name and r["variant"] == variant]
            if not rows:
                continue
            epochs = [r["epochs"] for r in rows]
            best = [r["best"] for r in rows]
            print(f"| {data_name} | {variant} | {statistics.median(epochs):g} ({', '.join(map(str, epochs))}) | "
                  f"{statistics.median(r['seconds'] for r in rows):.0f} | {statistics.median(best):.4f} "
                  f"({', '.join(f'{b:.4f}' for b in best)}) | {', '.join(str(r['pruned']) for r in rows)} |")


if __name__ == "__main__":
    main()
