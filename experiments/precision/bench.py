"""Training speed and accuracy in float32 vs mixed_bfloat16, per model, on this machine, in one run.

    python experiments/precision/bench.py                  # everything, about 15 minutes on 2 cores
    python experiments/precision/bench.py --skip-accuracy  # speed only

1. TensorFlow's own matmul peak (2048x2048, GFLOP/s) in float32 and bfloat16.
2. Training throughput (images/s, data already in memory, batch 32) of each
   model in each precision, rounds interleaved; for the tutorial CNN also the
   share of the matmul peak it reaches (3x the forward FLOPs per image).
3. Accuracy parity through imgexp's own run path: the default digits run and
   the seed recipe on a generated folder, several seeds, both precisions.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgexp.tensorflow_runtime import import_tensorflow

tf = import_tensorflow()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from epochs import make_folder  # noqa: E402  (the pipeline benchmark's generated photos)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from imgexp.compose import compose_config  # noqa: E402
from imgexp.job import run_job  # noqa: E402
from imgexp.models import build_model  # noqa: E402
from imgexp.models.head import choose_head  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")
MODELS = {  # name: (image size, builder options); backbones from scratch (no download)
    "cnn": ((150, 150), {}),
    "mobilenetv2": ((96, 96), {"weights": None}),
    "resnet50": ((64, 64), {"weights": None}),
    "inceptionv3": ((75, 75), {"weights": None}),
}
BATCH = 32


def matmul_gflops(dtype: tf.DType, n: int = 2048, repeats: int = 10) -> float:
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()  # trace, warm up
    started = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a)
    result.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def cnn_forward_flops(size: tuple[int, int], filters=(32, 64, 128), dense=512, kernel=3) -> int:
    """Multiply-adds x2 of the tutorial CNN's convolutions and dense layers for one image."""
    flops, h, w, channels = 0, *size, 3
    for n in filters:
        h, w = h - kernel + 1, w - kernel + 1
        flops += 2 * h * w * kernel * kernel * channels * n
        h, w, channels = h // 2, w // 2, n
    flops += 2 * h * w * channels * dense + 2 * dense
    return flops


def training_throughput(name: str, precision: str, images: int = 256) -> float:
    """Images/s of model.fit on in-memory data after a warm-up epoch (tracing excluded)."""
    size, options = MODELS[name]
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = build_model(name, size, 2, **options)
        head = choose_head(2)
        model.compile(optimizer="adam", loss=head.loss, metrics=["accuracy"], jit_compile=False)
        x = np.random.default_rng(0).integers(0, 256, (images, *size, 3)).astype("float32")
        y = np.random.default_rng(1).integers(0, 2, images).astype("int32")
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).prefetch(2)
        model.fit(ds, epochs=1, verbose=0)
        started = time.perf_counter()
        model.fit(ds, epochs=2, verbose=0)
        return 2 * images / (time.perf_counter() - started)
    finally:
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()


def val_accuracy(overrides: list[str], run_dir: Path) -> dict:
    cfg, choices = compose_config(["trainer.verbose=0", *overrides])
    metrics = run_job(cfg, run_dir, choices)
    return {k: metrics[k] for k in ("val_accuracy", "val_loss", "fit_seconds", "epochs_run")}


def print_speed(peaks: dict, speed: dict) -> None:
    peak = {p: statistics.median(v) for p, v in peaks.items()}
    print(f"matmul 2048x2048: float32 {peak['float32']:.0f} GFLOP/s, bfloat16 {peak['bfloat16']:.0f} GFLOP/s "
          f"({peak['bfloat16'] / peak['float32']:.2f}x); rounds {peaks}")
    cnn_train_flops = 3 * cnn_forward_flops(MODELS["cnn"][0])
    print("\n| model (input) | float32 img/s | mixed_bfloat16 img/s | bf16 / f32 | rounds f32; bf16 |")
    print("|---|---:|---:|---:|---|")
    for model, (size, _) in MODELS.items():
        f32, bf16 = (statistics.median(speed[(model, p)]) for p in PRECISIONS)
        rounds = "; ".join(", ".join(f"{v:.0f}" for v in speed[(model, p)]) for p in PRECISIONS)
        print(f"| {model} ({size[0]}x{size[1]}) | {f32:.1f} | {bf16:.1f} | {bf16 / f32:.2f}x | {rounds} |")
    for precision, matmul in zip(PRECISIONS, ("float32", "bfloat16")):
        achieved = statistics.median(speed[("cnn", precision)]) * cnn_train_flops / 1e9
        print(f"tutorial CNN in {precision}: {achieved:.0f} GFLOP/s = {100 * achieved / peak[matmul]:.0f}% of the "
              f"{matmul} matmul peak ({cnn_train_flops / 1e9:.2f} GFLOP per training image)")


def accuracy_parity(work: Path, seeds: list[int]) -> dict:
    """val_accuracy of two recipes in both precisions over `seeds`, through imgexp's run path."""
    folder = make_folder(work / "images", 250, 50, side=300)
    recipes = {
        "digits default (cnn 32x32, 20 epochs)": [],
        "seed_tutorial, 500+100 generated JPEGs, 6 epochs": ["experiment=seed_tutorial", f"dataset.path={folder}",
                                                             "trainer.epochs=6"],
    }
    accuracy: dict = {}
    for recipe, overrides in recipes.items():
        for seed in seeds:
            for precision in PRECISIONS:
                run_dir = work / "runs" / f"{len(accuracy)}"
                accuracy[f"{recipe} | {precision} | seed {seed}"] = val_accuracy(
                    [*overrides, f"trainer.seed={seed}", f"trainer.precision={precision}"], run_dir)
    print("\n| recipe | precision | val_accuracy per seed | mean | fit s (median) |")
    print("|---|---|---|---:|---:|")
    for recipe in recipes:
        for precision in PRECISIONS:
            cells = [accuracy[f"{recipe} | {precision} | seed {s}"] for s in seeds]
            values = [c["val_accuracy"] for c in cells]
            print(f"| {recipe} | {precision} | {', '.join(f'{v:.4f}' for v in values)} | "
                  f"{statistics.mean(values):.4f} | {statistics.median(c['fit_seconds'] for c in cells):.1f} |")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgexp-precision-"))
    results: dict = {"machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__, "keras": keras.__version__}}

    peaks = {p: [] for p in ("float32", "bfloat16")}
    speed = {(m, p): [] for m in MODELS for p in PRECISIONS}
    for _ in range(0 if args.skip_speed else args.rounds):  # interleaved: machine noise hits every cell alike
        peaks["float32"].append(matmul_gflops(tf.float32))
        peaks["bfloat16"].append(matmul_gflops(tf.bfloat16))
        for model in MODELS:
            for precision in PRECISIONS:
                speed[(model, precision)].append(training_throughput(model, precision))
    if not args.skip_speed:
        print_speed(peaks, speed)
    results["matmul_gflops"] = peaks
    results["train_images_per_s"] = {f"{m} {p}": v for (m, p), v in speed.items()}

    if not args.skip_accuracy:
        results["accuracy"] = accuracy_parity(work, args.seeds)
    print("\n" + json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
