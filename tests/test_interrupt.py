"""Ctrl-C: one line saying where it stopped and the command that resumes, exit status 130."""

import json
import re
import shlex
import signal
import subprocess

from conftest import TINY, cli_command, cli_env, run_cli, search_args, wait_for
from imgexp.folder_lock import is_locked
from imgexp.run_folder import find_runs, read_history


def interrupt_when(args, cwd, ready, timeout=300):
    """Start `python -m imgexp ARGS`, send SIGINT (Ctrl-C) once `ready()`; (exit code, stderr)."""
    # A shell's background job (CI may start the suite as one) inherits SIGINT ignored; a user's terminal does not.
    process = subprocess.Popen(cli_command(*args), cwd=cwd, env=cli_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(ready, timeout, every=0.05, process=process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_ctrl_c_of_a_run_is_one_line_and_its_command_resumes(tmp_path):
    args = [*TINY, "trainer.epochs=60", "trainer.early_stopping_patience=0"]
    outputs = tmp_path / "outputs"
    runs = lambda: list(outputs.glob("*/*/history.csv"))  # noqa: E731
    code, stderr = interrupt_when(args, tmp_path, lambda: bool(runs()) and len(read_history(runs()[0])) >= 2)
    assert code == 130
    assert "Traceback" not in stderr
    [line] = [l for l in stderr.splitlines() if l.startswith("imgexp:")]
    assert line.startswith("imgexp: interrupted at epoch ") and "/60; resume with: python -m imgexp " in line
    run_dir = runs()[0].parent
    [record] = find_runs([outputs])
    assert record.status == "interrupted" and not is_locked(run_dir)
    done = len(read_history(run_dir / "history.csv"))
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[-1] == f"hydra.run.dir={run_dir}"
    # The printed command with fewer epochs would be another run; the same command resumes this one.
    resumed = subprocess.run(command[:3] and cli_command(*command[3:]), cwd=tmp_path, env=cli_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming the interrupted run" in resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 60 > done


def test_ctrl_c_of_a_search_says_after_which_trial_and_the_same_command_resumes(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.01, 0.005, 0.003]}, "trainer.epochs=3")
    search_dir = tmp_path / "search" / "grid-test"
    code, stderr = interrupt_when(args, tmp_path, lambda: len(list(search_dir.glob("trial_*/metrics.json"))) >= 1 and bool(list(search_dir.glob("trial_*/history.csv"))[1:]))
    assert code == 130 and "Traceback" not in stderr
    [line] = [l for l in stderr.splitlines() if l.startswith("imgexp:")]
    assert re.match(r"imgexp: interrupted after [12] finished trial\(s\); the same command resumes the search: ", line)
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(list(search_dir.glob("trial_*/metrics.json"))) == 3


def test_a_run_that_fails_before_its_first_epoch_leaves_failed_json(tmp_path):
    from conftest import run_in_process
    from imgexp.run_folder import read_run

    run_dir = tmp_path / "run"
    result = run_in_process("dataset.image_size=[16,16]", "model=mobilenetv2", "model.weights=null",
                            "model.input_size=[8,8]", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    record = read_run(run_dir)
    assert record.status == "failed" and "model.input_size" in record.error, "compare shows it failed, with why"
