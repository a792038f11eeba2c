"""From a run to a device: each export format, written and run by the runtime that will run it.

keras/h5 (Keras), savedmodel (TensorFlow), tflite with or without quantization (LiteRT's interpreter),
tfjs (TensorFlow.js in Node, and a web page). tools/export.py drives them and checks each on the run's
own validation images (checks.py).
"""
