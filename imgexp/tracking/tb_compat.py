"""Every use of TensorBoard beyond its public summary API, in one place (as tuning/kt_compat.py is for
KerasTuner).

TensorBoard documents HParams as `tensorboard.plugins.hparams.api` inside a TensorFlow summary writer.
imgexp also writes an HParams experiment with its own domains and column order (the plugin's metadata
module and protos, written with TensorBoard's own event-file writer), ends a session with its
status (the plugin's summary module) and writes images it has encoded already (the image plugin's
metadata module). tests/test_tb_compat.py reads each back with TensorBoard's own
readers; pyproject.toml bounds tensorboard at TESTED_VERSION.
"""

import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

TESTED_VERSION = "2.21.0"  # the newest TensorBoard these were checked against


def experiment_summary(experiment: api_pb2.Experiment) -> summary_pb2.Summary:
    """The summary TensorBoard's HParams plugin reads an experiment (columns, domains) from."""
    plugin_data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.EXPERIMENT_TAG, metadata=metadata.create_summary_metadata(plugin_data),
                      tensor=metadata.NULL_TENSOR)
    return summary


def write_summary_event(folder: Path, summary: summary_pb2.Summary) -> None:
    """One event file in `folder` holding `summary` at step 0 (TensorBoard's writer, no TensorFlow summary op)."""
    writer = EventFileWriter(str(folder))
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    writer.close()


def image_summary(name: str, png: bytes, width: int, height: int, description: str | None = None) -> bytes:
    """The serialized summary tf.summary.image writes for one image, made from its PNG bytes: the
    strings [width, height, png] under the image plugin's metadata. A PNG encoded once is written
    again without encoding it again (0.12 s for a grid of 16 photos of 128 px)."""
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.util import tensor_util

    summary = summary_pb2.Summary()
    summary.value.add(tag=name, metadata=image_metadata.create_summary_metadata(None, description),
                      tensor=tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), png]))
    return summary.SerializeToString()


def session_end_bytes(success: bool) -> bytes:
    """The serialized summary that ends an HParams session with its status."""
    # The plugin's summary module imports TensorFlow: only here, where a run has imported it already
    # (imgexp.tensorflow_runtime, without its C++ start-up lines); a sweep's parent process never needs it.
    from tensorboard.plugins.hparams import summary as hp_summary

    status = api_pb2.STATUS_SUCCESS if success else api_pb2.STATUS_FAILURE
    return hp_summary.session_end_pb(status).SerializeToString()
