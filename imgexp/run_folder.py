"""The run folder: every file name in it, the one test of "finished", and reading it back.

A run, a multirun job, a search trial and a search's best/ are all run folders.
Training writes model.keras, then metrics.json last: metrics.json is the mark of
a finished run, for the run itself, the run-dir guard, the tuner, compare and
the tools alike. Nothing here imports TensorFlow.
"""

import csv
import json
import logging
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imgexp import safe_write
from imgexp.errors import UserError
from imgexp.folder_lock import is_locked

log = logging.getLogger(__name__)

CONFIG_FILE = ".hydra/config.yaml"  # the composed config (Hydra writes it; trials write the same)
OVERRIDES_FILE = ".hydra/overrides.yaml"  # the overrides that made it
HYDRA_FILE = ".hydra/hydra.yaml"  # Hydra's own config; `hydra.runtime.choices` names the group options
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"  # class names in output order
METRICS_FILE = "metrics.json"  # written last: the run finished
FAILED_FILE = "failed.json"  # the error of a run that failed
PRUNED_FILE = "pruned.json"  # the pruner's decision (epoch, reason), written when it stops the run
HISTORY_FILE = "history.csv"  # one row per epoch, appended across resumes
HISTORY_PLOT = "history.png"
CONFUSION_PLOT = "confusion_matrix.png"
CONFUSION_FILE = "confusion_matrix.csv"  # its counts: true classes as rows, predictions as columns
REPORT_FILE = "classification_report.txt"
PROVENANCE_FILE = "provenance.json"  # versions, devices, host, command, times, git, data fingerprint
SPLIT_FILE = "split.csv"  # every image: its split, its path (or index) and its label
TENSORBOARD_DIR = "tb"
CHECKPOINTS_DIR = "checkpoints"  # best weights so far; removed once model.keras holds them
BEST_WEIGHTS = f"{CHECKPOINTS_DIR}/best.weights.h5"
# While the head trains on stored features (training/features.py) the backbone cannot change, so
# each epoch keeps the head's weights alone (KB instead of the whole model's MB), and the part
# before the head is written once per run.
HEAD_BEST_WEIGHTS = f"{CHECKPOINTS_DIR}/best.head.weights.h5"  # newer than BEST_WEIGHTS when present
FROZEN_PART_WEIGHTS = f"{CHECKPOINTS_DIR}/frozen_part.weights.h5"  # what the head-only files go with
HEAD_PHASE_WEIGHTS = f"{CHECKPOINTS_DIR}/head_phase.weights.h5"  # two-phase fine-tuning: the head is done
HEAD_PHASE_FILE = f"{CHECKPOINTS_DIR}/head_phase.json"  # ... after this many epochs (where phase 2 starts)
LAST_WEIGHTS = "last.weights.h5"  # a Hyperband trial's weights at its last epoch: where a promoted trial goes on
LAST_OPTIMIZER = "last.optimizer.npz"  # ... and its optimizer's state (Adam's moments, the step count)
BACKUP_DIR = "backup"  # backup/<phase>/epoch-<n>[.head].weights.h5: the training state a killed run resumes from
EVALUATION_DIR = "evaluation"  # python -m imgexp.evaluate: evaluation/<split>/
EXPORT_DIR = "export"  # python -m imgexp.export
BEST_CONFIG_FILE = "best.yaml"  # in a search's best/: its choices and values, as data (python -m imgexp.rerun)
RESIZE_LAYER = "resize"  # the saved model's first layer (imgexp.models.serving)


def is_finished(run_dir: Path) -> bool:
    """metrics.json is there: it is written last, and whole (imgexp.safe_write)."""
    return (run_dir / METRICS_FILE).is_file()


def write_json(path: Path, data: Any, root: Path | None = None) -> None:
    """A JSON file, whole or not at all, never through a link out of `root` (imgexp.safe_write)."""
    safe_write.write_json(path, data, root)


def write_failure(run_dir: Path, message: str) -> None:
    write_json(run_dir / FAILED_FILE, {"error": message, "time": time.time()}, run_dir)


def write_config(run_dir: Path, config: dict[str, Any], overrides: list[str], choices: dict[str, Any]) -> None:
    """The composed config, its overrides and group choices, where Hydra keeps them for a CLI run."""
    safe_write.write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False), run_dir)
    safe_write.write_text(run_dir / OVERRIDES_FILE, yaml.safe_dump(list(overrides)), run_dir)
    safe_write.write_text(run_dir / HYDRA_FILE, yaml.safe_dump({"hydra": {"runtime": {"choices": dict(choices)}}}),
                          run_dir)


MAX_YAML_BYTES = 1 << 20  # a run's config is a few KB; a folder someone sent may hold anything


