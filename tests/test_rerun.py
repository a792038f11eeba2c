"""python -m imgexp.rerun: a folder someone sent is read as data; whatever in it names code is refused."""

import pytest
import yaml

from conftest import TINY, error_lines, run_cli
from imgexp.errors import UserError
from imgexp.tools.rerun import overrides_of, read_run_config


def best_folder(tmp_path, extra: dict):
    best = tmp_path / "best"
    best.mkdir()
    config = {"choices": {"model": "cnn", "dataset": "digits"}, "model": {"name": "cnn", "dropout": 0.25},
              "optimizer": {"name": "adam", "lr": 0.003}, **extra}
    (best / "best.yaml").write_text(yaml.safe_dump(config))
    return best


@pytest.mark.parametrize("extra, refused", [
    ({"hydra": {"callbacks": {"x": {"_target_": "numpy.load", "file": "payload.npy", "allow_pickle": True}}}},
     "hydra node"),
    ({"trainer": {"epochs": 1, "_target_": "os.system"}}, "trainer._target_ is refused"),
    ({"dataset": {"path": "${oc.env:HOME}"}}, "interpolation"),
    ({"shell": {"cmd": "x"}}, "shell is not a config group"),
])
def test_a_best_yaml_that_names_code_is_refused(tmp_path, extra, refused):
    best = best_folder(tmp_path, extra)
    with pytest.raises(UserError, match=refused):
        read_run_config(best)
    result = run_cli(str(best), cwd=tmp_path, module="imgexp.rerun", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [l for l in result.stderr.splitlines() if l.startswith("imgexp.rerun: error:")]
    assert refused in line
    assert not (tmp_path / "outputs").exists(), "nothing ran"


def test_values_become_quoted_overrides():
    config, choices = {"model": {"name": "cnn", "filters": [8, 16]}, "dataset": {"path": "my photos/it's"}}, {}
    overrides = overrides_of(config, choices)
    assert overrides == ["model=cnn", "model.filters=[8,16]", "dataset.path='my photos/it\\'s'"]


def test_a_run_folder_reruns_with_a_change(tmp_path):
    first = tmp_path / "first"
    assert run_cli(*TINY, "trainer.epochs=1", "optimizer.lr=0.004", f"hydra.run.dir={first}", cwd=tmp_path).returncode == 0
    again = tmp_path / "again"
    result = run_cli(str(first), "trainer.epochs=2", f"hydra.run.dir={again}", cwd=tmp_path, module="imgexp.rerun")
    assert result.returncode == 0, result.stderr[-2000:]
    ran = yaml.safe_load((again / ".hydra" / "config.yaml").read_text())
    assert ran["optimizer"]["lr"] == 0.004 and ran["trainer"]["epochs"] == 2 and ran["model"]["filters"] == [8, 16]
    assert not error_lines(result.stderr)
