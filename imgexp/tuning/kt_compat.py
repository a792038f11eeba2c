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
from keras_tuner.engine.base_tuner import BaseTuner  # also the base of imgexp's tuner (tuning/tuner.py)
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


def add_oracle_servicer(oracle: kt.Oracle, server, check_holder=None):
    """KerasTuner's OracleServicer for `oracle`, added to the gRPC `server`; returns the servicer.

    `check_holder(oracle, context, trial_id, values=None)` (imgexp.tuning.chief_auth) is asked before a
    trial's update or end is taken: only the worker holding the trial may report it."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine import trial as trial_module

    servicer = OracleServicer(oracle)
    if check_holder is not None:  # before registering: gRPC binds the methods when they are added
        update, end = servicer.UpdateTrial, servicer.EndTrial

        def checked_update(request, context):
            check_holder(oracle, context, request.trial_id)
            return update(request, context)

        def checked_end(request, context):
            reported = trial_module.Trial.from_proto(request.trial)
            check_holder(oracle, context, reported.trial_id, reported.hyperparameters.values)
            return end(request, context)

        servicer.UpdateTrial, servicer.EndTrial = checked_update, checked_end
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


def send_worker_calls_through(oracle_client, channel) -> None:
    """Replace KerasTuner's worker-side stub (built on its own insecure channel) by one on `channel`."""
    from keras_tuner.src import protos

    oracle_client.stub = protos.get_service_grpc().OracleStub(channel)


def chief_may_stop(servicer, oracle: kt.Oracle) -> bool:
    """Every worker was told the search is over and no trial is running: KerasTuner's chief would exit."""
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    return servicer.stop_triggered and exit_chief(oracle)


# Crash safety: KerasTuner's state files, written whole or not at all, and rebuilt when damaged.

def write_state_files_atomically() -> None:
    """KerasTuner writes oracle.json, tuner_*.json and every trial.json through `utils.save_json`, in
    place: a kill mid-write leaves half a file that the next run cannot load. Route it through
    imgexp.safe_write (temporary file, fsync, rename)."""
    import json

    from keras_tuner.src import utils as kt_utils

    from imgexp import safe_write

    def save_json(path, obj):
        text = json.dumps(obj)
        safe_write.write_text(path, text)
        return text

    kt_utils.save_json = save_json


ORACLE_FILE = "oracle.json"
REBUILDABLE = (kt.oracles.RandomSearchOracle, kt.oracles.BayesianOptimizationOracle)
ENDED = ("COMPLETED", "FAILED", "INVALID", "STOPPED")


def oracle_state_from_trials(fresh: kt.Oracle, trials: list) -> dict:
    """The state a random or Bayesian oracle saves, rebuilt from its trials (their trial.json).

    What only the oracle knew is remade: the order trials started in (their ids are
    that order), which ended, and the seed's position (advanced as far as the trials'
    values drew it, so new trials draw new values; duplicates are refused anyway)."""
    state = fresh.get_state()
    ordered = sorted(trials, key=lambda t: int(t.trial_id))
    ids = [t.trial_id for t in ordered]
    hashes = {t.trial_id: fresh._compute_values_hash(t.hyperparameters.values) for t in ordered}
    state.update(
        ongoing_trials={}, start_order=ids, end_order=[t.trial_id for t in ordered if t.status in ENDED],
        run_times={i: 1 for i in ids}, retry_queue=[t.trial_id for t in ordered if t.status not in ENDED],
        tried_so_far=list(hashes.values()), id_to_hash=hashes,
        seed_state=state["seed"] + sum(len(t.hyperparameters.values) for t in ordered),
    )
    return state


def load_trials(search_dir) -> list:
    """Every trial.json of a search folder; a damaged one is named in one line (UserError)."""
    from pathlib import Path

    from imgexp.errors import UserError

    found = []
    for path in sorted(Path(search_dir).glob("trial_*/trial.json")):
        try:
            found.append(kt.engine.trial.Trial.load(str(path)))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}: damaged ({type(err).__name__}); move that trial's folder out of the search "
                            "(its run stays readable there) and run the same command again") from None
    return found


def repair_oracle_state(search_dir, fresh: kt.Oracle) -> bool:
    """If the search's oracle.json does not load, rebuild it from the trials on disk (random, Bayesian)
    or refuse in one line (Hyperband's brackets and the grid's queue are not in the trials). True if rebuilt."""
    import json
    import logging
    from pathlib import Path

    from imgexp import safe_write
    from imgexp.errors import UserError

    path = Path(search_dir) / ORACLE_FILE
    if not path.is_file():
        return False
    try:
        json.loads(path.read_text())
        return False
    except (ValueError, UnicodeDecodeError):
        pass
    if not isinstance(fresh, REBUILDABLE) or isinstance(fresh, kt.oracles.GridSearchOracle):
        raise UserError(f"{path}: damaged (cut short), and a {type(fresh).__name__}'s state cannot be rebuilt from "
                        "its trials; restore the file, or start the search again under another search.name "
                        f"(the finished trials stay readable in {search_dir})")
    trials = load_trials(search_dir)
    safe_write.write_text(path, json.dumps(oracle_state_from_trials(fresh, trials)))
    logging.getLogger("imgexp.search").warning("%s was damaged; rebuilt from the %d trials on disk", path, len(trials))
    return True
