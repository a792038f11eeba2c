"""What the runs that keep a backbone frozen reuse from the runs before them (training/shared_backbone.py,
training/checkpoints.py): the backbone itself, and the bytes of its checkpoint file."""

import json

import h5py
import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from imgexp.compose import compose_config
from imgexp.data.run_cache import RunCache
from imgexp.job import run_job
from imgexp.models.backbones import BACKBONE_LAYER, build, split_at_backbone
from imgexp.models.identity import weights_digest, weights_key
from imgexp.run_context import RunContext
from imgexp.run_folder import FROZEN_PART_WEIGHTS, write_config
from imgexp.training import checkpoints
from imgexp.training.shared_backbone import BACKBONE, shareable, shared_backbone

FROZEN = ["model=mobilenetv2", "model.trainable=false", "augmentation=none", "dataset.image_size=[32,32]",
          "trainer.epochs=2", "trainer.verbose=0", "model.dropout=0.3", "trainer.early_stopping_patience=0"]


def trained(tmp_path, name, context, *overrides):
    run_dir = tmp_path / name
    run_dir.mkdir()
    cfg, choices = compose_config([*FROZEN, *overrides])
    write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)
    run_job(cfg, run_dir, choices, context)
    return run_dir


def outcome(run_dir):
    """The trained head's weights and what the run reported (without its wall times)."""
    model = keras.models.load_model(run_dir / "model.keras")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    head = model.layers[-1].get_layer(index=-1).get_weights()
    return head, {k: metrics[k] for k in ("val_accuracy", "val_loss", "train_loss", "best_epoch")}


def shared_backbones(context):
    return [backbone for backbone, _ in context.cache.values(BACKBONE)]


def test_frozen_runs_of_one_owner_share_one_backbone_and_end_as_each_would_alone(tmp_path, standin_mobilenetv2):
    weights = f"model.weights={standin_mobilenetv2}"
    context = RunContext()
    first = trained(tmp_path, "first", context, weights, "optimizer.lr=0.01")
    (backbone,) = shared_backbones(context)
    before = weights_digest(backbone)
    second = trained(tmp_path, "second", context, weights, "optimizer.lr=0.003", "model.dropout=0.1")
    assert context.cache.passes[BACKBONE] == 1, "built once for both runs"
    assert weights_digest(backbone) == before, "a frozen run leaves it as it was"
    # Each run again, alone: its own backbone, and its head initialised from the same random draws.
    for run_dir, overrides in ((first, ["optimizer.lr=0.01"]), (second, ["optimizer.lr=0.003", "model.dropout=0.1"])):
        alone = trained(tmp_path, f"{run_dir.name}_alone", RunContext(), weights, *overrides)
        (head, metrics), (head_alone, metrics_alone) = outcome(run_dir), outcome(alone)
        for a, b in zip(head, head_alone):
            np.testing.assert_array_equal(a, b)
        assert metrics == metrics_alone


def test_a_rewritten_weights_file_or_another_seed_gets_another_backbone(tmp_path, standin_mobilenetv2):
    copy = tmp_path / "copy.weights.h5"
    copy.write_bytes(open(standin_mobilenetv2, "rb").read())
    cache = RunCache()

    def backbone(*overrides, seed=0):
        cfg, _ = compose_config([*FROZEN, *overrides])
        keras.utils.set_random_seed(seed)  # as each run starts (training/run.py, runtime_settings)
        return shared_backbone(cfg, cache)

    first = backbone(f"model.weights={copy}")
    assert backbone(f"model.weights={copy}") is first, "the same file and random state: the same backbone"
    copy.write_bytes(copy.read_bytes())  # the same path, written again: it may hold other weights now
    assert backbone(f"model.weights={copy}") is not first
    random_one = backbone("model.weights=null", seed=1)
    assert backbone("model.weights=null", seed=2) is not random_one, "another seed: another random backbone"
    assert cache.passes[BACKBONE] == 4


@pytest.mark.parametrize("overrides, shared", [
    (FROZEN, True),
    ([*FROZEN, "model.trainable=true"], False),  # the backbone trains: its weights are the run's own
    ([*FROZEN, "trainer.fine_tune_epochs=1"], False),  # the head, then the backbone
    (["model=cnn"], False),  # no backbone
    ([*FROZEN, "trainer.strategy=mirrored"], False),  # each run's variables belong to its own strategy
], ids=["frozen", "trained", "fine_tuned", "cnn", "mirrored"])
def test_only_a_run_that_never_trains_its_backbone_shares_it(overrides, shared):
    cfg, _ = compose_config(overrides)
    assert shareable(cfg) is shared


