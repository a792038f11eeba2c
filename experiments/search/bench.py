"""What a search costs beyond training its trials, in one run.

    python experiments/search/bench.py                     # 30 trials in one process, about 2 minutes
    python experiments/search/bench.py --recycle-every 10  # the same in 3 worker processes

A random search of 30 tiny trials (1 epoch of a small CNN on 600 generated
32x32 JPEGs, `dataset.cache=memory`) runs as `python -m imgexp tuner=random ...`
would, from this process (with --recycle-every, in workers it starts). Reported:
- fixed overhead per trial: trial wall time minus time inside model.fit
  (median over all trials; goal < 1 s),
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
    parser.add_argument("--recycle-every", type=int, default=0,
                        help="search.recycle_every: trials per worker process (0: all in this process)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgexp-search-bench-"))
    data = make_folder(work / "images", per_class=200)
    (work / "conf" / "search_space").mkdir(parents=True)
    (work / "conf" / "search_space" / "bench.yaml").write_text(yaml.safe_dump(SPACE))

    sys.argv = ["imgexp", "--config-dir", str(work / "conf"), "tuner=random", "search_space=bench",
                f"tuner.max_trials={args.trials}", "tuner.max_consecutive_failed_trials=100",
                f"search.dir={work / 'search'}", f"hydra.run.dir={work / 'hydra'}",
                "dataset=folder", f"dataset.path={data}", "dataset.image_size=[32,32]", "dataset.cache=memory",
                "augmentation=basic", "model.filters=[8,16]", "trainer.epochs=1", "trainer.verbose=0",
                f"search.recycle_every={args.recycle_every}"]
    from imgexp.app import main as imgexp_main

    started = time.perf_counter()
    imgexp_main()
    total = time.perf_counter() - started

    search_dir = work / "search" / "random-bench"
    log = [json.loads(line) for line in (search_dir / "trials.jsonl").read_text().splitlines()]
    overheads, fits = [], []
    for entry in log:
        metrics_file = search_dir / f"trial_{entry['trial_id']}" / "metrics.json"
        if metrics_file.exists():
            fit = json.loads(metrics_file.read_text())["fit_seconds"]
            fits.append(fit)
            overheads.append(entry["seconds"] - fit)
    rss = {i + 1: entry["rss_mb"] for i, entry in enumerate(log)}
    processes = list(dict.fromkeys(entry["pid"] for entry in log))
    decodes_in_first_10 = max(e["decode_passes"] for e in log[:10] if e["pid"] == log[0]["pid"])

    print(f"\n{len(log)} trials in {total:.0f} s ({len(overheads)} finished) in {len(processes)} process(es), "
          f"search.recycle_every={args.recycle_every}")
    print("\n| measure | value | goal |\n|---|---:|---|")
    print(f"| trial wall time, median | {statistics.median(e['seconds'] for e in log):.2f} s | |")
    print(f"| time inside model.fit, median | {statistics.median(fits):.2f} s | |")
    print(f"| fixed overhead per trial (wall - fit), median | {statistics.median(overheads):.2f} s | < 1 s |")
    print(f"| fixed overhead per trial, max | {max(overheads):.2f} s | |")
    print(f"| image decode passes in the first 10 trials | {decodes_in_first_10} | 1 |")
    for n in (1, 10, 30):
        if n in rss:
            print(f"| RSS after trial {n} | {rss[n]:.0f} MB | |")
    if 10 in rss and 30 in rss:
        print(f"| RSS growth, trial 10 -> 30 | {100 * (rss[30] / rss[10] - 1):+.1f}% "
              f"({(rss[30] - rss[10]) / 20:.1f} MB per trial) | within 10% |")
    print("\nRSS per trial (MB):", [round(r) for r in rss.values()])


if __name__ == "__main__":
    main()
