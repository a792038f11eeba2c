"""A frozen-backbone head search with and without stored features, side by side, rounds interleaved.

    python experiments/transfer/bench.py [--trials 4] [--epochs 5] [--rounds 2]   # ~10 minutes on 2 cores

A random search of the head (`optimizer.lr`, `model.dropout`) on a frozen MobileNetV2 at 128 px
(`model.weights=null`: it runs offline; the features are a random backbone's, which costs the same),
`augmentation=none`, on 1,000 + 200 generated JPEGs, as `python -m imgexp tuner=random ...` runs it,
once with `trainer.feature_cache=auto` (the default: features computed once, shared by the trials) and
once with `off` (the backbone runs on every image in every epoch), the same tuner seed. Reported: the
search's wall time (median of the rounds, each round's figure), the ratio, and how far each trial's
val_accuracy is from its twin's (same trial, same hyperparameters).
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from bench import cpu, make_folder  # noqa: E402  (the deploy benchmark's generated photos and CPU line)

SPACE = {"optimizer.lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
         "model.dropout": {"min": 0.1, "max": 0.5, "sampling": "linear"}}


def search(root: Path, data: Path, name: str, feature_cache: str, trials: int, epochs: int,
           extra: list[str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of the whole search command, and each trial's val_accuracy."""
    conf = root / "conf" / "search_space"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "head.yaml").write_text(yaml.safe_dump(SPACE))
    out = root / name
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "imgexp", "--config-dir", str(root / "conf"), "tuner=random",
                             "search_space=head", f"tuner.max_trials={trials}", "tuner.seed=1",
                             "model=mobilenetv2", "model.weights=null", "model.trainable=false", "augmentation=none",
                             "dataset=folder", f"dataset.path={data}", "dataset.image_size=[128,128]",
                             f"trainer.epochs={epochs}", "trainer.early_stopping_patience=0", "trainer.verbose=0",
                             f"trainer.feature_cache={feature_cache}", f"search.dir={out}",
                             f"hydra.run.dir={root / 'hydra' / name}", *extra],
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"search {name} failed:\n{result.stderr[-3000:]}")
    scores = {t.name: json.loads((t / "metrics.json").read_text())["val_accuracy"]
              for t in sorted(next(out.iterdir()).glob("trial_*"))}
    return seconds, scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="mobilenetv2")
    args = parser.parse_args()
    extra = [] if args.model == "mobilenetv2" else [f"model={args.model}"]
    times: dict[str, list[float]] = {"auto": [], "off": []}
    differences: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_folder(root / "photos", train_per_class=334, val_per_class=67, sides=(120, 200))
        for r in range(args.rounds):
            scores = {}
            for mode in (("auto", "off") if r % 2 == 0 else ("off", "auto")):  # interleaved, order alternating
                seconds, scores[mode] = search(root, data, f"{mode}-{r}", mode, args.trials, args.epochs, extra)
                times[mode].append(seconds)
                print(f"round {r + 1}: feature_cache={mode}: {seconds:.1f} s", flush=True)
            differences += [abs(scores["auto"][t] - scores["off"][t]) for t in scores["auto"]]
    auto, off = statistics.median(times["auto"]), statistics.median(times["off"])
    print(f"\nCPU: {cpu()}")
    print(f"{args.model}, {args.trials} trials x {args.epochs} epochs, 128 px, 1,002 + 201 images, rounds: {args.rounds}")
    print("| feature_cache | search wall time (median) | rounds | x off |")
    print("|---|---|---|---|")
    for mode, median in (("off", off), ("auto", auto)):
        print(f"| {mode} | {median:.1f} s | {', '.join(f'{t:.1f}' for t in times[mode])} | {median / off:.3f} |")
    print(f"speed-up {off / auto:.1f}x; largest |val_accuracy difference| between twin trials: {max(differences):.2e} "
          f"over {len(differences)} pairs")


if __name__ == "__main__":
    main()
