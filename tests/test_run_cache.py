"""What the runs of one owner reuse (imgexp/data/run_cache.py): bounded, and never a different result."""

import csv

import numpy as np
import pytest
from omegaconf import OmegaConf

from imgexp.compose import compose_config
from imgexp.data.run_cache import RunCache
from imgexp.job import run_job
from imgexp.run_context import RunContext


def test_latency_is_keyed_by_what_a_prediction_computes():
    import keras

    from imgexp.models import build_model
    from imgexp.training.run import architecture_key

    def cnn(**options):
        keras.backend.clear_session(free_memory=False)  # as between trials
        return architecture_key(build_model("cnn", (16, 16), 3, **{"filters": (4,), "dense_units": 8, **options}))

    assert cnn(dropout=0.2) == cnn(dropout=0.5, l2=1e-3), "dropout and regularizers change training only"
    assert cnn(dense_units=16) != cnn() != cnn(filters=(8,))


def test_values_past_the_memory_bound_go_least_recently_used_first():
    cache = RunCache(max_bytes=2500)
    for name in ("a", "b"):
        cache.put("arrays", name, np.zeros(1000, np.uint8))
    assert cache.lookup("arrays", "a") is not None  # a is now the most recently used
    cache.put("arrays", "c", np.zeros(1000, np.uint8))
    assert [cache.has("arrays", n) for n in "abc"] == [True, False, True] and cache.bytes == 2000
    cache.put("arrays", "huge", np.zeros(5000, np.uint8))  # larger than the bound: kept alone, a run uses it
    assert cache.has("arrays", "huge") and not cache.has("arrays", "a") and cache.bytes == 5000
    made = []
    assert cache.get("small", 1, lambda: made.append(1) or "x") == "x" == cache.get("small", 1, lambda: "y")
    assert made == [1]


@pytest.mark.parametrize("overrides", [
    ["dataset=digits", "optimizer.lr=0.001", "model.dropout=0.3", "model.filters=[8,16]"],
    ["model=mobilenetv2", "model.weights=null", "trainer.epochs=2", "model.input_size=[32,32]"],
    ["tuner=random", "search_space=cnn", "dataset.image_size=[16,16]", "optimizer=sgd", "optimizer.lr=0.1"],
])
def test_a_trial_composed_from_a_cached_base_is_the_config_hydra_composes(overrides):
    cache = RunCache()
    compose_config([o for o in overrides if "." not in o.split("=")[0]], cache)  # the base, composed first
    for _ in range(2):
        cfg, choices = compose_config(overrides, cache)
        want, want_choices = compose_config(overrides)
        assert OmegaConf.to_container(cfg) == OmegaConf.to_container(want) and choices == want_choices
        assert OmegaConf.get_type(cfg.model) is OmegaConf.get_type(want.model)


@pytest.mark.parametrize("bad", ["optimizer.lr=abc", "optimizer.lrr=1", "model.filters=8"])
def test_a_bad_trial_value_fails_as_hydra_says_it(bad):
    cache = RunCache()
    compose_config(["dataset=digits"], cache)
    with pytest.raises(Exception) as cached:
        compose_config(["dataset=digits", bad], cache)
    with pytest.raises(Exception) as hydra:
        compose_config(["dataset=digits", bad])
    assert type(cached.value) is type(hydra.value) and str(cached.value) == str(hydra.value)


def history(run_dir):
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader((run_dir / "history.csv").open())]


def test_runs_sharing_decoded_images_and_pipelines_train_as_runs_that_share_nothing(image_folder, tmp_path):
    overrides = ["dataset=folder", f"dataset.path={image_folder}", "dataset.image_size=[16,16]", "dataset.cache=memory",
                 "augmentation=basic", "model.filters=[4]", "model.dense_units=8", "trainer.epochs=2",
                 "trainer.verbose=0", "trainer.deterministic=true"]
    shared = RunContext().cache
    runs = {}
    for name, cache in (("first", shared), ("second", shared), ("alone", RunCache())):
        cfg, choices = compose_config(overrides)
        runs[name] = run_job(cfg, tmp_path / name, choices, RunContext(cache=cache))
    assert shared.passes["decode"] == 1, "the second run reuses the first one's images"
    assert shared.count("pipelines") == 1, "and its tf.data pipelines"
    assert history(tmp_path / "second") == history(tmp_path / "alone") == history(tmp_path / "first")
    assert runs["second"]["val_accuracy"] == runs["alone"]["val_accuracy"]
    assert shared.count("latency") == 1 and runs["second"]["latency_ms"] == runs["first"]["latency_ms"], \
        "the same network is timed once"
    phases = runs["second"]["phase_seconds"]
    assert {"config", "data", "model", "train", "evaluate", "save", "latency"} <= set(phases)
    assert phases["train"] >= runs["second"]["fit_seconds"] - 0.01
