"""A finished run directory as the tools that use it see it (predict, and later evaluate/export).

A run, a multirun job, a tuner trial or a search's best/ all hold model.keras
and labels.json. The model carries its own training image size (its first
layer resizes to it), so nothing else is needed to use it.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from imgexp.errors import UserError

MODEL_FILE = "model.keras"
BEST_CONFIG_FILE = "best.yaml"  # in a search's best/: the best trial's config, runnable with --config-name best
RESIZE_LAYER = "resize"  # imgexp.models.serving: the saved model's first layer


@dataclass
class FinishedRun:
    path: Path
    class_names: list[str]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def load_model(self):
        import keras  # heavy: only once a command really needs the model

        try:
            return keras.models.load_model(self.model_path)  # safe_mode stays on
        except ValueError as err:
            if "safe_mode" not in str(err):
                raise
            raise UserError(f"{self.model_path}: refused, it holds code that would run on loading "
                            "(a Lambda layer); imgexp never loads such models") from err


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
    if not (path / "labels.json").is_file():
        raise UserError(f"{path}: no labels.json beside {MODEL_FILE}; was the run finished?")
    return FinishedRun(path, json.loads((path / "labels.json").read_text()))
