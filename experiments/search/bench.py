"""What a search costs beyond training its trials, in one run.

    python experiments/search/bench.py                     # 30 trials in one process, about 1 minute
    python experiments/search/bench.py --data digits --trials 8   # the digits, as issue #21 measured
    python experiments/search/bench.py --recycle-every 10  # the same in 3 worker processes

A random search of tiny trials (1 epoch of a small CNN on 600 generated 32x32 JPEGs with
`dataset.cache=memory` and basic augmentation, or on scikit-learn's digits) runs as
`python -m imgexp tuner=random ...` would, from this process (with --recycle-every, in workers it
starts). Reported:
- the fixed cost per trial: trial wall time minus time inside model.fit (median; goal < 0.3 s),
  also measured from one trial's end to the next (everything a trial costs, KerasTuner's part too),
- where it goes: the median of each phase of metrics.json's `phase_seconds` (absent before they
  were recorded), and what is left (KerasTuner's bookkeeping, the run's records),
- how many times the images were decoded in the first 10 trials (goal: once),
- the process RSS after trials 1, 10 and 30 (goal: within 10% between 10 and 30).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPACE = {"optimizer.lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
         "model.dropout": {"min": 0.1, "max": 0.5, "sampling": "linear"},
         "model.dense_units": [16, 32, 64]}


def make_folder(root: Path, per_class: int, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(("a", "b", "c")):
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            image[..., label] = 255 - image[..., label] // 4
            Image.fromarray(image).save(root / "train" / name / f"{i}.jpg")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--data", choices=("jpeg", "digits"), default="jpeg")
    parser.add_argument("--recycle-every", type=int, default=0,
                        help="search.recycle_every: trials per worker process (0: all in this process)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgexp-search-bench-"))
    if args.data == "jpeg":
        data = ["dataset=folder", f"dataset.path={make_folder(work / 'images', per_class=200)}",
                "dataset.image_size=[32,32]", "dataset.cache=memory", "augmentation=basic"]
    else:
        data = ["dataset=digits", "dataset.image_size=[32,32]"]
    (work / "conf" / "search_space").mkdir(parents=True)
    (work / "conf" / "search_space" / "bench.yaml").write_text(yaml.safe_dump(SPACE))

    sys.argv = ["imgexp", "--config-dir", str(work / "conf"), "tuner=random", "search_space=bench",
                f"tuner.max_trials={args.trials}", "tuner.max_consecutive_failed_trials=100",
                f"search.dir={work / 'search'}", f"hydra.run.dir={work / 'hydra'}",
                *data, "model.filters=[8,16]", "trainer.epochs=1", "trainer.verbose=0",
                f"search.recycle_every={args.recycle_every}"]
    from imgexp.app import main as imgexp_main

    started = time.perf_counter()
    imgexp_main()
    total = time.perf_counter() - started

    search_dir = work / "search" / "random-bench"
    log = [json.loads(line) for line in (search_dir / "trials.jsonl").read_text().splitlines()]
    results = summarize(search_dir, log)
    processes = list(dict.fromkeys(entry["pid"] for entry in log))
    print(f"\n{len(log)} trials in {total:.0f} s ({results['finished']} finished) in {len(processes)} process(es), "
          f"search.recycle_every={args.recycle_every}, data={args.data}")
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "total_seconds": total, "data": args.data}, indent=1))


def summarize(search_dir: Path, log: list[dict]) -> dict:
    """Medians over the finished trials: wall, fit, fixed cost (two ways), each phase; decodes and RSS."""
    walls, fits, phases = [], [], []
    for entry in log:
        metrics_file = search_dir / f"trial_{entry['trial_id']}" / "metrics.json"
        if metrics_file.exists():
            metrics = json.loads(metrics_file.read_text())
            walls.append(entry["seconds"])
            fits.append(metrics["fit_seconds"])
            phases.append(metrics.get("phase_seconds"))
    # From one trial's end to the next: KerasTuner's create_trial and saves between trials included.
    ends = [entry["time"] for entry in log]
    gaps = [b - a - fit for a, b, fit in zip(ends, ends[1:], fits[1:])]
    median = statistics.median
    breakdown = {}
    if phases and all(phases):
        for name in dict.fromkeys(k for p in phases for k in p):
            breakdown[name] = median(p.get(name, 0.0) for p in phases)
        breakdown["train outside model.fit"] = median(p.get("train", 0.0) - f for p, f in zip(phases, fits))
        breakdown.pop("train", None)
        breakdown["the rest (KerasTuner, records)"] = median(
            w - sum(p.values()) for w, p in zip(walls, phases))
    first_pid = log[0]["pid"]
    return {"finished": len(walls), "wall": median(walls), "fit": median(fits),
            "fixed": median(w - f for w, f in zip(walls, fits)), "fixed_max": max(w - f for w, f in zip(walls, fits)),
            "fixed_end_to_end": median(gaps) if gaps else None, "breakdown": breakdown,
            "decodes_in_first_10": max(e["decode_passes"] for e in log[:10] if e["pid"] == first_pid),
            "rss": {i + 1: entry["rss_mb"] for i, entry in enumerate(log)}}


def print_table(r: dict) -> None:
    print("\n| measure | value | goal |\n|---|---:|---|")
    print(f"| trial wall time, median | {r['wall']:.3f} s | |")
    print(f"| time inside model.fit, median | {r['fit']:.3f} s | |")
    print(f"| fixed cost per trial (wall - fit), median | {r['fixed']:.3f} s | < 0.3 s |")
    print(f"| fixed cost per trial, max | {r['fixed_max']:.3f} s | |")
    if r["fixed_end_to_end"] is not None:
        print(f"| fixed cost per trial, one trial's end to the next, median | {r['fixed_end_to_end']:.3f} s | |")
    for name, seconds in r["breakdown"].items():
        print(f"| . {name}, median | {seconds:.3f} s | |")
    print(f"| image decode passes in the first 10 trials | {r['decodes_in_first_10']} | 1 |")
    rss = r["rss"]
    for n in (1, 10, 30):
        if n in rss:
            print(f"| RSS after trial {n} | {rss[n]:.0f} MB | |")
    if 10 in rss and 30 in rss:
        print(f"| RSS growth, trial 10 -> 30 | {100 * (rss[30] / rss[10] - 1):+.1f}% "
              f"({(rss[30] - rss[10]) / 20:.1f} MB per trial) | within 10% |")
    print("\nRSS per trial (MB):", [round(v) for v in rss.values()])


if __name__ == "__main__":
    main()
