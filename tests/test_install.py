"""imgexp installed both ways (`pip install .` and `pip install -e .`) finds conf/ from any directory.

conf/ sits at the top of the checkout and installs as the package imgexp.conf.
Each install goes into a fresh virtual environment that borrows the test
environment's dependencies (TensorFlow and the rest) but not its imgexp, so
the copy under test is the one just installed.
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import TINY, cli_env

CHECKOUT = Path(__file__).resolve().parent.parent


def dependencies_without_imgexp(tmp_path: Path) -> Path:
    """A folder of links to this environment's installed packages, imgexp's own entries left out."""
    links = tmp_path / "deps"
    links.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "imgexp" not in entry.name and not entry.name.endswith(".pth"):
            (links / entry.name).symlink_to(entry)
    return links


def venv_with(tmp_path: Path, *pip_args: str) -> Path:
    """A new venv holding imgexp installed with `pip install *pip_args`; returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed_dependencies.pth").write_text(str(dependencies_without_imgexp(tmp_path)) + "\n")
    result = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", *pip_args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return python


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["regular", "editable"])
def test_installed_imgexp_runs_from_outside_the_checkout(tmp_path, mode):
    python = venv_with(tmp_path, *(["-e"] if mode == "editable" else []), str(CHECKOUT))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}

    where = subprocess.run([str(python), "-c", "import imgexp.conf, os; print(os.path.dirname(imgexp.conf.__file__))"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    conf_dir = Path(where.stdout.strip())
    if mode == "editable":
        assert conf_dir == CHECKOUT / "conf", "an editable install reads the checkout's conf/"
    else:
        assert conf_dir.is_relative_to(tmp_path / "venv") and (conf_dir / "model" / "cnn.yaml").is_file()

    cfg = subprocess.run([str(python), "-m", "imgexp", "--cfg", "job", "model=resnet50"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=120)
    assert cfg.returncode == 0, cfg.stderr
    assert "name: resnet50" in cfg.stdout

    # Inside the checkout Python imports imgexp from the source tree (its own conf/ is beside it).
    in_checkout = subprocess.run([str(python), "-m", "imgexp", "--cfg", "job", "model=mobilenetv2"], cwd=CHECKOUT,
                                 env=env, capture_output=True, text=True, timeout=120)
    assert in_checkout.returncode == 0, in_checkout.stderr
    assert "name: mobilenetv2" in in_checkout.stdout

    run = subprocess.run([str(python), "-m", "imgexp", *TINY, "trainer.epochs=1"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(list(elsewhere.glob("outputs/*/*/metrics.json"))) == 1, "the run's folder is under the working directory"
    assert not os.path.exists(CHECKOUT / "conf" / "outputs")
