"""What a run directory says about itself, for tables and comparisons.

A run dir (single run, multirun job or tuner trial) holds `.hydra/config.yaml`
and `.hydra/overrides.yaml`, then `metrics.json` when it finished or
`failed.json` when it failed.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FAILED_FILE = "failed.json"


def write_failure(run_dir: Path, message: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_FILE).write_text(json.dumps({"error": message, "time": time.time()}, indent=2) + "\n")


def write_config(run_dir: Path, config: dict[str, Any], overrides: list[str]) -> None:
    """The composed config and the overrides that made it, where Hydra keeps them."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    (hydra_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))


@dataclass
class RunRecord:
    path: Path
    status: str  # finished | failed | running
    config: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


def read_run(run_dir: Path) -> RunRecord:
    hydra_dir = run_dir / ".hydra"
    config = yaml.safe_load((hydra_dir / "config.yaml").read_text()) if (hydra_dir / "config.yaml").exists() else {}
    overrides = yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) if (hydra_dir / "overrides.yaml").exists() else []
    if (run_dir / "metrics.json").exists():
        return RunRecord(run_dir, "finished", config or {}, overrides or [], json.loads((run_dir / "metrics.json").read_text()))
    if (run_dir / FAILED_FILE).exists():
        error = json.loads((run_dir / FAILED_FILE).read_text())["error"]
        return RunRecord(run_dir, "failed", config or {}, overrides or [], error=error)
    return RunRecord(run_dir, "running", config or {}, overrides or [])


def find_runs(paths: list[Path]) -> list[RunRecord]:
    """Every run dir at or below `paths` (sorted by path)."""
    found: set[Path] = set()
    for path in paths:
        candidates = [path, *path.rglob("*")] if path.is_dir() else []
        for candidate in candidates:
            if candidate.is_dir() and ((candidate / ".hydra" / "config.yaml").exists()
                                       or (candidate / "metrics.json").exists()
                                       or (candidate / FAILED_FILE).exists()):
                found.add(candidate)
    return [read_run(p) for p in sorted(found)]
