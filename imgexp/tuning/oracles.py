"""KerasTuner oracles from the `tuner` config group, and stopping one early."""

import functools
import logging
import time

import keras_tuner as kt

from imgexp.config import TunerConfig
from imgexp.errors import UserError

log = logging.getLogger("imgexp.search")


class ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """GridSearchOracle whose search order survives a reload.

    KerasTuner 1.4 keeps the grid's order (a linked list of trial ids sorted by
    their values) and its queue of trials to extend only in memory, so a reloaded
    grid search fails with a KeyError. Both are saved here, the order rebuilt
    from the trials on reload.
    """

    def get_state(self):
        return {**super().get_state(), "populate_next": list(self._populate_next)}

    def set_state(self, state):
        super().set_state(state)
        self._populate_next = list(state.get("populate_next", []))
        compare = lambda a, b: self._compare(self.trials[a].hyperparameters.values,  # noqa: E731
                                             self.trials[b].hyperparameters.values)
        for trial_id in sorted(self.trials, key=functools.cmp_to_key(compare)):
            self._ordered_ids.insert(trial_id)


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
