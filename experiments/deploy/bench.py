"""What each deployment format costs and keeps, for a trained CNN and a MobileNetV2, on one machine.

    python experiments/deploy/bench.py [--out results.json]   # about 10 minutes on 2 cores

Trains two runs from the CLI on a generated folder of JPEGs (three classes told apart by a colour cast of
random strength): `experiment=seed_tutorial` (the tutorial's CNN and augmentations at 150x150) and
MobileNetV2 at 96x96 (`model.weights=null`: no download here, so it trains from scratch). Then exports each run to every format with
`python -m imgexp.export` and prints, from each export's manifest.json, the size, the validation
accuracy of the export and of the Keras model, the top-1 agreement with model.keras and with its float32
twin, the largest probability difference and the latency per image at batch 1 (the median of a short
timed loop after warm-up, in the same process as the Keras figure it is set against).

Needs the deploy extra, tensorflowjs (`pip install --no-deps tensorflowjs==4.22.0`) and TF.js for Node
(IMGEXP_TFJS_MODULES, or `npm install --prefix ~/.cache/imgexp/tfjs @tensorflow/tfjs@4.22.0
@tensorflow/tfjs-backend-wasm@4.22.0`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("red", "green", "blue")


def make_folder(root: Path, train_per_class: int, val_per_class: int, sides: tuple[int, int], seed: int = 0) -> Path:
    """Photo-like JPEGs in train/ and validation/, three classes told apart by a colour cast of random
    strength: a weak cast looks like any class, so no model is sure of every image (its probabilities
    are not all 0 or 1, and quantization has something to lose)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("validation", val_per_class)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                h, w = rng.integers(sides[0], sides[1] + 1, 2)
                small = rng.integers(40, 216, (6, 6, 3)).astype(np.float32)
                small[..., label] *= 1 + rng.uniform(0.0, 0.35)
                image = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((int(w), int(h)), Image.BICUBIC)
                image.save(folder / f"{i:05d}.jpg", quality=90)
    return root

RUNS = {
    "seed_tutorial CNN 150px": ["experiment=seed_tutorial", "trainer.epochs=8"],
    "MobileNetV2 96px": ["model=mobilenetv2", "model.weights=null", "dataset.image_size=[96,96]",
                         "augmentation=none", "trainer.epochs=20", "optimizer.lr=0.001"],
}
EXPORTS = [("keras", "none"), ("h5", "none"), ("savedmodel", "none"), ("tflite", "none"), ("tflite", "float16"),
           ("tflite", "dynamic"), ("tflite", "int8"), ("tfjs", "none")]


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")]
    return f"{model} ({os.cpu_count()} cores; {' '.join(wanted)})"


def imgexp(*args: str, module: str = "imgexp") -> None:
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--only", choices=list(RUNS), help="train and export this run alone; the others' "
                        "figures are kept from --out")
    args = parser.parse_args()
    results = {"cpu": cpu(), "runs": {}}
    if args.only and args.out.is_file():
        results["runs"] = {k: v for k, v in json.loads(args.out.read_text())["runs"].items() if k != args.only}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_folder(Path(tmp) / "photos", train_per_class=200, val_per_class=100, sides=(120, 200))
        for name, overrides in RUNS.items():
            if args.only and name != args.only:
                continue
            run_dir = Path(tmp) / name.replace(" ", "_")
            print(f"training {name} ...", flush=True)
            imgexp(*overrides, f"dataset.path={data}", "dataset.name=folder", f"hydra.run.dir={run_dir}",
                   "trainer.verbose=0")
            metrics = json.loads((run_dir / "metrics.json").read_text())
            rows = []
            for fmt, quantize in EXPORTS:
                print(f"  export {fmt} {quantize}", flush=True)
                imgexp(str(run_dir), "--format", fmt, "--quantize", quantize, "--max-accuracy-drop", "100",
                       module="imgexp.export")
            manifest = json.loads((run_dir / "export" / "manifest.json").read_text())
            for export in manifest["exports"].values():
                rows.extend(export["checks"])
            results["runs"][name] = {"precision": metrics["precision"], "val_accuracy": metrics["val_accuracy"],
                                     "keras": manifest["keras"], "model_keras_bytes": metrics["model_bytes"],
                                     "checks": rows}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


def print_tables(results: dict) -> None:
    print(f"\nCPU: {results['cpu']}")
    for name, run in results["runs"].items():
        keras = run["keras"]
        float_tflite = next(c["bytes"] for c in run["checks"] if c["export"] == "model.tflite")
        print(f"\n{name} (precision {run['precision']}; model.keras {run['model_keras_bytes'] / 1e6:.2f} MB, "
              f"validation accuracy {keras['accuracy']:.4f}, Keras {keras['latency_ms']:.2f} ms/image)")
        print("| export | runtime | size | x float TFLite | accuracy | vs Keras (points) | top-1 agreement "
              "| max abs dp vs Keras | vs float32 twin | ms/image | x Keras |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for c in run["checks"]:
            print(f"| {c['export']} | {c['runtime']} | {c['bytes'] / 1e6:.3f} MB | {c['bytes'] / float_tflite:.2f} "
                  f"| {c['accuracy']:.4f} | {100 * (c['accuracy'] - c['keras_accuracy']):+.2f} "
                  f"| {100 * c['agreement']:.1f}% | {c['max_difference']:.1e} | {c['max_difference_float32']:.1e} "
                  f"| {c['latency_ms']:.2f} | {c['latency_ms'] / keras['latency_ms']:.2f} |")


if __name__ == "__main__":
    main()