def test_a_run_resumed_beside_frozen_runs_builds_its_own(tmp_path, monkeypatch, standin_mobilenetv2):
    """A resume loads its files into its model: into a shared backbone they would reach every later run."""
    from test_resume import Interrupt, perturbed_backbones
    from imgexp.training import fit

    weights = f"model.weights={standin_mobilenetv2}"
    context = RunContext()
    trained(tmp_path, "fresh", context, weights)
    (backbone,) = shared_backbones(context)
    before = weights_digest(backbone)
    original = fit.callbacks
    monkeypatch.setattr(fit, "callbacks", lambda *a: [*original(*a), Interrupt(1)])
    with pytest.raises(KeyboardInterrupt):
        trained(tmp_path, "resumed", context, weights)
    monkeypatch.setattr(fit, "callbacks", original)
    perturbed_backbones(monkeypatch)  # the resumed run's own backbone: other weights, until its file replaces them
    cfg, choices = compose_config([*FROZEN, weights])
    run_job(cfg, tmp_path / "resumed", choices, context)
    assert weights_digest(backbone) == before
    assert context.cache.passes[BACKBONE] == 1


def frozen_model(weights=None):
    keras.utils.set_random_seed(0)
    return build("mobilenetv2", (32, 32), 3, weights=weights, trainable=False)


def test_the_frozen_part_file_says_what_it_holds_and_its_bytes_are_written_again(tmp_path, monkeypatch):
    model, cache = frozen_model(), RunCache()
    key = weights_key(split_at_backbone(model)[0])
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        checkpoints.save_frozen_part(model, tmp_path / name, key, cache)
    a, b = (tmp_path / name / FROZEN_PART_WEIGHTS for name in ("a", "b"))
    assert a.read_bytes() == b.read_bytes() and cache.count(checkpoints.FROZEN_FILE) == 1
    assert checkpoints.marked_weights(b) == key
    # Keras reads the file back: into a model with other weights, it gives the saved ones.
    other = frozen_model()
    other.get_layer(BACKBONE_LAYER).set_weights([w * 1.01 for w in other.get_layer(BACKBONE_LAYER).get_weights()])
    split_at_backbone(other)[0].load_weights(b)
    assert weights_key(split_at_backbone(other)[0]) == key

    loads = []
    load_weights = keras.Model.load_weights
    monkeypatch.setattr(keras.Model, "load_weights", lambda self, path, *a, **k: loads.append(path) or
                        load_weights(self, path, *a, **k))
    head_file = tmp_path / "a" / "head.weights.h5"
    checkpoints.head_of(model).save_weights(head_file)
    checkpoints.load_head_file(model, head_file, tmp_path / "a")
    assert loads == [head_file], "the frozen part holds the file's weights already: not loaded again"
    changed = frozen_model()
    changed.get_layer(BACKBONE_LAYER).set_weights([w * 1.01 for w in changed.get_layer(BACKBONE_LAYER).get_weights()])
    loads.clear()
    checkpoints.load_head_file(changed, head_file, tmp_path / "a")
    assert loads == [tmp_path / "a" / FROZEN_PART_WEIGHTS, head_file]
    assert weights_key(split_at_backbone(changed)[0]) == key
    (tmp_path / "a" / FROZEN_PART_WEIGHTS).write_bytes(b"not a file of weights")
    assert checkpoints.marked_weights(tmp_path / "a" / FROZEN_PART_WEIGHTS) is None


@pytest.mark.parametrize("mark", ["x" * 10_000, np.bytes_(b"x" * 10_000), np.arange(4), 7],
                         ids=["text", "long", "array", "number"])
def test_a_mark_that_is_not_a_weights_key_is_not_read(tmp_path, mark):
    """A run folder may come from anyone: a mark is read only when it has a key's type and size."""
    path = tmp_path / "marked.weights.h5"
    with h5py.File(path, "w") as file:
        file.attrs[checkpoints.DIGEST_ATTRIBUTE] = mark
    assert checkpoints.marked_weights(path) is None
