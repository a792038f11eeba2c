"""One search, three ways, side by side: one process vs KerasTuner's chief + N local workers.

    python experiments/distributed/bench.py                 # 8 trials, workers 1 and 2, a few minutes
    python experiments/distributed/bench.py --trials 12 --workers 1 2 4

Each way runs `python -m imgexp tuner=random ...` in a fresh process on the
bundled digits (8 trials of a small CNN, 3 epochs each, `trainer.deterministic`)
with the same tuner seed. Reported per way: wall time, its ratio to the
one-process search, how the trials split over workers, and whether every
trial got the same values and score as in one process.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

SPACE = {"optimizer.lr": {"min": 1e-3, "max": 1e-2, "sampling": "log"}, "model.dropout": [0.1, 0.3, 0.5]}
TRIAL = ["model.filters=[16,32]", "model.dense_units=64", "trainer.epochs=3", "trainer.verbose=0",
         "trainer.deterministic=true", "trainer.early_stopping_patience=0"]


def run_search(work: Path, name: str, trials: int, extra: list[str]) -> float:
    command = [sys.executable, "-m", "imgexp", "--config-dir", str(work / "conf"), "tuner=random",
               "search_space=bench", f"tuner.max_trials={trials}", f"search.dir={work / name}",
               f"hydra.run.dir={work / (name + '-run')}", *TRIAL, *extra]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    return seconds


def trials_of(search_dir: Path) -> dict[str, tuple[dict, float]]:
    found = {}
    for trial in sorted(search_dir.glob("trial_*/trial.json")):
        saved = json.loads(trial.read_text())
        found[saved["trial_id"]] = (saved["hyperparameters"]["values"], saved["score"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgexp-distributed-bench-"))
    (work / "conf" / "search_space").mkdir(parents=True)
    (work / "conf" / "search_space" / "bench.yaml").write_text(yaml.safe_dump(SPACE))

    print(f"{args.trials} trials, {os.cpu_count()} CPUs, results in {work}")
    baseline = run_search(work, "single", args.trials, [])
    reference = trials_of(work / "single" / "random-bench")
    print(f"{'one process':>16}: {baseline:6.1f} s  1.00x")
    for n in args.workers:
        name = f"workers{n}"
        seconds = run_search(work, name, args.trials, [f"search.distributed.local_workers={n}"])
        search_dir = work / name / "random-bench"
        split = Counter(json.loads(line)["tuner_id"] for line in (search_dir / "trials.jsonl").read_text().splitlines())
        same = trials_of(search_dir) == reference
        print(f"{f'chief + {n} worker' + ('s' if n > 1 else ''):>16}: {seconds:6.1f} s  {baseline / seconds:.2f}x"
              f"  trials per worker {dict(sorted(split.items()))}  same trials and scores as one process: {same}")


if __name__ == "__main__":
    main()
