"""The layouts people have: the tutorial's train/validation/test folders, class folders with no split
(image_dataset_from_directory's, tf_flowers'), and a labels CSV beside the images."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, error_lines, run_in_process, striped_image, write_class_folders
from imgexp.data.load import ListingRequest, load_source
from imgexp.errors import UserError

CLASSES = ["horizontal", "vertical", "flat"]


def odd_files(folder, rng):
    """What a user's own photos hold: a PNG, a grayscale image and a corrupt file."""
    Image.fromarray(striped_image(0, 24, rng)).save(folder / "horizontal" / "extra.png")
    Image.fromarray(striped_image(1, 30, rng)[..., 0], mode="L").save(folder / "vertical" / "gray.jpg")
    (folder / "flat" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")


@pytest.fixture
def flat_folder(tmp_path):
    root = write_class_folders(tmp_path / "photos", CLASSES, per_class=10, seed=3)
    odd_files(root, np.random.default_rng(0))
    return root


def request(name, path, **kw):
    return ListingRequest(name, str(path), kw.pop("validation_split", 0.2), 7, kw.pop("on_bad_image", "skip"), **kw)


def test_class_folders_without_a_split_are_split_by_the_seed(flat_folder):
    source = load_source(request("folder", flat_folder, test_split=0.2))
    assert source.class_names == sorted(CLASSES)
    sizes = {name: len(split) for name, split in source.splits().items()}
    assert sizes == {"train": 20, "validation": 5, "test": 7}, "32 readable images: 20% test, then 20% of the rest"
    again = load_source(request("folder", flat_folder, test_split=0.2))
    assert again.validation.paths == source.validation.paths, "the same seed gives the same split"
    assert not any("broken" in p for split in source.splits().values() for p in split.paths)


def test_a_validation_folder_without_train_is_a_clear_line(tmp_path):
    write_class_folders(tmp_path / "validation", CLASSES[:2], per_class=2)
    with pytest.raises(UserError, match="has validation/ but no train/"):
        load_source(request("folder", tmp_path))


def write_labels(root, rows, header=("filename", "label")):
    with (root / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return root / "labels.csv"


def csv_rows(flat_folder):
    return [[f"{c}/{p.name}", c] for c in CLASSES for p in sorted((flat_folder / c).iterdir())]


def test_a_labels_csv_with_guessed_columns(flat_folder):
    labels = write_labels(flat_folder, csv_rows(flat_folder), header=("Image", "Category"))
    source = load_source(request("csv", labels))
    assert source.class_names == sorted(CLASSES) and len(source.train) + len(source.validation) == 32


def test_a_csv_split_column_and_named_columns(flat_folder, tmp_path):
    rows = [[name, label, "val" if i % 4 == 0 else "train"] for i, (name, label) in enumerate(csv_rows(flat_folder))]
    labels = write_labels(tmp_path, rows, header=("img", "y", "split"))
    source = load_source(request("csv", labels, images=str(flat_folder), file_column="img", label_column="y"))
    expected = sum(1 for name, _, split in rows if split == "val" and "broken" not in name)
    assert len(source.validation) == expected and len(source.train) == 32 - expected and source.test is None


@pytest.mark.parametrize("name, message", [
    ("../../etc/passwd", "leads out of"),
    ("missing.jpg", "not found"),
])
def test_csv_mistakes_are_one_line(flat_folder, name, message):
    labels = write_labels(flat_folder, [*csv_rows(flat_folder), [name, "flat"]])
    with pytest.raises(UserError, match=message):
        load_source(request("csv", labels, on_bad_image="error"))


def test_a_csv_without_a_known_column_names_the_key(flat_folder):
    labels = write_labels(flat_folder, csv_rows(flat_folder), header=("picture", "label"))
    with pytest.raises(UserError, match="dataset.file_column"):
        load_source(request("csv", labels))


@pytest.mark.parametrize("layout", ["split", "flat", "csv"])
def test_each_layout_trains_with_every_check(layout, tmp_path):
    photos = tmp_path / ("split/train" if layout == "split" else "photos")
    write_class_folders(photos, CLASSES, per_class=10, seed=3)
    odd_files(photos, np.random.default_rng(0))
    if layout == "split":
        data = ["dataset=folder", f"dataset.path={photos.parent}"]
    elif layout == "flat":
        data = ["dataset=folder", f"dataset.path={photos}"]
    else:
        data = ["dataset=csv", f"dataset.path={write_labels(photos, csv_rows(photos))}"]
    run_dir = tmp_path / "run"
    result = run_in_process(*TINY, "trainer.epochs=1", *data, "dataset.test_split=0.2", f"hydra.run.dir={run_dir}",
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "broken.jpg" in log, "the corrupt file is named"
    assert "test: 7 images; per class:" in log, "the images per class of each split are logged"
    with (run_dir / "split.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert len(rows) == 32 and not any("broken" in r["image"] for r in rows)
    assert not any(r["image"].startswith("/") for r in rows), "names relative to the data's folder"
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert set(provenance["data"]["splits"]) == {"train", "validation", "test"}


def test_dataset_path_without_dataset_folder_is_refused(tmp_path, flat_folder):
    result = run_in_process(*TINY, f"dataset.path={flat_folder}", cwd=tmp_path)
    assert result.returncode == 2
    [line] = error_lines(result.stderr)
    assert "dataset.path=" in line and "dataset=folder" in line


def test_a_tensorflow_datasets_dataset_offline_through_tfds_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds extra (tensorflow-datasets) is not installed")
    run_dir = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        result = run_in_process(*TINY, "trainer.epochs=1", "dataset=tfds", "dataset.name=tf_flowers",
                                "dataset.test_split=0.2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with (run_dir / "split.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and {r["split"] for r in rows} == {"train", "validation", "test"}
    assert json.loads((run_dir / "labels.json").read_text()) == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert json.loads((run_dir / "provenance.json").read_text())["data"]["sha256"]


def test_a_tfds_dataset_that_would_need_a_download_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets", reason="the tfds extra (tensorflow-datasets) is not installed")
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    result = run_in_process(*TINY, "dataset=tfds", "dataset.name=tf_flowers", f"dataset.data_dir={tmp_path / 'tfds'}",
                            cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert "dataset.name=tf_flowers: cannot be read from dataset.data_dir=" in line and "tfds build" in line
