"""Compare finished runs without TensorBoard: one ranked table of runs, jobs and trials.

    python -m imgexp.compare outputs
    python -m imgexp.compare outputs/multirun/2026-11-29/10-00-00 outputs/search/random-cnn --csv runs.csv
"""

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from imgexp import safe_write
from imgexp.errors import UserError
from imgexp.run_folder import BEST_CONFIG_FILE, RunRecord, find_runs
from imgexp.tools.cli import run_tool
from imgexp.tracking.hparams import flatten

METRIC_COLUMNS = ("val_accuracy", "val_balanced_accuracy", "val_loss", "train_accuracy", "epochs_run", "seconds")
OPTIONAL_COLUMNS = ("continued_from", "error")  # shown when some run has a value
NOT_COMPARED = ("hydra", "search", "search_space", "tuner", "trainer.verbose")


def is_search_launcher(record: RunRecord) -> bool:
    """The Hydra dir of a `tuner=...` command, or a search's best/ copy: not runs of their own."""
    return bool(record.config.get("tuner")) or (record.path / BEST_CONFIG_FILE).is_file()


def differing_keys(records: list[RunRecord]) -> list[str]:
    """Config keys whose values are not the same in every run."""
    flat = [flatten(r.config) for r in records]
    keys = sorted({k for f in flat for k in f if not k.startswith(NOT_COMPARED)})
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def ranked(records: list[RunRecord], objective: str) -> list[RunRecord]:
    """Finished runs best first by `objective`, then running, then failed."""
    maximize = objective != "val_loss" and not objective.endswith("loss")
    finished = [r for r in records if r.done and objective in r.metrics]
    finished.sort(key=lambda r: r.metrics[objective], reverse=maximize)
    rest = [r for r in records if r not in finished]
    return finished + sorted(rest, key=lambda r: (r.status != "running", str(r.path)))


def rows(records: list[RunRecord], root: Path | None, keys: list[str]) -> list[dict[str, str]]:
    table = []
    for rank, r in enumerate(records, 1):
        flat = flatten(r.config)
        name = str(r.path.relative_to(root)) if root and r.path.is_relative_to(root) else str(r.path)
        row = {"rank": str(rank), "run": name or ".", "status": r.status, "data": r.data[:8]}
        row.update({k: f"{flat[k]:.4g}" if isinstance(flat.get(k), float) else str(flat.get(k, "")) for k in keys})
        for m in METRIC_COLUMNS:
            value = r.metrics.get(m)
            row[m] = "" if value is None else (f"{value:.1f}" if m == "seconds" else
                                               f"{value:.4f}" if isinstance(value, float) else str(value))
        row["continued_from"] = str(r.metrics.get("continued_from") or "")  # hyperband: the trial it went on from
        row["error"] = r.error
        table.append(row)
    return table


def mixed_data_warning(records: list[RunRecord]) -> str | None:
    """A line when the ranked runs trained on different data (their scores then do not compare)."""
    fingerprints = sorted({r.data[:8] for r in records if r.data})
    if len(fingerprints) < 2:
        return None
    return (f"these runs trained on {len(fingerprints)} different data sets (column data: "
            f"{', '.join(fingerprints)}); rank only runs of one data set against each other")


def print_table(table: list[dict[str, str]], title: str, console: Console | None = None) -> None:
    console = console or Console(width=200)
    if not table:
        console.print(f"{title}: no runs found")
        return
    columns = [c for c in table[0] if c not in OPTIONAL_COLUMNS or any(row[c] for row in table)]
    view = Table(title=title)
    for column in columns:
        view.add_column(column, overflow="fold", max_width=60 if column == "error" else None)
    for row in table:
        style = {"failed": "red", "pruned": "dim"}.get(row["status"])
        view.add_row(*[row[c] for c in columns], style=style)
    console.print(view)


def write_csv(table: list[dict[str, str]], path: Path) -> None:
    fields = list(table[0]) if table else ["run"]
    safe_write.write_csv(path, [fields, *([row.get(k, "") for k in fields] for row in table)])


def compare(paths: list[Path], objective: str = "val_accuracy") -> tuple[list[dict[str, str]], list[RunRecord]]:
    records = [r for r in find_runs(paths) if not is_search_launcher(r)]
    records = ranked(records, objective)
    root = paths[0] if len(paths) == 1 and paths[0].is_dir() else None
    return rows(records, root, differing_keys(records)), records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgexp.compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run dirs, multirun dirs, search dirs or outputs/")
    parser.add_argument("--objective", default="val_accuracy", help="metric to rank by (default val_accuracy)")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    return run_tool("imgexp.compare", lambda: show(args.paths, args.objective, args.csv))


def show(paths: list[Path], objective: str, csv_path: Path | None) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UserError(f"{missing[0]}: no such folder")
    table, records = compare(paths, objective)
    print_table(table, f"{len(table)} runs ranked by {objective}")
    warning = mixed_data_warning(records)
    if warning:
        print(f"imgexp.compare: warning: {warning}", file=sys.stderr)
    if csv_path:
        write_csv(table, csv_path)
        print(f"wrote {csv_path}")


if __name__ == "__main__":
    sys.exit(main())
