"""Read a run's TensorBoard event files back with TensorBoard's own loader."""

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
