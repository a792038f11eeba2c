"""A Hydra callback: after `python -m imgexp -m ...`, every job ranked in one table."""

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from imgexp.compare import compare, print_table  # rich and yaml only: cheap

        sweep_dir = Path(config.hydra.sweep.dir)
        table, records = compare([sweep_dir])
        print_table(table, f"{len(table)} jobs in {sweep_dir}, ranked by val_accuracy")
        failed = [r for r in records if r.status != "finished"]
        if failed:
            print(f"imgexp: error: {len(failed)} of {len(records)} jobs failed; "
                  f"their errors are in the table and in each job's failed.json", file=sys.stderr)
            # Hydra turns a callback's exceptions into warnings, so the exit code is set here.
            sys.exit(1)
