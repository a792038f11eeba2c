"""Every default lives in one place: the schema dataclasses of imgexp/config.py (README: Config groups)."""

import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from imgexp.config import SCHEMAS, DatasetConfig, TrainerConfig
from imgexp.compose import compose_config

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUP_FILES = sorted(p for p in CONF.glob("*/*.yaml") if re.search(r"- /\w+_schema@_here_", p.read_text()))


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_option_file_repeats_a_schema_default(path):
    data = yaml.safe_load(path.read_text())
    schema = re.search(r"- /(\w+_schema)@_here_", path.read_text()).group(1)
    defaults = OmegaConf.to_container(OmegaConf.structured(SCHEMAS[schema]))
    repeated = [key for key, value in data.items() if key not in ("defaults", "name") and defaults.get(key) == value]
    assert not repeated, f"{path.relative_to(CONF)} repeats {schema}'s defaults for {repeated}: leave them to imgexp/config.py"


def test_what_an_option_file_leaves_out_is_the_schema_default():
    cfg, _ = compose_config([])
    assert OmegaConf.to_container(cfg.trainer) == OmegaConf.to_container(OmegaConf.structured(TrainerConfig))
    folder, _ = compose_config(["dataset=folder", "dataset.path=/x"])
    assert folder.dataset.batch_size == DatasetConfig.batch_size and folder.dataset.image_size == [150, 150]


def test_every_group_option_file_is_checked():
    assert len(GROUP_FILES) >= 28 and {p.parent.name for p in GROUP_FILES} >= {
        "dataset", "augmentation", "model", "optimizer", "trainer", "pruner", "tuner"}
