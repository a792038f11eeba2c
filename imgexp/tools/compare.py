"""Compare finished runs without TensorBoard: one ranked table of runs, jobs and trials.

    python -m imgexp.compare outputs
    python -m imgexp.compare outputs/multirun/2026-11-29/10-00-00 outputs/search/random-cnn --csv runs.csv
    python -m imgexp.compare outputs --pareto latency_ms   # the runs no other beats on accuracy and latency
"""

import sys
from pathlib import Path

from imgexp import safe_write
from imgexp.errors import UserError
from imgexp.run_table import COSTS, compare, mixed_data_warning, print_table
from imgexp.tools.cli import OneLineParser, run_tool


def write_csv(table: list[dict[str, str]], path: Path) -> None:
    fields = list(table[0]) if table else ["run"]
    safe_write.write_csv(path, [fields, *([row.get(k, "") for k in fields] for row in table)])


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m imgexp.compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run dirs, multirun dirs, search dirs or outputs/")
    parser.add_argument("--objective", default="val_accuracy", help="metric to rank by (default val_accuracy)")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file (every column, whole)")
    parser.add_argument("--pareto", choices=COSTS, help="only the runs no other run beats on both the objective and "
                        "this cost (latency per image at batch 1, or model.keras' size)")
    parser.add_argument("--columns", help="the columns to show, comma-separated (default: what fits the terminal)")
    args = parser.parse_args(argv)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    return run_tool("imgexp.compare", lambda: show(args.paths, args.objective, args.csv, columns, args.pareto))


def show(paths: list[Path], objective: str, csv_path: Path | None, columns: list[str] | None = None,
         pareto: str | None = None) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UserError(f"{missing[0]}: no such folder")
    table, records = compare(paths, objective, pareto)
    title = f"{len(table)} runs ranked by {objective}"
    if pareto:
        title = f"{len(table)} runs no other run beats on both {objective} and {pareto}, ranked by {objective}"
        columns = columns or ["rank", "run", objective, pareto, *(c for c in ("model_bytes", "latency_ms")
                                                                  if c != pareto)]
    print_table(table, title, columns=columns)
    warning = mixed_data_warning(records)
    if warning:
        print(f"imgexp.compare: warning: {warning}", file=sys.stderr)
    if csv_path:
        write_csv(table, csv_path)
        print(f"wrote {csv_path}")


if __name__ == "__main__":
    sys.exit(main())
