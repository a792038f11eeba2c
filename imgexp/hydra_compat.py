"""Every use of Hydra and OmegaConf beyond their documented API, in one place (as tuning/kt_compat.py
is for KerasTuner).

imgexp parses overrides with Hydra's own parser (a search's trials, a sweep's swept keys) and turns
OmegaConf's and Hydra's errors into one line by the text they carry. tests/test_hydra_compat.py checks
each against the installed versions; pyproject.toml bounds hydra-core and omegaconf at the tested ones.
"""

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, OverrideType, ValueType

TESTED_HYDRA = "1.3.8"  # the newest hydra-core these were checked against
TESTED_OMEGACONF = "2.3.1"

__all__ = ["IntervalSweep", "Override", "parse_overrides", "is_plain_value", "is_unknown_key", "is_not_a_list",
           "is_missing_value", "is_conflicting_flags"]


def parse_overrides(lines: list[str]) -> list[Override]:
    """Overrides as Hydra's command line parses them."""
    return OverridesParser.create().parse_overrides(list(lines))


def is_plain_value(override: Override) -> bool:
    """`key=value`: not a sweep, not +, ++ or ~, not key@package."""
    return (override.type is OverrideType.CHANGE and override.value_type is ValueType.ELEMENT
            and override.package is None)


def is_unknown_key(message: str) -> bool:
    """OmegaConf's "Key 'x' not in 'CNNConfig'" and "Key 'x' is not in struct"."""
    return "not in" in message


def is_not_a_list(message: str) -> bool:
    """OmegaConf's "... is not a ListConfig ..." for a scalar given to a list key."""
    return "is not a ListConfig" in message


def is_missing_value(message: str) -> bool:
    """OmegaConf's "Missing mandatory value" for a ??? key left unset."""
    return "Missing mandatory value" in message


def is_conflicting_flags(err: Exception) -> bool:
    """Hydra's ValueError for command-line flags that do not go together (-m with --cfg, ...)."""
    return isinstance(err, ValueError) and "can be specified" in str(err)
