"""Models from the registry: the tutorial's exact CNN, backbones offline, preprocessing inside."""

import keras
import numpy as np
import pytest

from imgexp.errors import UserError
from imgexp.models import BUILDERS, build_model
from imgexp.models.backbones import BACKBONE_LAYER, preprocess_layer


def test_tutorial_cnn_has_the_tutorials_parameter_count():
    model = build_model("cnn", (150, 150), num_classes=2)
    assert model.count_params() == 19_034_177
    assert model.output_shape == (None, 1) and model.layers[-1].activation.__name__ == "sigmoid"


def test_more_than_two_classes_get_softmax():
    model = build_model("cnn", (32, 32), num_classes=10)
    assert model.output_shape == (None, 10) and model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"cnn"}))
def test_backbones_build_offline_and_predict(name):
    options = {"input_size": (75, 75)} if name == "inceptionv3" else {}
    model = build_model(name, (32, 32), num_classes=3, weights=None, **options)
    probs = model.predict(np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32"), verbose=0)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_input_too_small_for_a_backbone_is_a_clear_error():
    with pytest.raises(UserError, match=r"inceptionv3 needs inputs of at least 75x75.*model.input_size"):
        build_model("inceptionv3", (32, 32), num_classes=3, weights=None)


def test_frozen_backbone_and_fine_tune_at():
    frozen = build_model("mobilenetv2", (32, 32), num_classes=2, weights=None, trainable=False)
    assert not frozen.get_layer(BACKBONE_LAYER).trainable_weights
    partly = build_model("mobilenetv2", (32, 32), num_classes=2, weights=None, fine_tune_at=100)
    layers = partly.get_layer(BACKBONE_LAYER).layers
    assert not any(l.trainable_weights for l in layers[:100]) and any(l.trainable_weights for l in layers[100:])


@pytest.mark.parametrize("mode, reference", [
    ("tf", keras.applications.mobilenet_v2.preprocess_input),
    ("caffe", keras.applications.resnet50.preprocess_input),
])
def test_preprocessing_layers_equal_keras_preprocess_input(mode, reference):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(preprocess_layer(mode)(x)), reference(x.copy()), atol=1e-4)


def test_missing_imagenet_download_names_both_fixes(monkeypatch, tmp_path):
    # Keras' own download, from a port where nothing answers: what a machine without a network sees.
    def offline(*args, **kwargs):
        keras.utils.get_file("weights.h5", "http://127.0.0.1:9/weights.h5", cache_dir=str(tmp_path))

    from imgexp.models import backbones

    monkeypatch.setitem(backbones.BACKBONES, "mobilenetv2", backbones.Backbone(offline, 32, "tf"))
    with pytest.raises(UserError, match=r"could not download.*model.weights=null.*model.weights=/path"):
        build_model("mobilenetv2", (32, 32), num_classes=2, weights="imagenet")


def test_model_l2_adds_its_penalty_to_the_loss():
    from imgexp.models import build_model

    x, y = np.full((4, 16, 16, 3), 100.0, np.float32), np.array([0, 1, 2, 1])
    losses = []
    for l2 in (0.0, 0.5):
        keras.utils.set_random_seed(3)
        model = build_model("cnn", (16, 16), 3, filters=(4,), dense_units=8, dropout=0.0, l2=l2)
        model.compile(loss="sparse_categorical_crossentropy")
        losses.append(model.evaluate(x, y, verbose=0))
    assert losses[1] > losses[0] + 1e-3, losses
