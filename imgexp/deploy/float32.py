"""A mixed-precision model's float32 twin: what SavedModel, TFLite and TF.js exports are converted from
(TFLite and TF.js have no bfloat16 kernels; a SavedModel may run where none are fast)."""


def all_layers(model):
    """Every layer, nested models' layers included (Keras' own walk, `_flatten_layers`, is private)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def in_float32(model):
    """The same network and weights computing in float32 (a mixed-precision run's model otherwise
    computes in bfloat16 or float16); a float32 model comes back as it is."""
    import keras

    if all(layer.dtype_policy.name == "float32" for layer in all_layers(model)):
        return model

    def float32_policies(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {key: float32_policies(value) for key, value in node.items()}
        if isinstance(node, list):
            return [float32_policies(value) for value in node]
        return node

    clone = keras.saving.deserialize_keras_object(float32_policies(keras.saving.serialize_keras_object(model)))
    clone.set_weights(model.get_weights())
    return clone
