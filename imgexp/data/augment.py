"""Batch augmentation: ImageDataGenerator's random affine transforms in one resampling.

Chaining Keras' RandomRotation, RandomTranslation, RandomZoom, RandomShear and
RandomFlip resamples the whole batch once per layer (about 2x the tutorial's
throughput here). This layer composes rotation, shift, shear, zoom and flips
into one matrix per image, exactly as `ImageDataGenerator.apply_affine_transform`
does, and resamples once with `keras.ops.image.affine_transform`.
"""

import math

import keras
import tensorflow as tf


def _matrices(rows: list[list[tf.Tensor]]) -> tf.Tensor:
    """[B, 3, 3] from a 3x3 nested list of [B] tensors."""
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def affine_transforms(
    theta: tf.Tensor, dx: tf.Tensor, dy: tf.Tensor, shear: tf.Tensor, zx: tf.Tensor, zy: tf.Tensor,
    flip_x: tf.Tensor, flip_y: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor,
) -> tf.Tensor:
    """[B, 8] output->input transforms for keras.ops.image.affine_transform.

    The product ImageDataGenerator.apply_affine_transform builds (rotation @ shift
    @ shear @ zoom about the centre, angles in degrees, shifts in pixels), in
    (x, y) pixel coordinates, followed by the optional flips.
    """
    theta, shear = theta * (math.pi / 180.0), shear * (math.pi / 180.0)
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    zeros, ones = tf.zeros_like(theta), tf.ones_like(theta)
    cos, sin = tf.cos(theta), tf.sin(theta)
    rotate = _matrices([[cos, -sin, zeros], [sin, cos, zeros], [zeros, zeros, ones]])
    shift = _matrices([[ones, zeros, dx], [zeros, ones, dy], [zeros, zeros, ones]])
    shear_m = _matrices([[ones, -tf.sin(shear), zeros], [zeros, tf.cos(shear), zeros], [zeros, zeros, ones]])
    zoom_m = _matrices([[zx, zeros, zeros], [zeros, zy, zeros], [zeros, zeros, ones]])
    matrix = rotate @ shift @ shear_m @ zoom_m

    # About the image centre, as transform_matrix_offset_center does.
    o_x, o_y = w / 2.0 - 0.5, h / 2.0 - 0.5
    translate = lambda x, y: tf.stack([tf.stack([1.0, 0.0, x]), tf.stack([0.0, 1.0, y]), [0.0, 0.0, 1.0]])  # noqa: E731
    matrix = translate(o_x, o_y)[None] @ matrix @ translate(-o_x, -o_y)[None]

    # Flips come after the affine transform: output x reads the transformed (w - 1 - x).
    sx, sy = tf.where(flip_x, -1.0, 1.0), tf.where(flip_y, -1.0, 1.0)
    flip = _matrices([[sx, zeros, (1 - sx) / 2 * (w - 1)], [zeros, sy, (1 - sy) / 2 * (h - 1)], [zeros, zeros, ones]])
    matrix = matrix @ flip
    return tf.reshape(matrix, [-1, 9])[:, :8]


class RandomAffine(keras.layers.Layer):
    """Random rotation/shift/shear/zoom/flip of a batch, one transform per image.

    Units follow ImageDataGenerator: rotation and shear in degrees, shifts as
    fractions of height/width, zoom factor per axis in [1 - zoom, 1 + zoom].
    Call it with a stateless seed (int32 [2]) so runs are repeatable even when
    tf.data maps batches in parallel.
    """

    def __init__(
        self,
        rotation: float = 0.0,
        width_shift: float = 0.0,
        height_shift: float = 0.0,
        shear: float = 0.0,
        zoom: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        fill_mode: str = "nearest",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rotation, self.shear, self.zoom = rotation, shear, zoom
        self.width_shift, self.height_shift = width_shift, height_shift
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.fill_mode = fill_mode

    @property
    def is_identity(self) -> bool:
        return not any(
            [self.rotation, self.width_shift, self.height_shift, self.shear, self.zoom,
             self.horizontal_flip, self.vertical_flip]
        )

    def sample(self, batch: int | tf.Tensor, height: tf.Tensor, width: tf.Tensor, seed: tf.Tensor) -> dict:
        """Per-image parameters in ImageDataGenerator's units (degrees, pixels)."""
        seeds = tf.random.experimental.stateless_split(seed, 8)
        uniform = lambda i, lo, hi: tf.random.stateless_uniform([batch], seeds[i], lo, hi)  # noqa: E731
        flip = lambda i, on: uniform(i, 0.0, 1.0) < (0.5 if on else 0.0)  # noqa: E731
        return {
            "theta": uniform(0, -self.rotation, self.rotation),
            "dx": uniform(1, -self.width_shift, self.width_shift) * tf.cast(width, tf.float32),
            "dy": uniform(2, -self.height_shift, self.height_shift) * tf.cast(height, tf.float32),
            "shear": uniform(3, -self.shear, self.shear),
            "zx": uniform(4, 1.0 - self.zoom, 1.0 + self.zoom),
            "zy": uniform(5, 1.0 - self.zoom, 1.0 + self.zoom),
            "flip_x": flip(6, self.horizontal_flip),
            "flip_y": flip(7, self.vertical_flip),
        }

    def call(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if self.is_identity:
            return images
        shape = tf.shape(images)
        params = self.sample(shape[0], shape[1], shape[2], seed)
        transforms = affine_transforms(height=shape[1], width=shape[2], **params)
        return keras.ops.image.affine_transform(
            images, transforms, interpolation="bilinear", fill_mode=self.fill_mode
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rotation": self.rotation, "width_shift": self.width_shift, "height_shift": self.height_shift,
            "shear": self.shear, "zoom": self.zoom, "horizontal_flip": self.horizontal_flip,
            "vertical_flip": self.vertical_flip, "fill_mode": self.fill_mode,
        }
