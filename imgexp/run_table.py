"""Ranking run folders into one table: the library the compare command, a search's report and a sweep's
summary share. Nothing here imports TensorFlow."""

from pathlib import Path

from rich.console import Console
from rich.table import Table

from imgexp.errors import UserError
from imgexp.run_folder import BEST_CONFIG_FILE, RunRecord, find_runs
from imgexp.tracking.hparams import flatten

METRIC_COLUMNS = ("val_accuracy", "val_balanced_accuracy", "val_loss", "train_accuracy", "epochs_run", "seconds",
                  "latency_ms", "model_bytes")
COSTS = ("latency_ms", "model_bytes")  # what deploying a run costs (metrics.json): --pareto ranks against one
NOT_COMPARED = ("hydra", "search", "search_space", "tuner", "trainer.verbose")


def is_search_launcher(record: RunRecord) -> bool:
    """The Hydra dir of a `tuner=...` command, or a search's best/ copy: not runs of their own."""
    return bool(record.config.get("tuner")) or (record.path / BEST_CONFIG_FILE).is_file()


def differing_keys(records: list[RunRecord]) -> list[str]:
    """Config keys whose values are not the same in every run."""
    flat = [flatten(r.config) for r in records]
    keys = sorted({k for f in flat for k in f if not k.startswith(NOT_COMPARED)})
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def maximized(objective: str) -> bool:
    return not objective.endswith("loss")


def pareto_front(records: list[RunRecord], objective: str, cost: str) -> list[RunRecord]:
    """The finished runs no other run beats on both `objective` and `cost`: as good or better on both,
    strictly better on one. The best model that fits a phone is one of them."""
    sign = 1 if maximized(objective) else -1
    scored = [(sign * r.metrics[objective], r.metrics[cost], r) for r in records
              if r.ended and isinstance(r.metrics.get(objective), (int, float))
              and isinstance(r.metrics.get(cost), (int, float))]
    return [r for score, price, r in scored
            if not any(s >= score and p <= price and (s > score or p < price) for s, p, _ in scored)]


def ranked(records: list[RunRecord], objective: str) -> list[RunRecord]:
    """Finished runs best first by `objective`, then running, then failed."""
    maximize = maximized(objective)
    finished = [r for r in records if r.ended and objective in r.metrics]
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
            row[m] = "" if value is None else (f"{value:.1f}" if m == "seconds" else f"{value:.2f}" if m == "latency_ms"
                                               else f"{value:.4f}" if isinstance(value, float) else str(value))
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


FIRST_COLUMNS = ("rank", "run", "status", "val_accuracy", "val_loss")  # always shown, in this order
LATER_COLUMNS = ("val_balanced_accuracy", "train_accuracy", "epochs_run", "seconds", "latency_ms", "model_bytes", "data",
                 "continued_from")
CELL_MAX = {"run": 32, "error": 56}  # longer values are cut (the CSV keeps them whole)
DEFAULT_CELL_MAX = 24
CELL_PADDING = 3  # rich's padding and border per column


def cut(column: str, value: str) -> str:
    """A cell as it fits: a path to its tail, an error to its first line, anything to CELL_MAX."""
    limit = CELL_MAX.get(column, DEFAULT_CELL_MAX)
    if column == "error" and ("\n" in value.strip() or len(value) > limit):  # the rest is in the run's failed.json
        first = value.strip().splitlines()[0]
        return (first if len(first) <= limit - 14 else first[:limit - 15] + "…") + " (failed.json)"
    if len(value) <= limit:
        return value
    return "…" + value[-(limit - 1):] if column == "run" or "/" in value else value[:limit - 1] + "…"


def fit_columns(table: list[dict[str, str]], width: int) -> tuple[list[str], list[str]]:
    """(columns shown, columns left out): the first ones always, then the config keys that vary and the
    other metrics as long as the table stays within `width` characters."""
    present = [c for c in table[0] if any(row[c] for row in table)]
    keys = [c for c in present if c not in FIRST_COLUMNS and c not in LATER_COLUMNS]
    keys = [c for c in keys if c != "error"]
    wanted = [*(c for c in FIRST_COLUMNS if c in present), *(["error"] if "error" in present else []), *keys,
              *(c for c in LATER_COLUMNS if c in present)]  # a failed run's reason before the config keys
    size = lambda c: max(len(c), *(len(cut(c, row[c])) for row in table)) + CELL_PADDING  # noqa: E731
    shown, used = [], 1
    for column in wanted:
        if column in FIRST_COLUMNS or used + size(column) <= width:
            shown.append(column)
            used += size(column)
    return shown, [c for c in wanted if c not in shown]


def print_table(table: list[dict[str, str]], title: str, console: Console | None = None,
                columns: list[str] | None = None) -> None:
    """The table at the terminal's width (COLUMNS where there is no terminal), or with `columns`."""
    console = console or Console()
    if not table:
        console.print(f"{title}: no runs found")
        return
    if columns:
        unknown = [c for c in columns if c not in table[0]]
        if unknown:
            raise UserError(f"--columns {unknown[0]}: no such column; choose from {', '.join(table[0])}")
        shown, left_out = columns, []
    else:
        shown, left_out = fit_columns(table, console.width)
    view = Table(title=title)
    for column in shown:
        view.add_column(column, no_wrap=True, overflow="ellipsis")
    for row in table:
        style = {"failed": "red", "pruned": "dim", "interrupted": "yellow"}.get(row["status"])
        view.add_row(*[cut(c, row[c]) for c in shown], style=style)
    console.print(view)
    if left_out:
        console.print(f"{len(left_out)} more column(s) need a wider terminal: {', '.join(left_out)} "
                      "(--columns to choose, --csv for all)", soft_wrap=False, overflow="fold")


def compare(paths: list[Path], objective: str = "val_accuracy",
            pareto: str | None = None) -> tuple[list[dict[str, str]], list[RunRecord]]:
    """The table of the runs under `paths` (only those on the Pareto front of `objective` and the cost
    `pareto`, when given) and their records."""
    records = [r for r in find_runs(paths) if not is_search_launcher(r)]
    if pareto is not None:
        records = pareto_front(records, objective, pareto)
    records = ranked(records, objective)
    root = paths[0] if len(paths) == 1 and paths[0].is_dir() else None
    swept = {o.split("=", 1)[0].lstrip("+~") for r in records for o in r.overrides}
    swept |= {f"{k}.name" for k in swept}  # `model=cnn` chose model.name
    keys = sorted(differing_keys(records), key=lambda k: (k not in swept, not k.endswith(".name"), k))
    return rows(records, root, keys), records  # the keys that were set first: they fill a narrow table first


