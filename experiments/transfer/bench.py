"""A frozen-backbone head search with and without stored features, side by side, rounds interleaved.

    python experiments/transfer/bench.py [--trials 4] [--epochs 5] [--rounds 2]   # ~10 minutes on 2 cores
    python experiments/transfer/bench.py --model resnet50 --trials 4 --epochs 3 --rounds 2
    python experiments/transfer/bench.py --fine-tune 2 --epochs 5      # one run: head, then 2 epochs fine-tuning

A random search of the head (`optimizer.lr`, `model.dropout`) on a frozen MobileNetV2 at 128 px
(offline: a stand-in for pretrained weights, random with the BatchNorm statistics of 256 of the
photos, tests/standin_backbone.py; with `model.weights=null` a frozen backbone's features are ~0 for
every image, so every head stays at chance and every pair of twins agrees trivially),
`augmentation=none`, on 1,000 + 200 generated JPEGs, as `python -m imgexp tuner=random ...` runs it,
once with `trainer.feature_cache=auto` (the default: features computed once, shared by the trials) and
once with `off` (the backbone runs on every image in every epoch), the same tuner seed. Reported: the
search's wall time (median of the rounds, each round's figure), the ratio, how far each trial's
val_accuracy is from its twin's (same trial, same hyperparameters), and where a trial's time goes with
stored features (the median of each phase of metrics.json's `phase_seconds`).

`--fine-tune N` times one run instead (`trainer.fine_tune_epochs=N` after `--epochs` of the head: the
head phase on stored features or on images, the fine-tuning phase on images in both).
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
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from bench import cpu, make_folder  # the deploy benchmark's generated photos and CPU line
from standin_backbone import standin_weights

SPACE = {"optimizer.lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
         "model.dropout": {"min": 0.1, "max": 0.5, "sampling": "linear"}}


def imgexp(root: Path, *args: str) -> float:
    """Wall seconds of `python -m imgexp ARGS` (the process start included)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "imgexp", *args], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode != 0:
        sys.exit(f"imgexp {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def weights_file(data: Path, model: str) -> Path:
    """Where the stand-in weights for `model` go, beside the photos."""
    return data.parent / f"{model}.weights.h5"


def standin(data: Path, model: str) -> Path:
    """A stand-in pretrained backbone for `model`, from 256 of the training photos at 128 px."""
    import numpy as np
    from PIL import Image

    paths = sorted((data / "train").rglob("*.jpg"))[::4][:256]
    images = np.stack([np.asarray(Image.open(p).convert("RGB").resize((128, 128))) for p in paths])
    return standin_weights(model, images, weights_file(data, model))


def common(data: Path, feature_cache: str, epochs: int, model: str = "mobilenetv2") -> list[str]:
    return [f"model={model}", f"model.weights={weights_file(data, model)}", "augmentation=none", "dataset=folder",
            f"dataset.path={data}", "dataset.image_size=[128,128]", f"trainer.epochs={epochs}",
            "trainer.early_stopping_patience=0", "trainer.verbose=0", f"trainer.feature_cache={feature_cache}"]


def search(root: Path, data: Path, name: str, feature_cache: str, trials: int, epochs: int,
           model: str) -> tuple[float, dict[str, dict]]:
    """Wall seconds of the whole search command, and each trial's metrics."""
    conf = root / "conf" / "search_space"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "head.yaml").write_text(yaml.safe_dump(SPACE))
    out = root / name
    seconds = imgexp(root, "--config-dir", str(root / "conf"), "tuner=random", "search_space=head",
                     f"tuner.max_trials={trials}", "tuner.seed=1", "model.trainable=false",
                     *common(data, feature_cache, epochs, model), f"search.dir={out}",
                     f"hydra.run.dir={root / 'hydra' / name}")
    trials_metrics = {t.name: json.loads((t / "metrics.json").read_text())
                      for t in sorted(next(out.iterdir()).glob("trial_*"))}
    return seconds, trials_metrics


def phase_medians(trials: list[dict]) -> dict[str, float]:
    """The median of each phase over the trials, `fit_seconds` apart from the rest of `train`."""
    phases = [{**t["phase_seconds"], "train": t["phase_seconds"]["train"] - t["fit_seconds"],
               "model.fit": t["fit_seconds"]} for t in trials]
    return {name: statistics.median(p.get(name, 0.0) for p in phases) for name in dict.fromkeys(k for p in phases for k in p)}


