"""The command line as a user meets it: fast help, one-line config errors, conf/ found anywhere."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, cli_command, cli_env, error_lines, run_cli

MODEL_OPTIONS = ("model: cnn, convnexttiny, efficientnetb0, efficientnetv2b0, inceptionv3, mobilenetv2, "
                 "mobilenetv3large, mobilenetv3small, resnet50")


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"]])
def test_help_and_cfg_answer_without_tensorflow(args):
    code = (
        "import sys\n"
        f"sys.argv = ['imgexp', *{args!r}]\n"
        "from imgexp.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ("dataset" in result.stdout) and ("model" in result.stdout)

def test_console_script_finds_conf_from_any_directory(tmp_path):
    script = shutil.which("imgexp", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script, "the `imgexp` console script is installed beside python"
    result = subprocess.run([script, "--cfg", "job", "model=mobilenetv2"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "name: mobilenetv2" in result.stdout


@pytest.mark.parametrize(
    "override, names",
    [
        ("model.dropuot=0.3", "model.dropuot"),
        ("optimizer.lr=fast", "optimizer.lr"),
        ("model=resnet5", "model=resnet5"),
        ("trainer.precision=float8", "trainer.precision"),
        ("dataset.on_bad_image=ignore", "dataset.on_bad_image"),
        ("dataset=folder", "dataset.path"),
        ("dataset.path=/no/such/folder", "dataset.path"),
        ("dataset.image_size=[32]", "dataset.image_size"),
        ("trainer.epochs=0", "trainer.epochs"),
        ("model=cnn", None),  # control: a valid override composes (checked with --cfg job)
    ],
)
def test_config_errors_are_one_clear_line(override, names, tmp_path):
    args = [override, "--cfg", "job"] if names is None else [override, "hydra.run.dir=" + str(tmp_path / "run")]
    if override == "dataset.path=/no/such/folder":
        args.insert(0, "dataset=folder")
    result = run_cli(*args, timeout=120)
    if names is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and names in lines[0], result.stderr
    assert not (tmp_path / "run" / "model.keras").exists()


def test_help_lists_only_real_options():
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0, result.stderr
    groups = result.stdout.split("== Config groups ==")[1].split("== Tools")[0]
    assert MODEL_OPTIONS in groups
    assert "schema" not in groups, groups


def test_a_run_prints_no_tensorflow_start_up_lines(tmp_path):
    result = run_cli(*TINY, "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
    for noise in ("E0000", "I0000", "W0000", "cuInit", "absl::InitializeLog", "cudart_stub"):
        assert noise not in result.stderr, result.stderr


def test_tf_cpp_min_log_level_0_shows_tensorflows_own_lines_again():
    code = "from imgexp.tensorflow_runtime import import_tensorflow; import_tensorflow()"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**cli_env(), "TF_CPP_MIN_LOG_LEVEL": "2"})
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**cli_env(), "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    absl_line = re.compile(r"^[IWE]\d{4} ", re.MULTILINE)
    assert not absl_line.search(quiet.stderr), quiet.stderr
    assert absl_line.search(loud.stderr), "TensorFlow logs its start-up at level 0"


@pytest.mark.parametrize("args, names", [
    (["dataset.image_size=[32,"], "dataset.image_size=[32,: not a valid override"),
    (["-m", "optimizer.lr=1e-3", "--cfg", "job"], "Only one of --run, --multirun"),
])
def test_malformed_command_lines_are_one_clear_line(args, names):
    result = run_cli(*args, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and names in lines[0], result.stderr


def test_runs_started_in_the_same_second_get_their_own_folders():
    """The default run folder carries microseconds: two runs in the same second never share one."""
    import yaml
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf

    setup_globals()  # Hydra's own resolvers, ${now:...} among them, as a Hydra app registers them at start

    conf = Path(__file__).resolve().parents[1] / "conf" / "config.yaml"
    pattern = yaml.safe_load(conf.read_text())["hydra"]["run"]["dir"]
    for _ in range(100):  # until both fall in the same second (nearly always the first time)
        first, second = (OmegaConf.create({"dir": pattern}).dir for _ in range(2))
        if first.rsplit(".", 1)[0] == second.rsplit(".", 1)[0]:
            break
    assert first.rsplit(".", 1)[0] == second.rsplit(".", 1)[0], "two folders in the same second"
    assert first != second


def test_parallel_runs_get_their_own_folders_and_a_folder_without_epochs_blocks_nothing(tmp_path):
    """Parallel runs from a script just work; a folder where no epoch trained never blocks a run."""
    commands = [cli_command(*TINY, "trainer.epochs=1", f"optimizer.lr={lr}") for lr in (0.01, 0.003)]
    processes = [subprocess.Popen(c, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for c in commands]
    outcomes = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-2000:] for _, err in outcomes]
    assert len(list(tmp_path.glob("outputs/*/*/metrics.json"))) == 2

    failed = run_cli("model.dropout=1.5", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=120)
    assert failed.returncode == 2 and (tmp_path / "run" / ".hydra" / "config.yaml").exists()
    again = run_cli(*TINY, "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
