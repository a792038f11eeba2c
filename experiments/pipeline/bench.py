"""imgexp's input pipeline and training loop against the tutorial's, side by side in one run.

    python experiments/pipeline/bench.py                 # everything (about 20 minutes on 2 cores)
    python experiments/pipeline/bench.py --skip-training # throughput only

1. Augmented-training throughput (images/s) on the same folder of JPEGs at
   150x150 with the tutorial's augmentations: ImageDataGenerator.flow_from_directory
   vs imgexp's tf.data pipeline (and, for reference, the same pipeline with
   Keras' chained Random* layers instead of one combined affine transform).
2. Epoch time of `experiment=seed_tutorial` vs the tutorial's own code
   (ImageDataGenerator + the same model + model.fit).
3. imgexp's epoch time vs a hand-written model.fit on the identical tf.data
   pipeline and model (what imgexp's callbacks and bookkeeping cost).

Every figure is repeated in interleaved rounds (this machine's throughput is
bimodal from one pass to the next); medians are reported, with each round.
Ratios are what to compare across machines.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from keras.src.legacy.preprocessing.image import ImageDataGenerator
from PIL import Image

from imgexp.job import to_config
from imgexp.compose import compose_config
from imgexp.data.augment import RandomAffine
from imgexp.data.folder import load_folder_source
from imgexp.data.pipeline import make_dataset
from imgexp.models import build_model
from imgexp.models.head import choose_head
from imgexp.training.fit import TrainingPlan, train
from imgexp.training.inputs import new_datasets

SIZE = (150, 150)
BATCH = 32
TUTORIAL_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                             shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


def make_folder(root: Path, train_per_class: int, val_per_class: int, sides: tuple[int, int], seed: int = 0) -> Path:
    """Photo-like JPEGs with sides in [sides[0], sides[1]] px, two classes, train/ and validation/."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("validation", val_per_class)):
        for label, name in enumerate(("cats", "dogs")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                h, w = rng.integers(sides[0], sides[1] + 1, 2)
                small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                small[..., label] //= 3  # a colour cast per class, so there is something to learn
                image = Image.fromarray(small).resize((int(w), int(h)), Image.BICUBIC)
                image.save(folder / f"{i:05d}.jpg", quality=90)
    return root


def throughput(batches, images_total: int) -> float:
    """Images per second to pull `images_total` images from an iterator of (x, y) batches."""
    started, seen = time.perf_counter(), 0
    for x, _ in batches:
        seen += len(x)
        if seen >= images_total:
            break
    return seen / (time.perf_counter() - started)


def tutorial_flow(folder: Path, shuffle: bool = True):
    return ImageDataGenerator(rescale=1.0 / 255, **TUTORIAL_AUGMENTATION).flow_from_directory(
        str(folder), target_size=SIZE, batch_size=BATCH, class_mode="binary", shuffle=shuffle)


def chained_keras_layers() -> keras.Sequential:
    """The obvious Keras 3 translation: one resampling per transform."""
    return keras.Sequential([
        keras.layers.RandomRotation(40 / 360, fill_mode="nearest"),
        keras.layers.RandomTranslation(0.2, 0.2, fill_mode="nearest"),
        keras.layers.RandomShear(x_factor=0.2 / 90, y_factor=0.2 / 90, fill_mode="nearest"),
        keras.layers.RandomZoom(0.2, 0.2, fill_mode="nearest"),
        keras.layers.RandomFlip("horizontal"),
    ])


def bench_throughput(root: Path, images: int, rounds: int) -> dict[str, list[float]]:
    """Images/s of each pipeline over `rounds` full passes, interleaved so machine noise hits all alike."""
    source = load_folder_source(str(root), 0.2, 0, "skip")
    augmenter = RandomAffine(rotation=40, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2,
                             horizontal_flip=True)
    chained = chained_keras_layers()
    pipelines = {
        "tutorial ImageDataGenerator": lambda: tutorial_flow(root / "train"),
        "imgexp tf.data + one affine transform": lambda: make_dataset(
            source.train, SIZE, BATCH, training=True, augmenter=augmenter, seed=0),
        "the same with tf.data autotuning (dataset.autotune=true)": lambda: make_dataset(
            source.train, SIZE, BATCH, training=True, augmenter=augmenter, seed=0, autotune=True),
        "tf.data + chained Keras Random* layers": lambda: make_dataset(
            source.train, SIZE, BATCH, training=True, augmenter=None, seed=0).map(
            lambda x, y: (chained(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE),
    }
    results: dict[str, list[float]] = {name: [] for name in pipelines}
    for name, make in pipelines.items():  # warm-up: tracing, the OS file cache
        throughput(iter(make()), BATCH * 4)
    for _ in range(rounds):
        for name, make in pipelines.items():
            results[name].append(throughput(make(), images))
    return results


def tutorial_fit(root: Path, epochs: int) -> float:
    """Seconds per epoch of the tutorial's own training code, with seed_tutorial's model."""
    keras.utils.set_random_seed(0)
    model = build_model("cnn", SIZE, 2)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], jit_compile=False)
    validation = ImageDataGenerator().flow_from_directory(
        str(root / "validation"), target_size=SIZE, batch_size=BATCH, class_mode="binary")
    # The model rescales inside, so the tutorial's rescale=1/255 is left to the model here.
    train_flow = ImageDataGenerator(**TUTORIAL_AUGMENTATION).flow_from_directory(
        str(root / "train"), target_size=SIZE, batch_size=BATCH, class_mode="binary")
    started = time.perf_counter()
    model.fit(train_flow, validation_data=validation, epochs=epochs, verbose=0)
    return (time.perf_counter() - started) / epochs


def seed_tutorial_setup(root: Path):
    """seed_tutorial's config, tf.data pipelines and a fresh model, as imgexp builds them."""
    cfg, _ = compose_config(["experiment=seed_tutorial", f"dataset.path={root}", "dataset.cache=null",
                             "trainer.verbose=0", "trainer.early_stopping_patience=0"])
    config = to_config(cfg)
    keras.utils.set_random_seed(config.trainer.seed)
    source = load_folder_source(str(root), 0.2, config.trainer.seed, "skip")
    inputs = new_datasets(config, source, config.dataset.cache)
    return config, source, inputs, build_model("cnn", SIZE, 2)


def imgexp_fit(root: Path, epochs: int, run_dir: Path) -> float:
    """Seconds per epoch of imgexp's training loop (all its callbacks: backup, checkpoint, TensorBoard...)."""
    config, source, inputs, model = seed_tutorial_setup(root)
    config.trainer.epochs = epochs
    steps = -(-len(source.train) // BATCH)
    started = time.perf_counter()
    train(model, config, choose_head(2), inputs, run_dir, TrainingPlan(steps))
    return (time.perf_counter() - started) / epochs


def handwritten_fit(root: Path, epochs: int) -> float:
    """Seconds per epoch of a bare model.fit on the identical pipeline and model."""
    config, source, inputs, model = seed_tutorial_setup(root)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"],
                  jit_compile=False)
    started = time.perf_counter()
    model.fit(inputs.train, validation_data=inputs.validation, epochs=epochs, verbose=0, shuffle=False)
    return (time.perf_counter() - started) / epochs


def table_rows(results: dict[str, list[float]], baseline: str, unit: str) -> None:
    base = statistics.median(results[baseline])
    for name, values in results.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" if unit == "images/s" else f"{v:.1f}" for v in values)
        print(f"| {name} | {median:.1f} | {runs} | {median / base:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="training images (half per class)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are reported")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed training")
    parser.add_argument("--skip-training", action="store_true", help="throughput only")
    parser.add_argument("--sides", type=int, nargs=2, default=(150, 150), metavar=("MIN", "MAX"),
                        help="generated image sides in px (150 150: the tutorial's size, no resize needed)")
    parser.add_argument("--data", type=Path, help="reuse/keep the generated folder here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="imgexp-bench-"))
    root = args.data or work / "images"
    if not (root / "train").is_dir():
        make_folder(root, args.images // 2, args.images // 8, tuple(args.sides))
    print(f"data: {root} ({args.images} training images, {args.sides[0]}-{args.sides[1]} px JPEGs -> 150x150), "
          f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, Keras {keras.__version__}")

    results = {"throughput_images_per_s": bench_throughput(root, args.images, args.rounds)}
    print("\n| augmented training pipeline, 150x150 | median images/s | each round | vs tutorial |")
    print("|---|---:|---|---:|")
    table_rows(results["throughput_images_per_s"], "tutorial ImageDataGenerator", "images/s")

    if not args.skip_training:
        times: dict[str, list[float]] = {
            "tutorial code (ImageDataGenerator + model.fit)": [],
            "imgexp training loop (seed_tutorial, all callbacks)": [],
            "hand-written model.fit, imgexp's tf.data pipeline": [],
        }
        for i in range(max(1, args.rounds - 1)):
            names = list(times)
            times[names[0]].append(tutorial_fit(root, args.epochs))
            times[names[1]].append(imgexp_fit(root, args.epochs, work / f"run{i}"))
            times[names[2]].append(handwritten_fit(root, args.epochs))
        results["seconds_per_epoch"] = times
        print(f"\n| seed_tutorial, seconds per epoch ({args.epochs} epochs a run) | median | each round | vs tutorial |")
        print("|---|---:|---|---:|")
        table_rows(times, "tutorial code (ImageDataGenerator + model.fit)", "s")
        loop = statistics.median(times["imgexp training loop (seed_tutorial, all callbacks)"])
        bare = statistics.median(times["hand-written model.fit, imgexp's tf.data pipeline"])
        print(f"\nimgexp's training loop vs a hand-written model.fit on the same pipeline: {100 * (loop / bare - 1):+.1f}%")
    print("\n" + json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
