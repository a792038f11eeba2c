"""Shared fixtures: generated image folders, config composition, the CLI in a subprocess."""

import contextlib
import io
import os
import subprocess
import time
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A tiny, fast run: small images, a small CNN, few epochs, quiet.
TINY = [
    "dataset.image_size=[16,16]", "model.filters=[8,16]", "model.dense_units=32",
    "trainer.epochs=2", "trainer.verbose=0",
]


def striped_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Class 0: horizontal stripes, class 1: vertical stripes, class 2: flat; plus noise."""
    image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    if label == 0:
        image[::4] = 255
    elif label == 1:
        image[:, ::4] = 255
    else:
        image[:] = 128
    return image


def write_class_folders(root: Path, class_names: list[str], per_class: int, size: int = 24, seed: int = 0) -> Path:
    """root/<class>/<n>.jpg for each class, images a CNN can tell apart."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(class_names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(striped_image(label, size, rng)).save(root / name / f"{i:03d}.jpg", quality=95)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """The tutorial's layout with two classes: train/ and validation/."""
    root = tmp_path_factory.mktemp("images")
    write_class_folders(root / "train", ["horizontal", "vertical"], per_class=24, seed=1)
    write_class_folders(root / "validation", ["horizontal", "vertical"], per_class=8, seed=2)
    return root


@pytest.fixture(scope="session")
def standin_mobilenetv2(tmp_path_factory) -> str:
    """A `model.weights` file with which a frozen MobileNetV2 gives the digits informative features
    (tests/standin_backbone.py): with `model.weights=null` they are ~1e-13 for every image."""
    from sklearn.datasets import load_digits
    from standin_backbone import standin_weights

    digits = np.kron(load_digits().images[:256], np.ones((4, 4)))  # 32 x 32, values 0-16
    images = np.clip(digits * 16, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=-1)
    path = tmp_path_factory.mktemp("backbones") / "mobilenetv2.weights.h5"
    return str(standin_weights("mobilenetv2", images, path))


def cli_env() -> dict[str, str]:
    """The environment a user's shell would give the CLI (quiet TensorFlow, Hydra's own error mode)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def cli_command(*args: str, module: str = "imgexp") -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, module: str = "imgexp") -> subprocess.CompletedProcess:
    """`python -m imgexp ARGS` in a fresh process, as a user runs it."""
    return subprocess.run(cli_command(*args, module=module), cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    """imgexp's own one-line errors in `stderr` (not TensorFlow's or Python's chatter)."""
    return [line for line in stderr.splitlines() if line.startswith("imgexp: error:")]


@dataclass
class Outcome:
    """How `python -m imgexp ...` ended, named as subprocess.CompletedProcess names it."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(*args: str, cwd: Path) -> Outcome:
    """`python -m imgexp ARGS` through the same entry point in this process, for tests where a
    separate process adds nothing (and costs TensorFlow's start-up)."""
    from hydra.core.global_hydra import GlobalHydra

    from imgexp.app import main

    # absl's log handler (installed with TensorFlow) writes to the sys.stderr of the moment it was made,
    # pytest's capture here, and closes that stream when Hydra reconfigures logging while sys.stderr is
    # another one (redirected below). Pointed at the real stderr it is never closed.
    from absl import logging as absl_logging

    absl_logging.get_absl_handler().python_handler.setStream(sys.__stderr__)
    saved = (os.getcwd(), sys.argv, dict(os.environ))
    out, err = io.StringIO(), io.StringIO()
    os.chdir(cwd)  # where Hydra puts outputs/
    sys.argv = ["imgexp", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
    finally:
        GlobalHydra.instance().clear()  # as a new process would find it
        os.chdir(saved[0])
        sys.argv = saved[1]
        os.environ.clear()
        os.environ.update(saved[2])
    return Outcome(code, out.getvalue(), err.getvalue())


def search_args(tmp_path: Path, space: dict, *extra: str, tuner: str = "grid") -> list[str]:
    """A search over `space`, written as search_space=test in a config dir of the test's own."""
    (tmp_path / "conf" / "search_space").mkdir(parents=True, exist_ok=True)
    (tmp_path / "conf" / "search_space" / "test.yaml").write_text(yaml.safe_dump(space))
    return ["--config-dir", str(tmp_path / "conf"), f"tuner={tuner}", "search_space=test",
            f"search.dir={tmp_path / 'search'}", *TINY, "trainer.epochs=1", *extra]


def unwrapped(text: str) -> str:
    """`text` on one line, single-spaced: rich wraps a table's title at the console's width, which
    depends on where the tests run (a long temporary folder under pytest-xdist)."""
    return " ".join(text.split())


def wait_for(condition, timeout: float, every: float = 0.1, process: subprocess.Popen | None = None):
    """Poll `condition()` every `every` seconds until it returns something true (returned); None once
    `timeout` seconds pass or `process` has exited (checked one last time then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            return condition() or None
        time.sleep(every)
    return None


def epoch_rows(run_dir: Path) -> list[dict]:
    """history.csv's rows as text, as written."""
    import csv

    return list(csv.DictReader((run_dir / "history.csv").open()))


def trial_dirs(search_dir: Path) -> list[Path]:
    return sorted(search_dir.glob("trial_*"))
