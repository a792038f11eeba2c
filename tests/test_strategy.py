"""trainer.strategy=mirrored: one run trained data-parallel over two devices.

This machine has no GPUs, so the test splits its CPU into two logical devices
before TensorFlow starts, as a two-GPU host would present them, then runs the
real CLI entry point in that process.
"""

import json
import subprocess
import sys

from conftest import TINY, cli_env

TWO_DEVICES_THEN_CLI = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from imgexp.app import main
sys.argv = ["imgexp", *sys.argv[1:]]
main()
"""


def test_mirrored_strategy_trains_on_two_devices(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", TWO_DEVICES_THEN_CLI, *TINY, "trainer.strategy=mirrored",
                             f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=cli_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training on 2 devices with MirroredStrategy: /device:CPU:0, /device:CPU:1" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["epochs_run"] == 2
    assert metrics["val_accuracy"] > 0.3  # digits, 10 classes: it learned something
    assert (run_dir / "model.keras").is_file()


def test_multi_worker_mirrored_is_not_offered(tmp_path):
    result = subprocess.run([sys.executable, "-m", "imgexp", "trainer.strategy=multi_worker_mirrored"],
                            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "trainer.strategy" in result.stderr and "expected one of [default, mirrored]" in result.stderr
