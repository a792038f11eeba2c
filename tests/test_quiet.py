"""Start-up is quiet on every path: no TensorFlow C++ start-up lines, retracing warnings or deprecations."""

import re
import subprocess

import pytest

from conftest import TINY, cli_command, cli_env, search_args

NOISE = re.compile(r"All log messages before absl|oneDNN custom operations|Could not find cuda drivers|cuInit"
                   r"|retracing|tf\.lite\.Interpreter is deprecated|WARNING:absl|XNNPACK delegate"
                   r"|fully_quantize|Statistics for quantized inputs|UserWarning|DeprecationWarning")


def run_quietly(*args, cwd, module="imgexp"):
    env = cli_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # as in a user's shell
    result = subprocess.run(cli_command(*args, module=module), cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    noise = [line for line in (result.stderr + result.stdout).splitlines() if NOISE.search(line)]
    assert not noise, noise
    return result


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("quiet")
    run_quietly(*TINY, f"hydra.run.dir={cwd / 'run'}", cwd=cwd)
    return cwd / "run"


def test_a_run_is_quiet(finished_run):
    assert (finished_run / "metrics.json").is_file()


def test_a_multirun_is_quiet(tmp_path):
    run_quietly("-m", *TINY, "trainer.epochs=1", "optimizer.lr=1e-3,1e-4", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                cwd=tmp_path)


def test_a_hyperband_search_is_quiet(tmp_path):
    run_quietly(*search_args(tmp_path, {"optimizer.lr": [0.01, 0.003]}, "tuner.max_epochs=4", "tuner.factor=2",
                             tuner="hyperband"), cwd=tmp_path)


@pytest.mark.parametrize("module, extra", [
    ("imgexp.predict", ["{run}/../run"]),
    ("imgexp.evaluate", []),
    ("imgexp.compare", []),
    *(("imgexp.export", ["--format", fmt, "--output", f"{{tmp}}/model.{fmt}"]) for fmt in ("tflite", "h5", "savedmodel")),
    ("imgexp.export", ["--format", "tflite", "--quantize", "int8", "--max-accuracy-drop", "100",  # quiet, whatever it costs
                       "--output", "{tmp}/model-int8.tflite"]),
])
def test_each_tool_is_quiet(finished_run, tmp_path, module, extra):
    if module == "imgexp.predict":
        from PIL import Image
        import numpy as np

        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "one.png")
        extra = [str(tmp_path / "one.png")]
    run_quietly(str(finished_run), *(e.format(run=finished_run, tmp=tmp_path) for e in extra), cwd=tmp_path,
                module=module)
