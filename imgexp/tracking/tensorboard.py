"""What a run writes to TensorBoard beside Keras' per-epoch scalars.

One HParams session per run (start, then end with its status), the run's
final metrics as scalars in the session's own folder, and images.
"""

import io
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.plugins.hparams import api as hp

from imgexp.tracking.hparams import HParamValue
from imgexp.tracking.tb_compat import image_summary, session_end_bytes


class TensorBoardRecorder:
    """Writes into `tb_dir`, the HParams session folder of one run."""

    def __init__(self, tb_dir: Path):
        self.tb_dir = tb_dir
        self.writer = tf.summary.create_file_writer(str(tb_dir))

    def start_session(self, hparams: dict[str, HParamValue], session_name: str) -> None:
        with self.writer.as_default():
            hp.hparams(hparams, trial_id=session_name)
        self.writer.flush()

    def end_session(self, success: bool) -> None:
        with self.writer.as_default():
            tf.summary.experimental.write_raw_pb(session_end_bytes(success), step=0)
        self.writer.flush()

    def scalars(self, values: dict[str, float], step: int) -> None:
        with self.writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=step)
        self.writer.flush()

    def image(self, name: str, png: bytes, description: str | None = None) -> None:
        """One image, as the bytes of a PNG file."""
        with Image.open(io.BytesIO(png)) as image:  # the header: its size
            width, height = image.size
        with self.writer.as_default():
            tf.summary.experimental.write_raw_pb(image_summary(name, png, width, height, description), step=0)
        self.writer.flush()

    def text(self, name: str, markdown: str) -> None:
        with self.writer.as_default():
            tf.summary.text(name, markdown, step=0)
        self.writer.flush()

    def png(self, name: str, path: Path) -> None:
        self.image(name, path.read_bytes())

    def close(self) -> None:
        self.writer.close()


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 [H, W, C] image as a PNG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def image_grid(images: np.ndarray, columns: int = 4) -> np.ndarray:
    """Tile up to columns**2 float images in [0, 255] into one uint8 image."""
    images = np.clip(np.asarray(images)[: columns * columns], 0, 255).astype(np.uint8)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = image
    return grid


def record_failed_session(tb_dir: Path, hparams: dict[str, HParamValue], session_name: str) -> None:
    """A session that failed before it could train: started and ended as failed."""
    recorder = TensorBoardRecorder(tb_dir)
    recorder.start_session(hparams, session_name)
    recorder.end_session(success=False)
    recorder.close()
