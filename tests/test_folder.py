"""The folder dataset: the tutorial's layout, odd images, and the layout errors users make."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import write_class_folders
from imgexp.data.folder import load_folder_source
from imgexp.data.load import ListingRequest
from imgexp.data.pipeline import make_dataset
from imgexp.errors import UserError


def load(root, on_bad_image="skip"):
    return load_folder_source(ListingRequest("folder", str(root), 0.25, 0, on_bad_image))


def test_train_and_validation_folders(image_folder):
    source = load(image_folder)
    assert source.class_names == ["horizontal", "vertical"]
    assert len(source.train) == 48 and len(source.validation) == 16 and source.test is None
    assert np.bincount(source.validation.labels).tolist() == [8, 8]


def test_without_validation_folder_a_seeded_stratified_split(tmp_path):
    write_class_folders(tmp_path / "train", ["a", "b", "c"], per_class=8)
    first, again = load(tmp_path), load(tmp_path)
    assert first.validation.paths == again.validation.paths
    assert np.bincount(first.validation.labels).tolist() == [2, 2, 2]
    assert not set(first.validation.paths) & set(first.train.paths)


def test_optional_test_split(tmp_path):
    write_class_folders(tmp_path / "train", ["a", "b"], per_class=4)
    write_class_folders(tmp_path / "test", ["a", "b"], per_class=2)
    assert len(load(tmp_path).test) == 4


def test_grayscale_rgba_and_png_named_jpg_decode_to_rgb(tmp_path):
    write_class_folders(tmp_path / "train", ["a", "b"], per_class=2)
    Image.fromarray(np.full((10, 14), 200, np.uint8), mode="L").save(tmp_path / "train/a/gray.jpg")
    Image.fromarray(np.full((12, 9, 4), 90, np.uint8), mode="RGBA").save(tmp_path / "train/a/rgba.png")
    Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).save(tmp_path / "train/b/really_png.jpg", format="PNG")
    Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).save(tmp_path / "train/b/bitmap.bmp")
    source = load(tmp_path)
    ds = make_dataset(source.train, (16, 16), batch_size=64, training=False)
    images, labels = next(iter(ds))
    assert images.shape == (len(source.train), 16, 16, 3) and images.dtype == tf.float32
    assert float(tf.reduce_max(images)) <= 255.0


def test_bad_image_is_skipped_with_a_warning_naming_it(tmp_path, caplog):
    write_class_folders(tmp_path / "train", ["a", "b"], per_class=3)
    (tmp_path / "train/a/broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "train/b/notes.txt").write_text("hello")
    with caplog.at_level(logging.WARNING):
        source = load(tmp_path)
    assert len(source.train) + len(source.validation) == 6
    assert "broken.jpg" in caplog.text and "notes.txt" in caplog.text


def test_bad_image_fails_when_asked(tmp_path):
    write_class_folders(tmp_path / "train", ["a", "b"], per_class=3)
    (tmp_path / "train/a/broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(UserError, match="broken.jpg.*on_bad_image=skip"):
        load(tmp_path, on_bad_image="error")


def test_image_corrupt_past_its_header_is_skipped_in_the_pipeline(tmp_path):
    write_class_folders(tmp_path / "train", ["a", "b"], per_class=3)
    write_class_folders(tmp_path / "validation", ["a", "b"], per_class=1)
    good = (tmp_path / "train/a/000.jpg").read_bytes()
    (tmp_path / "train/a/truncated.jpg").write_bytes(good[: len(good) - 200])  # header intact, data cut
    source = load(tmp_path)
    assert len(source.train) == 7, "the header check lets it through"
    ds = make_dataset(source.train, (16, 16), batch_size=64, training=False, skip_bad=True)
    assert sum(len(y) for _, y in ds) == 6
    strict = make_dataset(source.train, (16, 16), batch_size=64, training=False, skip_bad=False)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(strict)


@pytest.mark.parametrize(
    "make_layout, message",
    [
        (lambda root: (root / "images").mkdir(), "no images in this class folder"),
        (lambda root: (root / "train").mkdir(), "no class folders"),
        (lambda root: write_class_folders(root / "train", ["only"], per_class=3), "only one class"),
        (lambda root: (write_class_folders(root / "train", ["a", "b"], per_class=3), (root / "train/c").mkdir()),
         "train/c: no images"),
        (lambda root: (write_class_folders(root / "train", ["a", "b"], per_class=3),
                       write_class_folders(root / "validation", ["a", "x"], per_class=2)), "same class folders"),
    ],
)
def test_layout_errors_are_clear(tmp_path, make_layout, message):
    make_layout(tmp_path)
    with pytest.raises(UserError, match=message):
        load(tmp_path)


def test_pipeline_streams_batches_and_caches_to_a_file(image_folder, tmp_path):
    source = load(image_folder)
    cache = str(tmp_path / "cache")
    ds = make_dataset(source.train, (16, 16), batch_size=10, training=True, cache=cache, seed=1)
    first = [y.numpy().tolist() for _, y in ds]
    second = [y.numpy().tolist() for _, y in ds]
    assert [len(b) for b in first] == [10, 10, 10, 10, 8]
    assert first != second, "training batches are reshuffled every epoch"
    assert list(tmp_path.glob("cache.train*")), "decoded images were cached to the file"
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_autotune_off_gives_the_same_batches_without_tf_data_tuning(image_folder):
    source = load(image_folder)
    tuned = make_dataset(source.train, (16, 16), batch_size=10, training=True, seed=1, autotune=True)
    fixed = make_dataset(source.train, (16, 16), batch_size=10, training=True, seed=1)  # the default
    assert tuned.options().autotune.enabled is not False
    assert fixed.options().autotune.enabled is False
    for (x1, y1), (x2, y2) in zip(tuned, fixed, strict=True):  # scheduling changes, content does not
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())
        np.testing.assert_allclose(x1.numpy(), x2.numpy())


def test_decompression_bombs_are_skipped_by_their_header(tmp_path, caplog):
    """A 20000x20000 PNG (over Pillow's own limit) and a 13000x13000 one (under it, 169 megapixels): both are
    named and skipped without being decoded."""
    import logging
    import zlib
    import struct

    def blank_png(path, width, height):  # a tiny file that claims a huge image
        chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        rows = zlib.compress(b"\x00" * (width // 8 + 1) * 64)  # a few rows: the header is what counts
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                         + chunk(b"IDAT", rows) + chunk(b"IEND", b""))

    root = write_class_folders(tmp_path / "train", ["a", "b"], per_class=3)
    blank_png(root / "a" / "bomb.png", 20000, 20000)
    blank_png(root / "b" / "big.png", 13000, 13000)
    with caplog.at_level(logging.WARNING):
        source = load_folder_source(ListingRequest("folder", str(tmp_path), 0.3, 0, "skip"))
    names = [Path(p).name for split in source.splits().values() for p in split.paths]
    assert "bomb.png" not in names and "big.png" not in names and len(names) == 6
    assert "bomb.png" in caplog.text and "big.png: 13000x13000 is 169,000,000 pixels, over 60,000,000" in caplog.text
    with pytest.raises(UserError, match="bomb.png: more pixels than Pillow opens"):
        load_folder_source(ListingRequest("folder", str(tmp_path), 0.3, 0, "error"))
