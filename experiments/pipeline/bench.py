"""imgexp's input pipeline and training loop against the tutorial's, side by side in one run.

    python experiments/pipeline/bench.py                 # everything (about 15 minutes on 2 cores)
    python experiments/pipeline/bench.py --skip-training # throughput only

1. Augmented-training throughput (images/s) on the same folder of JPEGs at
   150x150 with the tutorial's augmentations: ImageDataGenerator.flow_from_directory
   vs imgexp's tf.data pipeline (and, for reference, the same pipeline with
   Keras' chained Random* layers instead of one combined affine transform).
2. Epoch time of `experiment=seed_tutorial` vs the tutorial's own code
   (ImageDataGenerator + the same model + model.fit).
3. imgexp's epoch time vs a hand-written model.fit on the identical tf.data
   pipeline and model (what imgexp's callbacks and bookkeeping cost).

Epoch times are taken from the last of `--epochs` epochs, so graph tracing in
the first one does not count. Ratios are what to compare across machines.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402
from PIL import Image  # noqa: E402

from imgexp.app import run_job, to_config  # noqa: E402
from imgexp.compose import compose_config  # noqa: E402
from imgexp.data.augment import RandomAffine  # noqa: E402
from imgexp.data.folder import load_folder_source  # noqa: E402
from imgexp.data.pipeline import make_dataset  # noqa: E402
from imgexp.models import build_model  # noqa: E402
from imgexp.training.run import make_datasets  # noqa: E402

SIZE = (150, 150)
BATCH = 32
TUTORIAL_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                             shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


def make_folder(root: Path, train_per_class: int, val_per_class: int, seed: int = 0) -> Path:
    """Photo-like JPEGs of varying size (200-350 px), two classes, train/ and validation/."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("validation", val_per_class)):
        for label, name in enumerate(("cats", "dogs")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                h, w = rng.integers(200, 351, 2)
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


def bench_throughput(root: Path, images: int) -> dict:
    source = load_folder_source(str(root), 0.2, 0, "skip")
    augmenter = RandomAffine(rotation=40, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2,
                             horizontal_flip=True)
    imgexp_ds = make_dataset(source.train, SIZE, BATCH, training=True, augmenter=augmenter, seed=0)
    chained = chained_keras_layers()
    chained_ds = make_dataset(source.train, SIZE, BATCH, training=True, augmenter=None, seed=0).map(
        lambda x, y: (chained(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    # Warm up each once (graph tracing, file cache), then one full pass each.
    for batches in (tutorial_flow(root / "train"), imgexp_ds, chained_ds):
        throughput(iter(batches), BATCH * 2)
    results = {
        "tutorial ImageDataGenerator": throughput(tutorial_flow(root / "train"), images),
        "imgexp tf.data + one affine transform": throughput(imgexp_ds, images),
        "tf.data + chained Keras Random* layers": throughput(chained_ds, images),
    }
    return results


class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.started]


def tutorial_epoch(root: Path, epochs: int) -> float:
    """The tutorial's own training code, same model as seed_tutorial."""
    keras.utils.set_random_seed(0)
    model = build_model("cnn", SIZE, 2)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], jit_compile=False)
    validation = ImageDataGenerator().flow_from_directory(
        str(root / "validation"), target_size=SIZE, batch_size=BATCH, class_mode="binary")
    # imgexp's model rescales inside, so the tutorial's rescale=1/255 is left to the model here.
    train = ImageDataGenerator(**TUTORIAL_AUGMENTATION).flow_from_directory(
        str(root / "train"), target_size=SIZE, batch_size=BATCH, class_mode="binary")
    timer = Timer()
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=[timer], verbose=2)
    return timer.times[-1]


def seed_tutorial_overrides(root: Path, epochs: int) -> list[str]:
    return ["experiment=seed_tutorial", f"dataset.path={root}", f"trainer.epochs={epochs}",
            "dataset.cache=null", "trainer.verbose=2"]


def imgexp_epoch(root: Path, epochs: int, run_dir: Path) -> float:
    cfg, choices = compose_config(seed_tutorial_overrides(root, epochs))
    run_job(cfg, run_dir, choices)
    rows = (run_dir / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    return float(rows[-1].split(",")[header.index("epoch_seconds")])


def handwritten_fit_epoch(root: Path, epochs: int) -> float:
    """The same tf.data pipeline and model, with a bare model.fit and no imgexp callbacks."""
    cfg, _ = compose_config(seed_tutorial_overrides(root, epochs))
    config = to_config(cfg)
    keras.utils.set_random_seed(config.trainer.seed)
    source = load_folder_source(str(root), 0.2, config.trainer.seed, "skip")
    train, validation = make_datasets(config, source)
    model = build_model("cnn", SIZE, 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"],
                  jit_compile=False)
    timer = Timer()
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=[timer], verbose=2, shuffle=False)
    return timer.times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="training images (half per class)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training; the last is timed")
    parser.add_argument("--skip-training", action="store_true", help="throughput only")
    parser.add_argument("--data", type=Path, help="reuse/keep the generated folder here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="imgexp-bench-"))
    root = args.data or work / "images"
    if not (root / "train").is_dir():
        make_folder(root, args.images // 2, args.images // 8)
    print(f"data: {root} ({args.images} training images, 200-350 px JPEGs -> 150x150), "
          f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, Keras {keras.__version__}")

    results = {"throughput_images_per_s": bench_throughput(root, args.images)}
    base = results["throughput_images_per_s"]["tutorial ImageDataGenerator"]
    print("\n| augmented training pipeline, 150x150 | images/s | vs tutorial |\n|---|---:|---:|")
    for name, value in results["throughput_images_per_s"].items():
        print(f"| {name} | {value:.0f} | {value / base:.2f}x |")

    if not args.skip_training:
        tutorial = tutorial_epoch(root, args.epochs)
        imgexp = imgexp_epoch(root, args.epochs, work / "run")
        handwritten = handwritten_fit_epoch(root, args.epochs)
        results["epoch_seconds"] = {"tutorial code": tutorial, "imgexp seed_tutorial": imgexp,
                                    "hand-written model.fit, same tf.data pipeline": handwritten}
        print(f"\n| epoch of seed_tutorial ({args.images} train images, last of {args.epochs}) | seconds | ratio |")
        print("|---|---:|---:|")
        print(f"| tutorial code (ImageDataGenerator + model.fit) | {tutorial:.1f} | 1.00 |")
        print(f"| imgexp `experiment=seed_tutorial` | {imgexp:.1f} | {imgexp / tutorial:.2f} of the tutorial's |")
        print(f"| hand-written model.fit on imgexp's tf.data pipeline | {handwritten:.1f} | "
              f"imgexp is {100 * (imgexp / handwritten - 1):+.1f}% |")
    print("\n" + json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
