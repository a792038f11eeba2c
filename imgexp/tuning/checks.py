"""What a search checks before its first trial: settings that cannot work, a search folder that holds
another search, and the config every trial shares."""

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from imgexp.config import TunerConfig
from imgexp.errors import UserError
from imgexp.data.run_cache import RunCache


def check_search_settings(cfg: DictConfig, tuner_cfg: TunerConfig) -> None:
    """Settings that cannot make a search, refused before any trial or worker starts."""
    if tuner_cfg.name.value == "hyperband" and cfg.pruner.name != "none":
        raise UserError(f"pruner={cfg.pruner.name.value} with tuner=hyperband: Hyperband already stops its weaker trials "
                        "early; use pruner=none, or tuner=random|bayesian|grid with a pruner")
    if tuner_cfg.max_trials is not None and tuner_cfg.max_trials < 1:
        raise UserError(f"tuner.max_trials={tuner_cfg.max_trials}: KerasTuner would read it as 'no limit' and never "
                        "stop; give a number >= 1, or null together with tuner.budget_minutes for an open-ended search")
    if tuner_cfg.max_trials is None and tuner_cfg.budget_minutes is None and tuner_cfg.name.value != "hyperband":
        raise UserError("tuner.max_trials=null runs trials until tuner.budget_minutes is spent; set "
                        "tuner.budget_minutes=N too, or give tuner.max_trials a number")


IDENTITY_FILE = "search.json"  # what makes this search this search: tuner, space and base overrides
# Tuner keys that change which trials a search makes; max_trials and the budget may grow on a re-run.
IDENTITY_TUNER_KEYS = ("name", "objective", "seed", "executions_per_trial", "max_epochs", "factor",
                       "continue_promoted", "num_initial_points")


def search_identity(tuner_cfg: TunerConfig, space: DictConfig | None, base: list[str]) -> dict:
    tuner = {k: getattr(getattr(tuner_cfg, k), "value", getattr(tuner_cfg, k)) for k in IDENTITY_TUNER_KEYS}
    return {"tuner": tuner, "search_space": OmegaConf.to_container(space) if space is not None else None,
            "base_overrides": list(base)}


def check_same_search(search_dir: Path, identity: dict) -> None:
    """A search folder is continued only by the same search: KerasTuner would silently keep the old space
    (keras-tuner#149, #290)."""
    path = search_dir / IDENTITY_FILE
    if not path.is_file():
        return
    before = json.loads(path.read_text())
    differences = [f"tuner.{k}: {before['tuner'].get(k)!r} -> {v!r}" for k, v in identity["tuner"].items()
                   if before["tuner"].get(k) != v]
    if before["search_space"] != identity["search_space"]:
        differences.append(f"search_space: {before['search_space']} -> {identity['search_space']}")
    if before["base_overrides"] != identity["base_overrides"]:
        differences.append(f"overrides: {' '.join(before['base_overrides']) or '(none)'} -> "
                           f"{' '.join(identity['base_overrides']) or '(none)'}")
    if differences:
        raise UserError(f"{search_dir} holds another search ({'; '.join(differences)}); run its own command to "
                        "continue it, or give search.name=NEW for a new search, or search.overwrite=true to start over")


def check_base_config(base_cfg: DictConfig, cache: RunCache) -> None:
    """The config every trial shares, checked once before trial 1 (keys, ranges, dataset.path and its
    layout, duplicates across splits): a mistake there is one line, not one failed trial after another."""
    from imgexp.job import to_config
    from imgexp.training.inputs import checked_listing

    try:
        checked_listing(to_config(base_cfg), cache)  # the listing is kept for this process's trials
    except UserError as err:
        raise UserError(f"the search's base config: {err}") from None


def check_pretrained_weights(space, base: list[str], compose) -> None:
    """The ImageNet weights of every backbone a trial may build, fetched once before trial 1 (Keras caches
    them): without a network this is one line, not a failed trial after another."""
    import keras

    from imgexp.models.backbones import BACKBONES, load_backbone

    models = next((list(p.values) for p in space.params if p.key == "model"), None) or [None]
    for model in models:
        cfg = compose([*base, *([f"model={model}"] if model else [])])
        name = cfg.model.name
        if name not in BACKBONES or cfg.model.get("weights") != "imagenet":
            continue
        try:
            load_backbone(name, (224, 224), "imagenet")  # 224: a size every backbone's weights come in
        except UserError as err:
            raise UserError(f"before trial 1: {err}") from None
        finally:
            keras.backend.clear_session(free_memory=False)
