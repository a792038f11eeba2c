"""LiteRT (TensorFlow Lite): float, float16, dynamic-range and full-integer int8 models, and LiteRT's
own interpreter (the `ai-edge-litert` package, what runs them on a phone or a board) to run them."""

from pathlib import Path

import numpy as np

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
FILE_NAMES = {"none": "model.tflite", "float16": "model-float16.tflite", "dynamic": "model-dynamic.tflite",
              "int8": "model-int8.tflite"}
CALIBRATION_IMAGES = 300  # int8: images of the run's training split its value ranges are measured on
BATCH = 32


def convert(model, size: tuple[int, int], quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """The model as a .tflite flatbuffer taking float images of `size` (int8 ones for `int8`)."""
    return quietly(lambda: converted(model, size, quantize, calibration))


def converted(model, size: tuple[int, int], quantize: str, calibration: np.ndarray | None) -> bytes:
    import tensorflow as tf

    signature = tf.TensorSpec([None, *size, 3], tf.float32, name="image")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(signature)
    # Without the model as its trackable object the converter freezes the weights into constants:
    # with it, int8 calibration fails on a READ_VARIABLE node (TF 2.21).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":  # full-integer: integer ops, input and output, as Edge TPUs and microcontrollers need
        if calibration is None or not len(calibration):
            raise ValueError("int8 needs calibration images")
        converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def quietly(convert) -> bytes:
    """The converter's chatter left out: its advice to pass the model along (without it the weights
    freeze, which int8 needs), the calibrator's note on input statistics and its native summary line."""
    import warnings

    from imgexp.tensorflow_runtime import absl_warnings_dropped, native_noise_dropped

    with absl_warnings_dropped(), warnings.catch_warnings(), native_noise_dropped():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return convert()


class LiteRTModel:
    """A .tflite file in LiteRT's interpreter, taking float images in [0, 255] whatever its input type
    (an int8 model's input is quantized and its output dequantized with the model's own parameters)."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        from imgexp.tensorflow_runtime import native_noise_dropped

        with native_noise_dropped():
            self.interpreter = Interpreter(model_path=str(path))
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    @property
    def input_type(self) -> str:
        return np.dtype(self.input["dtype"]).name

    def run(self, images: np.ndarray) -> np.ndarray:
        if self.batch != len(images):
            from imgexp.tensorflow_runtime import native_noise_dropped

            self.interpreter.resize_tensor_input(self.input["index"], list(images.shape))
            with native_noise_dropped():  # "Created TensorFlow Lite XNNPACK delegate for CPU"
                self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self.batch = len(images)
        self.interpreter.set_tensor(self.input["index"], to_input(images, self.input))
        self.interpreter.invoke()
        return from_output(self.interpreter.get_tensor(self.output["index"]), self.output)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([self.run(images[i:i + BATCH]) for i in range(0, len(images), BATCH)])


def to_input(images: np.ndarray, details: dict) -> np.ndarray:
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return images.astype(dtype)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)


def from_output(values: np.ndarray, details: dict) -> np.ndarray:
    if np.dtype(details["dtype"]).kind == "f":
        return values.astype(np.float32)
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
