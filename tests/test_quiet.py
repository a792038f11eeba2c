"""Start-up is quiet on every path: no TensorFlow C++ start-up lines, retracing warnings or deprecations."""

import re
import subprocess

import pytest

from conftest import TINY, cli_command, cli_env, search_args, unwrapped

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


def test_an_optuna_sweep_with_a_pruner_is_quiet_and_ranked(tmp_path):
    """Hydra's Optuna sweeper (hydra-optuna-sweeper, in the test extra): its trials are ordinary jobs, so the
    pruner compares them in the sweep folder, the HParams experiment declares the interval, and the summary
    ranks them."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'imgexp[optuna]'")
    import json

    from tensorboard.plugins.hparams import metadata

    from tbread import accumulator

    sweep = tmp_path / "sweep"
    result = run_quietly("-m", "hydra/sweeper=optuna", "optimizer.lr=interval(1e-4,1e-1)", "hydra.sweeper.n_trials=3",
                         "hydra.sweeper.direction=maximize", *TINY, "trainer.epochs=3", "pruner=median",
                         "pruner.warmup_epochs=1", "pruner.min_trials=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    statuses = [json.loads((sweep / str(job) / "metrics.json").read_text())["status"] for job in range(3)]
    assert set(statuses) <= {"finished", "pruned"} and statuses[0] == "finished", statuses
    assert "3 jobs in" in unwrapped(result.stdout) and "ranked by val_accuracy" in unwrapped(result.stdout)
    content = accumulator(sweep / "hparams_experiment").PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    [lr] = [h for h in metadata.parse_experiment_plugin_data(content).hparam_infos if h.name == "optimizer.lr"]
    assert (lr.domain_interval.min_value, lr.domain_interval.max_value) == (1e-4, 1e-1)


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
