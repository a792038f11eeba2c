"""Optimizer and learning-rate schedule from the `optimizer` config group."""

import keras

from imgexp.config import OptimizerConfig


def learning_rate(cfg: OptimizerConfig, steps_per_epoch: int, epochs: int, scale: float = 1.0):
    """A float, or a schedule stepping per batch: cosine to 0 over the run, or exponential per epoch."""
    lr = cfg.lr * scale
    if cfg.schedule.value == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps_per_epoch * epochs))
    if cfg.schedule.value == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=steps_per_epoch, decay_rate=cfg.decay_rate)
    return lr


def build_optimizer(cfg: OptimizerConfig, steps_per_epoch: int, epochs: int, lr_scale: float = 1.0) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg, steps_per_epoch, epochs, lr_scale)
    decay = {"weight_decay": cfg.weight_decay} if cfg.weight_decay else {}
    if cfg.name == "adam":
        return keras.optimizers.Adam(lr, **decay)
    if cfg.name == "adamw":
        return keras.optimizers.AdamW(lr, **decay)
    if cfg.name == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=cfg.nesterov, **decay)
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(lr, momentum=cfg.momentum, **decay)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # the config group only offers the four above
