"""Every use of KerasTuner's private parts, in one place.

imgexp relies on a few things KerasTuner does not promise: modules under
`keras_tuner.src`, private attributes of its oracles and tuners, and the text of
one of its errors. Each is wrapped here, named for what imgexp needs it for, and
tests/test_kt_compat.py checks each against the installed KerasTuner, so a
release that changes one fails there, loudly, instead of deep inside a search.
pyproject.toml bounds keras-tuner at TESTED_VERSION.
"""

import functools

import keras_tuner as kt
from keras_tuner.engine.base_tuner import BaseTuner  # noqa: F401  (re-exported: the tuner imgexp extends)
from keras_tuner.src import config as kt_config

TESTED_VERSION = "1.4.8"  # the newest KerasTuner these wrappers were checked against


def quiet_failed_trials() -> None:
    """KerasTuner prints a traceback for every failed trial; imgexp reports them in one line itself."""
    kt_config.DEBUG = False


def is_worker(tuner: BaseTuner) -> bool:
    """True in a distributed worker process (its oracle is a client of the chief's)."""
    return tuner._is_worker()


def is_too_many_failures(err: RuntimeError) -> bool:
    """KerasTuner's way of saying that max_consecutive_failed_trials trials failed in a row."""
    return "consecutive failures" in str(err)


def on_consecutive_failures_check(oracle: kt.Oracle, check_and_handle) -> None:
    """Replace the oracle's check for too many failed trials in a row by `check_and_handle(original_check)`."""
    original = oracle._check_consecutive_failures
    oracle._check_consecutive_failures = lambda: check_and_handle(original)


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


# Distributed mode: KerasTuner's gRPC chief and client.

def set_worker_timeout(seconds: float) -> None:
    """How long a worker waits on each call to the chief (KerasTuner's default: an hour)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds


def add_oracle_servicer(oracle: kt.Oracle, server):
    """KerasTuner's OracleServicer for `oracle`, added to the gRPC `server`; returns the servicer."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


def chief_may_stop(servicer, oracle: kt.Oracle) -> bool:
    """Every worker was told the search is over and no trial is running: KerasTuner's chief would exit."""
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    return servicer.stop_triggered and exit_chief(oracle)
