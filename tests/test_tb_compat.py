"""Each use of TensorBoard beyond its public API (imgexp/tracking/tb_compat.py), read back by TensorBoard's readers."""

from pathlib import Path

from packaging.version import Version
from tensorboard.plugins.hparams import api_pb2, metadata

from imgexp.tracking import tb_compat
from imgexp.tracking.experiment import Searched, experiment
from imgexp.tracking.tensorboard import TensorBoardRecorder
from tbread import accumulator, hparams_session


def test_an_experiment_summary_is_what_the_hparams_plugin_reads(tmp_path):
    written = experiment([Searched("optimizer.lr", low=1e-4, high=1e-2)], {"optimizer.lr": 1e-3, "model": "cnn"})
    tb_compat.write_summary_event(tmp_path, tb_compat.experiment_summary(written))
    content = accumulator(tmp_path).PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    read = metadata.parse_experiment_plugin_data(content)
    assert [h.name for h in read.hparam_infos] == [h.name for h in written.hparam_infos]
    assert read.hparam_infos[0].domain_interval.max_value == 1e-2


def test_a_session_end_carries_its_status(tmp_path):
    for name, success, status in (("ok", True, api_pb2.STATUS_SUCCESS), ("failed", False, api_pb2.STATUS_FAILURE)):
        recorder = TensorBoardRecorder(tmp_path / name)
        recorder.start_session({"optimizer.lr": 0.01}, session_name=name)
        recorder.end_session(success=success)
        recorder.close()
        assert hparams_session(tmp_path / name) == ({"optimizer.lr": 0.01}, status)


def test_pyproject_bounds_tensorboard_at_the_tested_version():
    import tensorboard

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'"tensorboard>=2.16,<={tb_compat.TESTED_VERSION}"' in pyproject
    assert Version(tensorboard.__version__) <= Version(tb_compat.TESTED_VERSION)


def test_an_image_written_from_its_png_is_what_the_image_plugin_reads(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from imgexp.tracking.tensorboard import png_bytes

    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    recorder = TensorBoardRecorder(tmp_path)
    recorder.image("grid", png_bytes(pixels), "what it shows")
    recorder.close()
    acc = accumulator(tmp_path)
    (event,) = acc.Tensors("grid")
    assert acc.SummaryMetadata("grid").plugin_data.plugin_name == "images"
    assert acc.SummaryMetadata("grid").summary_description == "what it shows"
    width, height, png = event.tensor_proto.string_val
    assert (int(width), int(height)) == (30, 20)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)
