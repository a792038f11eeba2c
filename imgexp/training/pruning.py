"""The pruner as a Keras callback: after each epoch, the rule of imgexp.training.pruning_rules over this
run's history and the other trials' in the cohort folder; a decision goes to pruned.json at once."""

import logging
from pathlib import Path

import keras

from imgexp.config import Config, PrunerConfig
from imgexp.run_folder import HISTORY_FILE, MAXIMIZE, PRUNED_FILE, write_json
from imgexp.training.pruning_rules import RULES, other_trials, values_by_epoch

log = logging.getLogger(__name__)


class Pruner(keras.callbacks.Callback):
    """After each epoch: stop training when the rule says this run is losing; the decision goes to
    pruned.json at once."""

    def __init__(self, cfg: PrunerConfig, monitor: str, run_dir: Path, cohort: Path):
        super().__init__()
        self.cfg, self.monitor, self.run_dir, self.cohort = cfg, monitor, run_dir, cohort
        self.rule, self.maximize = RULES[cfg.name.value], MAXIMIZE[monitor]

    def on_epoch_end(self, epoch, logs=None):
        own = values_by_epoch(self.run_dir / HISTORY_FILE, self.monitor)  # this epoch's row is written already
        if logs and self.monitor in logs:
            own[epoch + 1] = float(logs[self.monitor])
        if epoch + 1 not in own:
            return
        decision = self.rule(own, other_trials(self.cohort, self.run_dir, self.monitor), epoch + 1, self.cfg,
                             self.maximize)
        if decision is not None:
            reason = f"{self.monitor}: {decision.reason}"
            write_json(self.run_dir / PRUNED_FILE, {"epoch": decision.epoch, "reason": reason,
                                                    "pruner": self.cfg.name.value}, self.run_dir)
            log.info("pruned at epoch %d (pruner=%s): %s", decision.epoch, self.cfg.name.value, reason)
            self.model.stop_training = True


def make_pruner(cfg: Config, run_dir: Path, cohort: Path | None) -> Pruner | None:
    """The run's pruner, or None: `pruner=none`, or a single run (no other trials to compare with)."""
    if cfg.pruner.name.value == "none":
        return None
    if cohort is None:
        log.info("pruner=%s compares the trials of a search or multirun sweep; this single run trains to its end",
                 cfg.pruner.name.value)
        return None
    return Pruner(cfg.pruner, cfg.pruner.monitor.value, run_dir, cohort)
