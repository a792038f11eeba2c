"""Replay pruning rules over finished random searches: what each rule would have saved and lost.

    python experiments/search_efficiency/replay.py SEARCHES_DIR [--variant a]

A random search proposes the same trials whatever their results, so the unpruned searches of variant (a)
(`run.py` keeps them under /tmp/imgexp-efficiency-*/searches/<dataset>-a-<seed>/) hold everything a
pruned search of the same seed would see: trial i, at epoch e, sees its own first e epochs and the
histories of trials 0..i-1 as far as they got (cut where the rule stopped them). This runs imgexp's own
rule functions over those histories, so rules and their settings compare in seconds instead of hours.
It reproduces the sequential search only: local workers see fewer finished trials.
"""

import argparse
import statistics
from pathlib import Path

from imgexp.config import PrunerConfig
from imgexp.run_folder import read_history
from imgexp.training.pruning_rules import RULES  # arithmetic over histories: no TensorFlow

RULE_SETTINGS = {  # every key spelt out, so the rows do not change when a default does
    "median, warmup 2 (default)": dict(name="median", warmup_epochs=2, min_trials=3),
    "median, warmup 4": dict(name="median", warmup_epochs=4, min_trials=3),
    "median of best, warmup 2": dict(name="median_best", warmup_epochs=2, min_trials=3),
    "asha, min_epochs 1": dict(name="asha", min_epochs=1, factor=3, min_trials=2),
    "asha, min_epochs 2 (default)": dict(name="asha", min_epochs=2, factor=3, min_trials=2),
    "asha, min_epochs 3": dict(name="asha", min_epochs=3, factor=3, min_trials=2),
    "asha, min_epochs 2, factor 2": dict(name="asha", min_epochs=2, factor=2, min_trials=2),
    "asha of best, min_epochs 2": dict(name="asha_best", min_epochs=2, factor=3, min_trials=2),
}


def carried_best(others: list[dict[int, float]], maximize: bool, last_epoch: int = 99) -> list[dict[int, float]]:
    """Each other trial's best value up to each epoch, its final best carried past the epoch it stopped at."""
    pick = max if maximize else min
    out = []
    for values in others:
        running, best = {}, None
        for e in range(1, last_epoch + 1):
            if e in values:
                best = values[e] if best is None else pick(best, values[e])
            if best is not None:
                running[e] = best
        out.append(running)
    return out


def median_of_best(own, others, epoch, cfg, maximize):
    """median rule against the others' best so far, finished trials included (no survivorship bias)."""
    return RULES["median"](own, carried_best(others, maximize, epoch), epoch, cfg, maximize)


def asha_of_best(own, others, epoch, cfg, maximize):
    """asha against the others' best so far at the rung, trials that stopped before it included."""
    best_own = dict(carried_best([own], maximize, epoch)[0])
    return RULES["asha"](best_own, carried_best(others, maximize, epoch), epoch, cfg, maximize)


RULES = {**RULES, "median_best": median_of_best, "asha_best": asha_of_best}


def read(history: Path) -> dict[int, dict[str, float]]:
    """{epoch (1-based): row} of a finished trial."""
    return {int(row["epoch"]) + 1: row for row in read_history(history)}


def replay(trials: list[dict[int, dict[str, float]]], cfg: PrunerConfig, monitor: str, maximize: bool,
           objective: str = "val_accuracy") -> tuple[int, float, int]:
    """(epochs trained, best objective, trials pruned) of a sequential search pruned by this rule."""
    rule = RULES[cfg.name]
    seen: list[dict[int, float]] = []
    epochs, best, pruned = 0, float("-inf"), 0
    for trial in trials:
        own = {e: row[monitor] for e, row in trial.items()}
        last = max(trial)
        for epoch in sorted(own):
            if rule({e: v for e, v in own.items() if e <= epoch}, seen, epoch, cfg, maximize) is not None:
                last, pruned = epoch, pruned + 1
                break
        seen.append({e: v for e, v in own.items() if e <= last})
        epochs += last
        best = max(best, max(row[objective] for e, row in trial.items() if e <= last))
    return epochs, best, pruned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("searches", type=Path, nargs="+", help="folders holding <dataset>-<variant>-<seed>/")
    parser.add_argument("--variant", default="a")
    parser.add_argument("--monitor", nargs="+", default=["val_accuracy", "val_loss"],
                        help="what the rule reads (the objective stays val_accuracy)")
    args = parser.parse_args()
    searches = sorted((s for folder in args.searches for s in folder.glob(f"*-{args.variant}-*")),
                      key=lambda s: (s.name.rsplit("-", 2)[0], int(s.name.rsplit("-", 1)[1])))
    print("| dataset | rule | pruner.monitor | epochs vs unpruned: median (each seed) | best lost, points: median "
          "(each seed) | seeds losing > 0.5 |")
    print("|---|---|---|---|---|---:|")
    for dataset in dict.fromkeys(s.name.rsplit("-", 2)[0] for s in searches):
        ours = [s for s in searches if s.name.rsplit("-", 2)[0] == dataset]
        trials_by_search = [[t for t in map(read, sorted(s.glob("trial_*/history.csv"))) if t] for s in ours]
        for label, settings in RULE_SETTINGS.items():
            for monitor in args.monitor:
                saved, lost = [], []
                for trials in trials_by_search:
                    full_epochs = sum(max(t) for t in trials)
                    full_best = max(row["val_accuracy"] for t in trials for row in t.values())
                    epochs, best, _ = replay(trials, PrunerConfig(**settings), monitor, "accuracy" in monitor)
                    saved.append(1 - epochs / full_epochs), lost.append(100 * (full_best - best))
                print(f"| {dataset} | {label} | {monitor} | {-statistics.median(saved):+.0%} "
                      f"({', '.join(f'{-x:+.0%}' for x in saved)}) | {statistics.median(lost):.2f} "
                      f"({', '.join(f'{x:.2f}' for x in lost)}) | {sum(x > 0.5 for x in lost)} of {len(lost)} |")

if __name__ == "__main__":
    main()
