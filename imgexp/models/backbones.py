"""keras.applications backbones (MobileNetV2, ResNet50, InceptionV3) with a new head.

Each backbone's own `preprocess_input` is rebuilt from standard layers inside
the model, so a saved model loads with plain `keras.models.load_model` (safe
mode on, no custom objects) and takes raw pixels.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import keras
import numpy as np

from imgexp.errors import UserError
from imgexp.keras_compat import is_download_failure
from imgexp.models.head import choose_head, weight_penalty

BACKBONE_LAYER = "backbone"
HEAD_LAYERS = 2  # build(): Dropout, then the Dense head


@dataclass(frozen=True)
class Backbone:
    constructor: Callable[..., keras.Model]
    min_size: int  # keras.applications refuses smaller inputs
    preprocessing: str  # keras.applications.imagenet_utils mode: "tf" or "caffe"; "built_in": the model has its own
    takes_name: bool = True  # EfficientNetV2's constructors look their configs up by `name`: renamed after


BACKBONES = {
    "mobilenetv2": Backbone(keras.applications.MobileNetV2, 32, "tf"),
    "resnet50": Backbone(keras.applications.ResNet50, 32, "caffe"),
    "inceptionv3": Backbone(keras.applications.InceptionV3, 75, "tf"),
    # The backbones people deploy to phones; each rescales and normalises 0..255 pixels itself.
    "mobilenetv3small": Backbone(keras.applications.MobileNetV3Small, 32, "built_in"),
    "mobilenetv3large": Backbone(keras.applications.MobileNetV3Large, 32, "built_in"),
    "efficientnetb0": Backbone(keras.applications.EfficientNetB0, 32, "built_in"),
    "efficientnetv2b0": Backbone(keras.applications.EfficientNetV2B0, 32, "built_in", takes_name=False),
    "convnexttiny": Backbone(keras.applications.ConvNeXtTiny, 32, "built_in"),
}

# "caffe" mode: RGB -> BGR, then subtract the ImageNet mean per BGR channel.
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def preprocess_layer(mode: str) -> keras.layers.Layer:
    """`preprocess_input` as a standard, serializable layer."""
    if mode == "built_in":  # the backbone's first layers do it
        return keras.layers.Identity(name="preprocess")
    if mode == "tf":  # scale to [-1, 1]
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")
    # A fixed 1x1 convolution: a channel permutation plus a bias does RGB->BGR and mean subtraction.
    permutation = np.eye(3, dtype=np.float32)[::-1].reshape(1, 1, 3, 3)
    return keras.layers.Conv2D(
        3, 1, trainable=False, name="preprocess",
        kernel_initializer=keras.initializers.Constant(permutation),
        bias_initializer=keras.initializers.Constant(-CAFFE_MEAN_BGR),
    )


def load_backbone(name: str, input_size: tuple[int, int], weights: str | None) -> keras.Model:
    """The headless, globally pooled backbone, with errors a user can fix made clear; from scratch
    (`weights=None`), its BatchNorm statistics follow the batches (follow_batches)."""
    spec = BACKBONES[name]
    if min(input_size) < spec.min_size:
        raise UserError(
            f"model={name} needs inputs of at least {spec.min_size}x{spec.min_size}, got "
            f"{input_size[0]}x{input_size[1]}; set model.input_size=[{spec.min_size},{spec.min_size}] "
            f"or a larger dataset.image_size"
        )
    try:
        named = {"name": BACKBONE_LAYER} if spec.takes_name else {}
        backbone = spec.constructor(include_top=False, weights=weights, input_shape=(*input_size, 3), pooling="avg",
                                    **named)
        if not spec.takes_name:  # the same layers, under the name the rest of imgexp looks for
            backbone = keras.Model(backbone.input, backbone.output, name=BACKBONE_LAYER)
    except Exception as err:  # keras.utils.get_file raises a bare Exception on a failed download
        if weights == "imagenet" and is_download_failure(err):
            raise UserError(
                f"model={name}: could not download the ImageNet weights (no network?); "
                f"train from scratch with model.weights=null, or give a local file with model.weights=/path/to/{name}_notop.h5"
            ) from err
        if weights not in (None, "imagenet") and isinstance(err, ValueError):
            raise UserError(f"model.weights={weights}: does not fit {name} without its top ({err})") from err
        raise
    if weights is None:
        follow_batches(backbone)
    return backbone


SCRATCH_BATCHNORM_MOMENTUM = 0.9


def follow_batches(backbone: keras.Model) -> None:
    """A backbone trained from scratch: its BatchNorm moving statistics follow the batches at momentum
    0.9. keras.applications builds them at 0.99-0.999, for fine-tuning statistics learned on ImageNet;
    from initial ones they lag so far behind the batches that a MobileNetV2 fitting its training data
    to 99.7% scored chance (10%) on the digits' validation split after 30 epochs."""
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = SCRATCH_BATCHNORM_MOMENTUM


def set_backbone_trainable(model: keras.Model, trainable: bool, fine_tune_at: int = 0) -> None:
    """Freeze the backbone, or train it from layer `fine_tune_at` upwards."""
    backbone = model.get_layer(BACKBONE_LAYER)
    backbone.trainable = trainable
    if trainable:
        for layer in backbone.layers[:fine_tune_at]:
            layer.trainable = False


def build(
    name: str,
    image_size: tuple[int, int],
    num_classes: int,
    weights: str | None = "imagenet",
    trainable: bool = True,
    fine_tune_at: int = 0,
    dropout: float = 0.2,
    l1: float = 0.0,
    l2: float = 0.0,
    head: str = "auto",
    input_size: tuple[int, int] | None = None,
    backbone: keras.Model | None = None,
) -> keras.Model:
    """`name` with a new head; `backbone`: the headless backbone to use, already built with these
    options (one that several frozen runs share, imgexp.training.shared_backbone), else built here."""
    input_size = tuple(input_size or image_size)
    spec = BACKBONES[name]
    if backbone is None:
        backbone = load_backbone(name, input_size, weights)
    inputs = keras.Input((*image_size, 3), name="pixels")
    x = inputs
    if input_size != tuple(image_size):
        x = keras.layers.Resizing(*input_size, name="backbone_resize")(x)
    x = preprocess_layer(spec.preprocessing)(x)
    # Pretrained: training=False keeps BatchNorm in inference mode, also once unfrozen for fine-tuning
    # (its ImageNet statistics stay). From scratch (weights=null) BatchNorm has no statistics yet and
    # must learn them: in inference mode it would normalise with its initial 0 and 1 for ever.
    x = backbone(x, training=False) if weights is not None else backbone(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = choose_head(num_classes, head).layer(weight_penalty(l1, l2))(x)
    model = keras.Model(inputs, outputs, name=name)
    set_backbone_trainable(model, trainable, fine_tune_at)
    return model


def split_at_backbone(model: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """(frozen part: images -> pooled features, head: features -> probabilities), both sharing
    `model`'s layers; None for a model that is not a backbone with imgexp's head (the CNN)."""
    try:
        backbone = model.get_layer(BACKBONE_LAYER)
    except ValueError:
        return None
    after = model.layers[model.layers.index(backbone) + 1:]
    if len(after) != HEAD_LAYERS or after[-1].output is not model.output:
        return None
    frozen = keras.Model(model.input, after[0].input, name="frozen_part")
    features = keras.Input(frozen.output.shape[1:], name="features")
    x = features
    for layer in after:
        x = layer(x)
    return frozen, keras.Model(features, x, name="head")


def builder(name: str) -> Callable[..., keras.Model]:
    return partial(build, name)
