"""The batch augmentation reproduces ImageDataGenerator's transforms pixel for pixel."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from imgexp.data.augment import RandomAffine, affine_transforms

ImageDataGenerator = pytest.importorskip("keras.src.legacy.preprocessing.image").ImageDataGenerator
pytest.importorskip("scipy")  # ImageDataGenerator resamples with scipy.ndimage


def sample_images(size=48):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 40, (size, size, 3)).astype(np.float32)
    image[5:15, 10:40] = 255.0
    image[20:35, 30:35, 1] = 200.0
    return image


@pytest.mark.parametrize(
    "params",
    [
        {"theta": 30.0},
        {"tx": 5.0},
        {"ty": -7.0},
        {"shear": 20.0},
        {"zx": 1.3, "zy": 0.8},
        {"flip_horizontal": True},
        {"flip_vertical": True},
        {"theta": 25.0, "tx": 3.0, "ty": -4.0, "shear": 10.0, "zx": 0.9, "zy": 1.2, "flip_horizontal": True},
    ],
)
def test_one_resampling_matches_image_data_generator(params):
    image = sample_images()
    expected = ImageDataGenerator(fill_mode="nearest").apply_transform(image, params)
    # ImageDataGenerator's tx shifts x (columns), ty shifts y (rows), in pixels.
    transform = affine_transforms(
        theta=tf.constant([params.get("theta", 0.0)]), dx=tf.constant([params.get("tx", 0.0)]),
        dy=tf.constant([params.get("ty", 0.0)]), shear=tf.constant([params.get("shear", 0.0)]),
        zx=tf.constant([params.get("zx", 1.0)]), zy=tf.constant([params.get("zy", 1.0)]),
        flip_x=tf.constant([params.get("flip_horizontal", False)]),
        flip_y=tf.constant([params.get("flip_vertical", False)]), height=48, width=48,
    )
    got = keras.ops.image.affine_transform(image[None], transform, fill_mode="nearest")[0]
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-2)


def test_random_affine_is_seeded_and_bounded():
    layer = RandomAffine(rotation=40, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2, horizontal_flip=True)
    batch = tf.constant(np.stack([sample_images()] * 4))
    seed = tf.constant([3, 4])
    first, again = layer(batch, seed=seed), layer(batch, seed=seed)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0], first[1]), "each image of a batch gets its own transform"
    params = layer.sample(1000, 48, 48, seed)
    assert np.abs(params["theta"]).max() <= 40 and np.abs(params["dx"]).max() <= 0.2 * 48
    assert 0.3 < np.mean(params["flip_x"]) < 0.7 and not np.any(params["flip_y"])


def test_no_augmentation_is_identity():
    batch = tf.constant(sample_images()[None])
    assert RandomAffine().is_identity
    np.testing.assert_array_equal(RandomAffine()(batch, seed=tf.constant([0, 0])), batch)
