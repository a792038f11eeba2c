"""Read a run's TensorBoard event files back with TensorBoard's own loader."""

import tempfile
import warnings
from pathlib import Path

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


def accumulator(path: Path) -> event_accumulator.EventAccumulator:
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def scalars(path: Path, tag: str) -> list[float]:
    return [float(tensor_util.make_ndarray(e.tensor_proto)) for e in accumulator(path).Tensors(tag)]


def hparams_session(path: Path) -> tuple[dict, int | None]:
    """(hyperparameters of the session started in `path`, its end status or None)."""
    hparams, status = {}, None
    for content in accumulator(path).PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for name, value in data.session_start_info.hparams.items():
                hparams[name] = getattr(value, value.WhichOneof("kind"))
        if data.HasField("session_end_info"):
            status = data.session_end_info.status
    return hparams, status


class TensorBoardServer:
    """`tensorboard --logdir LOGDIR` on 127.0.0.1, asked through its HTTP API as the dashboard asks it."""

    def __init__(self, logdir: Path):
        import socket
        import subprocess
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        tensorboard = Path(sys.executable).with_name("tensorboard")
        self.log = tempfile.TemporaryFile()  # what the server said, for a test that fails (diagnosis())
        self.process = subprocess.Popen([str(tensorboard), "--logdir", str(logdir), "--host", "127.0.0.1",
                                         "--port", str(self.port), "--load_fast", "false"],
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def diagnosis(self) -> str:
        """Whether the server still runs, and the end of what it printed."""
        self.log.seek(0)
        return f"tensorboard exit code {self.process.poll()}; its output ends: {self.log.read()[-3000:].decode(errors='replace')}"

    def post(self, route: str, payload: dict, ready=lambda answer: True, timeout: float = 90) -> dict:
        """POST `payload` to /data/plugin/hparams/ROUTE until the answer is `ready` (TensorBoard loads
        event files in the background)."""
        import json
        import urllib.request

        from conftest import wait_for

        last = {}

        def answer() -> list[dict] | None:  # in a list: an empty answer can be ready too
            try:
                with urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{self.port}/data/plugin/hparams/{route}", data=json.dumps(payload).encode(),
                        headers={"Content-Type": "application/json"}), timeout=10) as response:
                    last.clear()
                    last.update(json.loads(response.read()))
            except OSError:
                return None
            return [dict(last)] if ready(last) else None

        found = wait_for(answer, timeout, every=1)
        if not found:
            warnings.warn(f"TensorBoard's answer to {route} was not ready after {timeout} s: {last}; {self.diagnosis()}")
        return found[0] if found else last

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


SESSION_GROUPS = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "colParams": [],
                  "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"]}
