"""Folders of images: the tutorial's PATH/{train,validation,test}/<class>/<files>, or PATH/<class>/<files>.

Only file names are listed here (and each file's header checked); images are
decoded later, streaming, by the tf.data pipeline.
"""

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from imgexp.data.source import ImageSource, Split
from imgexp.errors import UserError

log = logging.getLogger(__name__)

# What tf.io.decode_image reads, whatever the file is named.
DECODABLE_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}


MAX_IMAGE_PIXELS = 60_000_000  # a 48-megapixel phone photo passes; a 13000x13000 PNG (169 MP, 164 KB) does not
NOT_AN_IMAGE = "not a readable JPEG/PNG/GIF/BMP image"


def image_problem(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why the file cannot be used (not an image, or more pixels than `max_pixels`), from its header only;
    None when it can."""
    try:
        with Image.open(path) as image:
            if image.format not in DECODABLE_FORMATS:
                return NOT_AN_IMAGE
            width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own limit, from the header: far over any sane size
        return f"more pixels than Pillow opens (over {2 * Image.MAX_IMAGE_PIXELS:,}), a decompression bomb?"
    except (UnidentifiedImageError, OSError, ValueError):
        return NOT_AN_IMAGE
    if width * height > max_pixels:
        return f"{width}x{height} is {width * height:,} pixels, over {max_pixels:,} (a decompression bomb?)"
    return None


def is_decodable(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> bool:
    """True if the file's header says JPEG/PNG/GIF/BMP within `max_pixels` (reads the header only)."""
    return image_problem(path, max_pixels) is None


def keep_decodable(files: list[Path], on_bad_image: str, max_pixels: int = MAX_IMAGE_PIXELS) -> list[Path]:
    """Drop files that are not images or are too large, warning by path (or fail when on_bad_image=error)."""
    good = []
    for path in files:
        problem = image_problem(path, max_pixels)
        if problem is None:
            good.append(path)
        elif on_bad_image == "error":
            raise UserError(f"{path}: {problem}; delete it, or set dataset.on_bad_image=skip")
        else:
            log.warning("skipping %s: %s", path, problem)
    return good


def list_class_folders(split_dir: Path) -> dict[str, list[Path]]:
    """{class name: sorted files} for each sub-folder of split_dir."""
    classes = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {
        c.name: sorted(f for f in c.iterdir() if f.is_file() and not f.name.startswith("."))
        for c in classes
    }


def read_split(split_dir: Path, on_bad_image: str,
               max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[list[str], dict[str, list[Path]]]:
    """Class names and their image files, with the layout errors a user can make."""
    by_class = list_class_folders(split_dir)
    if not by_class:
        raise UserError(f"{split_dir}: no class folders; put images in {split_dir}/<class name>/")
    by_class = {name: keep_decodable(files, on_bad_image, max_pixels) for name, files in by_class.items()}
    for name, files in by_class.items():
        if not files:
            raise UserError(f"{split_dir / name}: no images in this class folder; add images or remove it")
    if len(by_class) < 2:
        raise UserError(f"{split_dir}: only one class folder ({next(iter(by_class))}); a classifier needs two or more")
    return list(by_class), by_class


def to_split(by_class: dict[str, list[Path]], class_names: list[str]) -> Split:
    paths = [str(f) for name in class_names for f in by_class[name]]
    labels = [i for i, name in enumerate(class_names) for _ in by_class[name]]
    return Split(labels=np.asarray(labels, np.int32), paths=paths)


def read_matching_split(split_dir: Path, class_names: list[str], on_bad_image: str,
                        max_pixels: int = MAX_IMAGE_PIXELS) -> Split:
    """A validation or test split whose class folders must match train/'s."""
    names, by_class = read_split(split_dir, on_bad_image, max_pixels)
    if names != class_names:
        raise UserError(
            f"{split_dir} has classes {names} but train/ has {class_names}; give both the same class folders"
        )
    return to_split(by_class, class_names)


def split_off(train: Split, share: float, seed: int) -> tuple[Split, Split]:
    """A seeded share of `train` (stratified where every class allows it) as a split of its own."""
    from sklearn.model_selection import train_test_split  # slow to import; `predict --help` must not wait

    counts = np.bincount(train.labels)
    stratify = train.labels if counts.min() >= 2 else None
    idx_train, idx_val = train_test_split(
        np.arange(len(train)), test_size=share, random_state=seed, stratify=stratify
    )
    return train.subset(np.sort(idx_train)), train.subset(np.sort(idx_val))


def carve_splits(train: Split, validation: Split | None, test: Split | None, request) -> tuple[Split, Split, Split | None]:
    """The test split (`dataset.test_split`, where none is given), then validation (`dataset.validation_split`),
    carved out of train, each seeded and stratified."""
    if test is None and request.test_split > 0:
        train, test = split_off(train, request.test_split, request.seed)
    if validation is None:
        train, validation = split_off(train, request.validation_split, request.seed)
    return train, validation, test


SPLIT_FOLDERS = ("train", "validation", "test")


def load_folder_source(request) -> ImageSource:
    """PATH/train/<class>/ (with optional validation/ and test/), or PATH/<class>/ with no split at all
    (keras.utils.image_dataset_from_directory's layout, tf_flowers'): told apart by PATH/train/."""
    root, on_bad, most = Path(request.path), request.on_bad_image, request.max_pixels
    if not (root / "train").is_dir():
        stray = [name for name in SPLIT_FOLDERS[1:] if (root / name).is_dir()]
        if stray:
            raise UserError(f"dataset.path={request.path}: has {stray[0]}/ but no train/; put the training images "
                            f"in {request.path}/train/<class>/, or give class folders only")
        class_names, by_class = read_split(root, on_bad, most)
        train, validation, test = carve_splits(to_split(by_class, class_names), None, None, request)
        return ImageSource(class_names=class_names, train=train, validation=validation, test=test)
    class_names, by_class = read_split(root / "train", on_bad, most)
    train = to_split(by_class, class_names)
    split = lambda name: read_matching_split(root / name, class_names, on_bad, most) if (root / name).is_dir() else None  # noqa: E731
    validation, test = split("validation"), split("test")
    train, validation, test = carve_splits(train, validation, test, request)
    return ImageSource(class_names=class_names, train=train, validation=validation, test=test)
