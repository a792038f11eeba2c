"""The pruning rules, apart from Keras: what a trial's history and the others' say (imgexp.training.pruning
applies them after each epoch; experiments/search_efficiency/replay.py replays them over recorded runs).

Stop a trial that is clearly losing, judged against the other trials of its search or sweep.

Every trial is a run that appends its epochs to history.csv inside a shared
folder (the search folder, the sweep folder), so a trial reads the others'
per-epoch values from there: no server, and it works the same for trials in
one process, in local workers, through Hydra's launchers or on machines that
share the folder. Two rules (`pruner=median`, `pruner=asha`), over `pruner.monitor`
(val_loss by default; the search's objective stays trainer.monitor):

- median (Optuna's MedianPruner): at epoch e >= warmup_epochs, stop when the
  trial's best value so far is worse than the median of the other trials'
  values at epoch e, once min_trials others reached e;
- asha (asynchronous successive halving): at the rungs min_epochs * factor^k,
  a trial goes on only if it is in the top 1/factor (at least one) of the
  trials that reached the rung, once min_trials others reached it.

A pruned run is not a failure: it keeps its best epoch, saves its model and
says `"status": "pruned"` in metrics.json. The decision is written to
pruned.json the moment it is taken, so a killed and resumed run keeps it.
"""

import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from imgexp.config import PrunerConfig
from imgexp.run_folder import HISTORY_FILE, PRUNED_FILE, read_history, read_json

log = logging.getLogger(__name__)


def values_by_epoch(history: Path, monitor: str) -> dict[int, float]:
    """{epoch (1-based): value} from a history.csv another process may be writing right now."""
    return {int(row["epoch"]) + 1: row[monitor] for row in read_history(history)
            if monitor in row and not math.isnan(row[monitor])}


def other_trials(cohort: Path, run_dir: Path, monitor: str) -> list[dict[int, float]]:
    """The per-epoch values of every other run in the cohort folder: its sub-folders (sweep jobs,
    search trials) and their execution_* folders; a search's best/ copy is not a trial."""
    histories = [*cohort.glob(f"*/{HISTORY_FILE}"), *cohort.glob(f"*/execution_*/{HISTORY_FILE}")]
    own = run_dir.resolve()
    return [values_by_epoch(h, monitor) for h in sorted(histories)
            if h.parent.resolve() != own and h.parent.name != "best"]


def better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


@dataclass
class Decision:
    epoch: int
    reason: str


def median_rule(own: dict[int, float], others: list[dict[int, float]], epoch: int, cfg: PrunerConfig,
                maximize: bool) -> Decision | None:
    if epoch < cfg.warmup_epochs:
        return None
    at_epoch = [values[epoch] for values in others if epoch in values]
    if len(at_epoch) < cfg.min_trials:
        return None
    best_so_far = (max if maximize else min)(v for e, v in own.items() if e <= epoch)
    median = statistics.median(at_epoch)
    if better(median, best_so_far, maximize):
        return Decision(epoch, f"best so far {best_so_far:.4f} is worse than the median {median:.4f} of "
                               f"{len(at_epoch)} other trial(s) at epoch {epoch}")
    return None


def rungs(cfg: PrunerConfig, last_epoch: int) -> list[int]:
    found, rung = [], cfg.min_epochs
    while rung <= last_epoch:
        found.append(rung)
        rung *= cfg.factor
    return found


def asha_rule(own: dict[int, float], others: list[dict[int, float]], epoch: int, cfg: PrunerConfig,
              maximize: bool) -> Decision | None:
    if epoch not in rungs(cfg, epoch):
        return None
    competing = [values[epoch] for values in others if epoch in values]
    if len(competing) < cfg.min_trials:
        return None
    everyone = sorted([*competing, own[epoch]], reverse=maximize)
    top = max(1, len(everyone) // cfg.factor)
    cutoff = everyone[top - 1]
    if better(cutoff, own[epoch], maximize):
        return Decision(epoch, f"{own[epoch]:.4f} at epoch {epoch} is not in the top {top} of the "
                               f"{len(everyone)} trials at this rung (cut-off {cutoff:.4f})")
    return None


RULES = {"median": median_rule, "asha": asha_rule}


def pruned_decision(run_dir: Path) -> dict | None:
    """The pruner's decision for this run (pruned.json), or None if it was not pruned."""
    decision = read_json(run_dir / PRUNED_FILE)
    return decision if isinstance(decision, dict) and "epoch" in decision else None