class NoAliasLoader(yaml.SafeLoader):
    """safe_load without anchors and aliases: six levels of nine aliases in 560 bytes expand to 9^6 nodes
    (45 s and 1.9 GB); imgexp never writes an alias, so one in a run folder is refused."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            raise yaml.YAMLError(f"an alias ({self.peek_event().anchor}) at {self.peek_event().start_mark}; "
                                 "imgexp reads run folders without aliases")
        return super().compose_node(parent, index)


def load_yaml_text(path: Path) -> Any:
    """A bounded, alias-free YAML file (raises UserError naming it when it is neither)."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise UserError(f"{path}: {size:,} bytes, more than the {MAX_YAML_BYTES:,} a run folder's YAML may have; "
                        "it is not a config imgexp wrote")
    try:
        return yaml.load(path.read_text(), Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader, aliases refused
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a config imgexp can read ({str(err).splitlines()[0]})") from None


def read_yaml(path: Path) -> Any:
    """A YAML file of a run folder, or None when it is missing, damaged or refused (said in one log line)."""
    if not path.is_file():
        return None
    try:
        return load_yaml_text(path)
    except UserError as err:
        log.warning("%s; treated as absent", err)
        return None


def read_json(path: Path) -> Any:
    """A JSON file of a run folder, or None when it is missing or damaged (said in one log line)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        log.warning("%s cannot be read (%s); treated as absent", path, err)
        return None


MAXIMIZE = {"val_accuracy": True, "val_loss": False}


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv's rows by epoch (0-based, as Keras logs them); a re-run epoch keeps its last row. A row
    cut short (a file from before atomic writes, a copy cut short) is skipped."""
    if not path.exists():
        return []
    rows = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            try:
                rows[int(r["epoch"])] = {k: float(v) for k, v in r.items() if v != ""}
            except (TypeError, ValueError):  # a missing field reads as None
                continue
    return [rows[e] for e in sorted(rows)]


def best_row(history: list[dict[str, float]], monitor: str) -> dict[str, float] | None:
    """The row with the best monitored value (the first, on ties; NaN never), or None."""
    rows = [r for r in history if monitor in r and not math.isnan(r[monitor]) and not math.isnan(r.get("loss", 0.0))]
    if not rows:
        return None
    pick = max if MAXIMIZE[monitor] else min
    return pick(rows, key=lambda r: r[monitor])


@dataclass
class RunRecord:
    """What a run folder says about itself, for tables and comparisons."""

    path: Path
    status: str  # finished | pruned | failed | running (a process holds it) | interrupted
    config: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, Any] = field(default_factory=dict)  # group -> option, e.g. model: cnn
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    data: str = ""  # the data fingerprint (sha256) from provenance.json; "" for runs from before it

    @property
    def ended(self) -> bool:
        """Finished, to its last epoch or stopped by the pruner: it has its metrics and model."""
        return self.status in ("finished", "pruned")


def read_run(run_dir: Path) -> RunRecord:
    hydra = read_yaml(run_dir / HYDRA_FILE) or {}
    status = "running" if is_locked(run_dir) else "interrupted"
    record = RunRecord(run_dir, status, read_yaml(run_dir / CONFIG_FILE) or {},
                       read_yaml(run_dir / OVERRIDES_FILE) or [],
                       dict(hydra.get("hydra", {}).get("runtime", {}).get("choices") or {}))
    record.data = ((read_json(run_dir / PROVENANCE_FILE) or {}).get("data") or {}).get("sha256", "")
    metrics, failure = read_json(run_dir / METRICS_FILE), read_json(run_dir / FAILED_FILE)
    if isinstance(metrics, dict):
        record.metrics = metrics
        record.status = record.metrics.get("status", "finished")
    elif isinstance(failure, dict):
        record.status, record.error = "failed", str(failure.get("error", ""))
    return record


def is_run_folder(path: Path) -> bool:
    """A run, job or trial (it has its config or a failure), or a search's best/."""
    return path.is_dir() and any((path / name).is_file() for name in (CONFIG_FILE, FAILED_FILE, BEST_CONFIG_FILE))


def find_runs(paths: list[Path]) -> list[RunRecord]:
    """Every run folder at or below `paths`, sorted by path."""
    found = {candidate for path in paths if path.is_dir()
             for candidate in (path, *path.rglob("*")) if is_run_folder(candidate)}
    return [read_run(p) for p in sorted(found)]


@dataclass
class FinishedRun:
    """A finished run folder as the tools use it: its model and class names."""

    path: Path
    class_names: list[str]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def load_model(self):
        import keras  # heavy: only once a command really needs the model

        from imgexp.keras_compat import is_unsafe_model_refusal

        check_complete(self.model_path)
        try:
            return keras.models.load_model(self.model_path)  # safe_mode stays on
        except ValueError as err:
            if not is_unsafe_model_refusal(err):
                raise
            raise UserError(f"{self.model_path}: refused, it holds code that would run on loading "
                            "(a Lambda layer); imgexp never loads such models") from err


def check_complete(model_path: Path) -> None:
    """A .keras file is a zip archive: one cut short (an interrupted copy, a full disk) fails its
    CRC check or has no central directory; say so in one line instead of Keras' traceback."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        broken = str(err)
    if broken is not None:
        raise UserError(f"{model_path}: damaged, not a complete Keras model file ({broken}); "
                        "copy it again, or train the run again in a new folder")


def trained_image_size(model) -> tuple[int, int]:
    """The (height, width) the model was trained at, from its own resizing layer."""
    layer = model.get_layer(RESIZE_LAYER)
    return int(layer.height), int(layer.width)


def open_run(path: Path) -> FinishedRun:
    """Check RUN_DIR and read what describes it; one clear error for each thing missing."""
    if not path.is_dir():
        raise UserError(f"{path}: no such run directory")
    if not (path / MODEL_FILE).is_file():
        raise UserError(f"{path}: no {MODEL_FILE}; give a finished run, a multirun job, a trial or a search's best/")
    if not is_finished(path) or not (path / LABELS_FILE).is_file():
        raise UserError(f"{path}: the run did not finish (no {METRICS_FILE} or {LABELS_FILE}); "
                        "run its command again to resume it")
    return FinishedRun(path, json.loads((path / LABELS_FILE).read_text()))
