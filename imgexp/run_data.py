"""A finished run's own data, rebuilt from its config: the split it validated on, the images it trained on.

The tools that judge a model on the run's images (evaluate, export's checks, int8 calibration) ask
here. The listing is rebuilt from the run's dataset keys and seed, as training made it; where the run
left a split.csv, the rebuilt split is checked against it, so a folder that changed since is said,
not silently used.
"""

import csv
from pathlib import Path

from imgexp.data.source import ImageSource, Split
from imgexp.errors import UserError
from imgexp.run_folder import BEST_CONFIG_FILE, CONFIG_FILE, SPLIT_FILE, FinishedRun, load_yaml_text

CONFIG_FILES = (CONFIG_FILE, BEST_CONFIG_FILE)  # a run's own, or a search's best/
MAX_SPLIT_ROWS = 5_000_000  # a split.csv is bounded like every file a run folder brings


def run_config(run: FinishedRun) -> dict:
    for name in CONFIG_FILES:
        if (run.path / name).is_file():
            return load_yaml_text(run.path / name)
    raise UserError(f"{run.path}: no config ({' or '.join(CONFIG_FILES)}) to rebuild its split; give --folder DIR")


def run_source(run: FinishedRun, dataset_path: str | None = None) -> tuple[ImageSource, str | None]:
    """The run's data as it listed it (or the same layout at `dataset_path`) and the folder its
    image names are relative to."""
    from imgexp.data.checks import handle_duplicates
    from imgexp.data.fingerprint import ContentHashes
    from imgexp.data.load import ListingRequest, load_source

    config = run_config(run)
    ds = config["dataset"]
    if dataset_path is not None:
        if not Path(dataset_path).is_dir():
            raise UserError(f"dataset.path={dataset_path}: no such folder")
        ds = {**ds, "name": "folder", "path": dataset_path}
    if ds["name"] in ("folder", "csv") and ds.get("path") and not Path(ds["path"]).exists():
        raise UserError(f"dataset.path={ds['path']}: no such folder or file any more (the run's data moved?)")
    request = ListingRequest(ds["name"], ds.get("path"), ds["validation_split"], config["trainer"]["seed"],
                             ds.get("on_bad_image", "skip"), ds.get("test_split", 0.0), ds.get("images"),
                             ds.get("file_column"), ds.get("label_column"))
    source = load_source(request)
    if source.class_names != run.class_names:
        raise UserError(f"the data has classes {source.class_names}, the model {run.class_names}; give matching folders")
    duplicates = ds.get("on_duplicate", "warn")
    return handle_duplicates(source, request.root, duplicates, ContentHashes()), request.root  # as the run did


def folder_split(folder: Path, class_names: list[str]) -> Split:
    """DIR/<class>/* as it is, read with the run's classes (the tools' --folder)."""
    from imgexp.data.folder import read_matching_split

    if not folder.is_dir():
        raise UserError(f"--folder {folder}: no such folder")
    return read_matching_split(folder, class_names, "skip")


def recorded_split(run: FinishedRun, name: str) -> list[tuple[str, str]] | None:
    """(image, label) rows of split `name` in the run's split.csv; None for a run without one."""
    path = run.path / SPLIT_FILE
    if not path.is_file():
        return None
    rows = []
    with path.open(newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if index >= MAX_SPLIT_ROWS:
                raise UserError(f"{path}: more than {MAX_SPLIT_ROWS} rows; not a split.csv imgexp wrote")
            if row.get("split") == name:
                rows.append((row.get("image", ""), row.get("label", "")))
    return rows


def run_split(run: FinishedRun, name: str) -> Split:
    """The run's own `name` split ("train" or "validation"), the same images it used."""
    from imgexp.data.fingerprint import split_rows

    source, root = run_source(run)
    recorded = recorded_split(run, name)
    if recorded is not None:
        rebuilt = [(image, label) for split, image, label in split_rows(source, root) if split == name]
        if rebuilt != recorded:
            raise UserError(f"{run.path / SPLIT_FILE}: its {name} images are not the ones the run's dataset keys "
                            "list now (the data changed since the run); put the data back as it was, or train again")
    return source.splits()[name]
