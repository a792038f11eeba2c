"""imgexp: hyperparameter experiments for image classification (Hydra + Keras + TensorBoard)."""

__version__ = "0.1.0"
