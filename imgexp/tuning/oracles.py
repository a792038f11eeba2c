"""KerasTuner oracles from the `tuner` config group, and stopping one early."""

import logging
import time

import keras_tuner as kt

from imgexp.config import TunerConfig
from imgexp.errors import UserError
from imgexp.tuning.kt_compat import ResumableGridSearchOracle

log = logging.getLogger("imgexp.search")


def make_oracle(tuner: TunerConfig, hyperparameters: kt.HyperParameters) -> kt.Oracle:
    if tuner.seed == 0:
        raise UserError("tuner.seed=0: KerasTuner takes 0 as 'pick a seed at random'; "
                        "use another number, or null for a random one")
    objective = kt.Objective(tuner.objective.value, "min" if tuner.objective.value == "val_loss" else "max")
    common = dict(objective=objective, hyperparameters=hyperparameters, seed=tuner.seed,
                  tune_new_entries=False, allow_new_entries=False,
                  max_retries_per_trial=tuner.max_retries_per_trial,
                  max_consecutive_failed_trials=tuner.max_consecutive_failed_trials)
    name = tuner.name.value
    if name == "random":
        return kt.oracles.RandomSearchOracle(max_trials=tuner.max_trials, **common)
    if name == "grid":
        return ResumableGridSearchOracle(max_trials=tuner.max_trials, **common)
    if name == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(
            max_trials=tuner.max_trials, num_initial_points=tuner.num_initial_points, **common)
    return kt.oracles.HyperbandOracle(max_epochs=tuner.max_epochs, factor=tuner.factor, **common)


def stop_new_trials(oracle: kt.Oracle) -> None:
    """Let running trials finish, start no new ones.

    The oracle reports STOPPED once it holds max_trials trials (at least 1: KerasTuner
    reads 0 as no limit). max_trials is not part of KerasTuner's saved state, so the
    next process starts with the configured one.
    """
    oracle.max_trials = max(len(oracle.trials), 1)


def stop_if_over_budget(oracle: kt.Oracle, started: float, budget_seconds: float | None) -> None:
    """`tuner.budget_minutes`: no new trial once the budget (from `started`, monotonic) is spent."""
    if budget_seconds is None or time.monotonic() - started <= budget_seconds:
        return
    if oracle.max_trials is not None and oracle.max_trials <= max(len(oracle.trials), 1):
        return  # stopped already (or about to run its only trial)
    log.info("the %.1f-minute budget is spent: no new trials", budget_seconds / 60)
    stop_new_trials(oracle)
