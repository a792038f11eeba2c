"""What a run records about what made it: provenance.json, split.csv, their TensorBoard summary, and a
resumed run refused when its data changed."""

import csv
import json
import subprocess

import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY, run_cli, write_class_folders
from imgexp.compose import compose_config
from imgexp.data.fingerprint import ContentHashes, fingerprint
from imgexp.data.folder import load_folder_source
from imgexp.data.load import ListingRequest
from imgexp.errors import UserError
from imgexp.job import run_job
from imgexp.run_folder import write_config
from tbread import accumulator


def train(run_dir, *overrides):
    cfg, choices = compose_config([*TINY, "trainer.epochs=1", *overrides])
    write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), list(overrides), choices)  # as Hydra does
    return run_job(cfg, run_dir, choices)


@pytest.fixture
def folder(tmp_path):
    """train/ only (validation split off it), three classes, one of them small."""
    root = tmp_path / "data"
    write_class_folders(root / "train", ["a", "b"], per_class=12, seed=3)
    write_class_folders(root / "train", ["c"], per_class=4, seed=4)
    return root


def test_a_run_records_versions_git_and_its_data(folder, tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "dataset=folder", f"dataset.path={folder}", "dataset.validation_split=0.25")
    record = json.loads((run_dir / "provenance.json").read_text())
    assert record["versions"]["tensorflow"] and record["versions"]["keras"] and record["versions"]["python"]
    assert record["started_utc"] <= record["ended_utc"] and record["devices"]
    assert record["git"] is None or len(record["git"]["commit"]) == 40
    splits = record["data"]["splits"]
    assert splits["train"]["images"] + splits["validation"]["images"] == 28
    assert sum(splits["validation"]["per_class"].values()) == splits["validation"]["images"]
    with (run_dir / "split.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 28 and {r["split"] for r in rows} == {"train", "validation"}
    assert all(r["image"].startswith("train/") and r["image"].split("/")[1] == r["label"] for r in rows)
    texts = accumulator(run_dir / "tb").Tensors("provenance")
    assert texts and record["data"]["sha256"][:12] in texts[0].tensor_proto.string_val[0].decode()


def test_the_same_seed_and_files_give_the_same_split(folder, tmp_path):
    for name in ("one", "two"):
        train(tmp_path / name, "dataset=folder", f"dataset.path={folder}", "dataset.validation_split=0.25")
    assert (tmp_path / "one" / "split.csv").read_text() == (tmp_path / "two" / "split.csv").read_text()
    first, second = (json.loads((tmp_path / n / "provenance.json").read_text())["data"] for n in ("one", "two"))
    assert first == second


def test_the_fingerprint_sees_one_changed_image_and_hashes_each_file_once(folder, tmp_path):
    source = load_folder_source(ListingRequest("folder", str(folder), 0.25, 42, "skip"))
    hashes = ContentHashes(tmp_path / "hashes.json")
    before = fingerprint(source, str(folder), hashes)
    assert hashes.hashed == 28
    again = ContentHashes(tmp_path / "hashes.json")  # a new process: the cache on disk
    assert fingerprint(source, str(folder), again) == before and again.hashed == 0
    edited = folder / "train" / "a" / "000.jpg"
    Image.new("RGB", (24, 24), "white").save(edited)
    changed = fingerprint(source, str(folder), ContentHashes(tmp_path / "hashes.json"))
    assert changed["sha256"] != before["sha256"]
    [holder] = [name for name, split in source.splits().items() if str(edited) in map(str, split.paths)]
    [other] = [name for name in ("train", "validation") if name != holder]
    assert changed["splits"][holder]["sha256"] != before["splits"][holder]["sha256"], "the split with the image"
    assert changed["splits"][other] == before["splits"][other], "and only that split"


def test_a_resumed_run_whose_data_changed_is_refused(folder, tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "dataset=folder", f"dataset.path={folder}", "dataset.image_size=[20,20]")
    (run_dir / "metrics.json").unlink()  # as if killed before its last file: it would resume
    Image.new("RGB", (24, 24), "white").save(folder / "train" / "b" / "001.jpg")
    with pytest.raises(UserError, match="data changed since the run started"):
        train(run_dir, "dataset=folder", f"dataset.path={folder}", "dataset.image_size=[20,20]")


def test_compare_shows_each_runs_data_and_warns_when_it_differs(folder, tmp_path):
    runs = tmp_path / "runs"
    train(runs / "a", "dataset=folder", f"dataset.path={folder}")
    train(runs / "b", "dataset=folder", f"dataset.path={folder}", "optimizer.lr=0.003")
    same = run_cli(str(runs), module="imgexp.compare", timeout=60)
    assert same.returncode == 0 and "warning" not in same.stderr, same.stderr
    Image.new("RGB", (24, 24), "white").save(folder / "train" / "c" / "000.jpg")
    train(runs / "c", "dataset=folder", f"dataset.path={folder}")
    mixed = run_cli(str(runs), "--csv", str(tmp_path / "runs.csv"), module="imgexp.compare", timeout=60)
    assert mixed.returncode == 0
    with (tmp_path / "runs.csv").open() as f:
        data = {row["run"]: row["data"] for row in csv.DictReader(f)}
    assert data["a"] == data["b"] != data["c"] and len(data["c"]) == 8
    assert "trained on 2 different data sets" in mixed.stderr


def test_the_digits_split_names_each_digit_by_its_index_in_scikit_learns_array():
    from sklearn.datasets import load_digits

    from imgexp.data.digits import load_digits_source
    from imgexp.data.fingerprint import split_rows

    rows = split_rows(load_digits_source(0.2, 42), None)
    target = load_digits().target
    assert sorted(int(image[1:]) for _, image, _ in rows) == list(range(len(target)))
    assert all(int(label) == target[int(image[1:])] for _, image, label in rows)


@pytest.mark.parametrize("payload", ["fsmonitor", "filter"])
def test_a_downloaded_repository_runs_none_of_its_programs(tmp_path, payload):
    from imgexp.tracking.provenance import git_state

    repo, marker = tmp_path / "repo", tmp_path / "RAN"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *a], cwd=repo,  # noqa: E731
                                    check=True, capture_output=True)
    git("init", "-q")
    (repo / "notes.txt").write_text("x\n")
    git("add", "notes.txt")
    git("commit", "-qm", "one")
    (repo / "notes.txt").write_text("changed\n")  # status would compare it (and run a filter on it)
    if payload == "fsmonitor":
        git("config", "core.fsmonitor", f"touch {marker}; echo")
    else:
        git("config", "filter.evil.clean", f"touch {marker}; cat")
        (repo / ".gitattributes").write_text("*.txt filter=evil\n")
    state = git_state(repo)
    assert not marker.exists(), "imgexp ran a program the repository configured"
    assert len(state["commit"]) == 40 and state["dirty"] is None