def fine_tune_run(args) -> None:
    """One run, head then fine-tuning, with and without stored features, rounds interleaved."""
    times: dict[str, list[float]] = {"auto": [], "off": []}
    metrics: dict[str, list[dict]] = {"auto": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_folder(root / "photos", train_per_class=334, val_per_class=67, sides=(120, 200))
        standin(data, "mobilenetv2")
        for r in range(args.rounds):
            for mode in (("auto", "off") if r % 2 == 0 else ("off", "auto")):
                run_dir = root / f"{mode}-{r}"
                times[mode].append(imgexp(root, *common(data, mode, args.epochs),
                                          f"trainer.fine_tune_epochs={args.fine_tune}", f"hydra.run.dir={run_dir}"))
                metrics[mode].append(json.loads((run_dir / "metrics.json").read_text()))
                print(f"round {r + 1}: feature_cache={mode}: {times[mode][-1]:.1f} s", flush=True)
    print(f"\nCPU: {cpu()}")
    print(f"mobilenetv2, one run: {args.epochs} head epochs + {args.fine_tune} fine-tuning epochs, 128 px, "
          f"1,002 + 201 images, rounds: {args.rounds}")
    print("| feature_cache | run wall time (median) | rounds | x off | val_accuracy |")
    print("|---|---|---|---|---|")
    off = statistics.median(times["off"])
    for mode in ("off", "auto"):
        median = statistics.median(times[mode])
        accuracy = ", ".join(f"{m['val_accuracy']:.4f}" for m in metrics[mode])
        print(f"| {mode} | {median:.1f} s | {', '.join(f'{t:.1f}' for t in times[mode])} | {median / off:.3f} | {accuracy} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="mobilenetv2")
    parser.add_argument("--fine-tune", type=int, default=0, help="time one run with this many fine-tuning epochs")
    args = parser.parse_args()
    if args.fine_tune:
        fine_tune_run(args)
        return
    times: dict[str, list[float]] = {"auto": [], "off": []}
    differences: list[float] = []
    auto_trials: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_folder(root / "photos", train_per_class=334, val_per_class=67, sides=(120, 200))
        standin(data, args.model)
        for r in range(args.rounds):
            scores = {}
            for mode in (("auto", "off") if r % 2 == 0 else ("off", "auto")):  # interleaved, order alternating
                seconds, scores[mode] = search(root, data, f"{mode}-{r}", mode, args.trials, args.epochs, args.model)
                times[mode].append(seconds)
                print(f"round {r + 1}: feature_cache={mode}: {seconds:.1f} s", flush=True)
            differences += [abs(scores["auto"][t]["val_accuracy"] - scores["off"][t]["val_accuracy"])
                            for t in scores["auto"]]
            auto_trials += scores["auto"].values()
    auto, off = statistics.median(times["auto"]), statistics.median(times["off"])
    print(f"\nCPU: {cpu()}")
    print(f"{args.model}, {args.trials} trials x {args.epochs} epochs, 128 px, 1,002 + 201 images, rounds: {args.rounds}")
    print("| feature_cache | search wall time (median) | rounds | x off |")
    print("|---|---|---|---|")
    for mode, median in (("off", off), ("auto", auto)):
        print(f"| {mode} | {median:.1f} s | {', '.join(f'{t:.1f}' for t in times[mode])} | {median / off:.3f} |")
    print(f"speed-up {off / auto:.1f}x; largest |val_accuracy difference| between twin trials: {max(differences):.2e} "
          f"over {len(differences)} pairs")
    accuracies = sorted(t["val_accuracy"] for t in auto_trials)
    print(f"val_accuracy of the trials: {accuracies[0]:.4f} to {accuracies[-1]:.4f} (median "
          f"{statistics.median(accuracies):.4f}; chance is 1/3)")
    print("\nwhere a trial's time goes with stored features (median seconds per phase):")
    print(" | ".join(f"{name} {seconds:.2f}" for name, seconds in phase_medians(auto_trials).items()))


if __name__ == "__main__":
    main()
