"""Predict classes of images with a finished run's model.

    python -m imgexp.predict RUN_DIR IMAGE_OR_FOLDER... [--top-k 3] [--output predictions.csv]

Images of any size and mode (JPEG, PNG, BMP, GIF) are read in batches through
tf.data; a file that is not an image is reported and skipped.
"""

import argparse
import sys
from pathlib import Path

from imgexp import safe_write
from imgexp.data.folder import image_problem, is_decodable
from imgexp.errors import UserError
from imgexp.run_folder import FinishedRun, open_run, trained_image_size
from imgexp.tools.cli import OneLineParser, run_tool


def image_files(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """(images, files that are not images) among the given files and folders (recursively)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files += sorted(f for f in item.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif item.is_file():
            files.append(item)
        else:
            raise UserError(f"{item}: no such file or folder")
    images = [f for f in files if is_decodable(f)]  # the header only: a decompression bomb is never decoded
    return images, [f for f in files if f not in set(images)]


def predict_probabilities(run: FinishedRun, images: list[Path], batch_size: int):
    """[N, classes] probabilities, decoded and resized in parallel batches by tf.data."""
    import numpy as np

    from imgexp.tensorflow_runtime import import_tensorflow

    tf = import_tensorflow()
    from imgexp.data.pipeline import decode_image, resize

    model = run.load_model()
    size = trained_image_size(model)  # resize once here, as training did; the model's own resize is then a no-op
    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in images])
    ds = ds.map(lambda p: tf.cast(resize(decode_image(p), size), tf.float32),
                num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    probs = model.predict(ds, verbose=0)
    if probs.shape[1] == 1:  # one sigmoid unit: the probability of the second class
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    return probs


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m imgexp.predict", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run, multirun job, trial or a search's best/")
    parser.add_argument("inputs", type=Path, nargs="+", help="image files or folders")
    parser.add_argument("--top-k", type=int, default=1, help="classes to show per image (default 1)")
    parser.add_argument("--output", type=Path, help="also write a CSV: one row per image, every class's probability")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    return run_tool("imgexp.predict", lambda: predict(args))


def predict(args: argparse.Namespace) -> None:
    run = open_run(args.run_dir)
    images, skipped = image_files(args.inputs)
    for path in skipped:
        print(f"imgexp.predict: skipping {path}: {image_problem(path)}", file=sys.stderr)
    if not images:
        raise UserError("no images to predict among " + ", ".join(map(str, args.inputs)))
    probs = predict_probabilities(run, images, args.batch_size)
    top_k = max(1, min(args.top_k, len(run.class_names)))
    for path, row in zip(images, probs):
        best = row.argsort()[::-1][:top_k]
        print(f"{path}\t" + "\t".join(f"{run.class_names[i]} {row[i]:.4f}" for i in best))
    if args.output:
        rows = [[path, run.class_names[int(row.argmax())], f"{row.max():.6f}", *(f"{p:.6f}" for p in row)]
                for path, row in zip(images, probs)]
        safe_write.write_csv(args.output, [["path", "class", "probability", *run.class_names], *rows])
        print(f"wrote {args.output} ({len(images)} images)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
