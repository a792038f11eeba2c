"""The model a run saves: raw RGB images of any size in, class probabilities out."""

import keras


def with_raw_image_input(classifier: keras.Model, image_size: tuple[int, int]) -> keras.Model:
    """Wrap a trained classifier so it resizes its input first.

    Takes a batch of RGB pixels in [0, 255] (uint8 or float) of any height and
    width; resizing matches the training pipeline's (bilinear) and the
    classifier already holds its own rescaling / preprocess_input.
    """
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Resizing(*image_size, interpolation="bilinear", dtype="float32", name="resize")(inputs)
    outputs = classifier(x)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_classifier")
