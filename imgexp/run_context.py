"""How one run takes part in what started it, beside its config: one value the layers pass on."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from imgexp.data.run_cache import RunCache
from imgexp.stopwatch import Stopwatch

if TYPE_CHECKING:  # training/ imports TensorFlow; this module must not (imgexp.job imports it first)
    from imgexp.training.continuation import Continuation


@dataclass
class RunContext:
    """`cohort`: the search or sweep folder the run is compared with (pruning) and shares stored
    features through; `continuation`: the Hyperband parent it goes on from; `keep_last_weights`: keep
    the last epoch for a trial that may continue it; `plots`: draw the PNGs (a search draws only
    best/'s); `record_failures`: a config that fails still leaves a failed HParams session (sweep jobs,
    trials); `cache`: what the owner's runs reuse; `stopwatch`: where the run's time goes."""

    cohort: Path | None = None
    continuation: "Continuation | None" = None
    keep_last_weights: bool = False
    plots: bool = True
    record_failures: bool = False
    cache: RunCache = field(default_factory=RunCache)
    stopwatch: Stopwatch = field(default_factory=Stopwatch)
