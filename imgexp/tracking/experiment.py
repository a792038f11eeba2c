"""The HParams experiment of a search or a multirun sweep: which columns TensorBoard shows, in which order.

Without one, TensorBoard infers the columns from the sessions and ticks the first
few in its own order, so the keys that were searched are hidden among dozens of
fixed ones. Written once at the root of a search or sweep, it declares the
searched keys first with their domains (marked as the ones that differ, which is
what TensorBoard 2.21 sorts by before the name), then the group choices, then
every other key, and the metrics with val_accuracy and val_loss first.

Built from TensorBoard's protos and its event-file writer, which need no TensorFlow:
a sweep's parent process (joblib, submitit) does not pay TensorFlow's start-up for it.
"""

import time
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import struct_pb2
from tensorboard.plugins.hparams import api_pb2

from imgexp.tracking.hparams import CONFIG_GROUPS, HParamValue
from imgexp.tracking.tb_compat import experiment_summary, write_summary_event

EXPERIMENT_DIR = "hparams_experiment"  # under the search or sweep folder: a TensorBoard run of its own

# (folder below the session, tag, column name): the first two are what a search ranks by; the last four are
# Keras' per-epoch scalars of the last epoch.
METRICS = (("", "best/val_accuracy", "val_accuracy"), ("", "best/val_loss", "val_loss"),
           ("", "best/val_balanced_accuracy", "val_balanced_accuracy"), ("", "epochs_run", "epochs_run"),
           ("", "pruned", "pruned"), ("validation", "epoch_accuracy", "last val_accuracy"),
           ("validation", "epoch_loss", "last val_loss"), ("train", "epoch_accuracy", "last accuracy"),
           ("train", "epoch_loss", "last loss"))


@dataclass(frozen=True)
class Searched:
    """A key the search or sweep varies: its discrete values, or its interval."""

    key: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None


def as_value(value: HParamValue) -> struct_pb2.Value:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, (int, float)):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=str(value))


def value_type(value: HParamValue) -> int:
    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    if isinstance(value, (int, float)):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def searched_info(param: Searched) -> api_pb2.HParamInfo:
    """`differs`: TensorBoard (2.21) lists the hparams that differ first, then by name, whatever the order
    declared, and its dashboard ticks the first few: so the searched keys are the ones shown."""
    if param.values:
        return api_pb2.HParamInfo(name=param.key, type=value_type(param.values[0]), differs=True,
                                  domain_discrete=struct_pb2.ListValue(values=[as_value(v) for v in param.values]))
    return api_pb2.HParamInfo(name=param.key, type=api_pb2.DATA_TYPE_FLOAT64, differs=True,
                              domain_interval=api_pb2.Interval(min_value=param.low, max_value=param.high))


def experiment(searched: list[Searched], hparams: dict[str, HParamValue]) -> api_pb2.Experiment:
    """Searched keys first (with domains), then the group choices, then the rest (alphabetical)."""
    infos = [searched_info(p) for p in searched]
    done = {p.key for p in searched}
    groups = [g for g in CONFIG_GROUPS if g in hparams and g not in done]
    rest = sorted(k for k in hparams if k not in done and k not in groups)
    infos += [api_pb2.HParamInfo(name=k, type=value_type(hparams[k])) for k in (*groups, *rest)]
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag), display_name=name)
               for group, tag, name in METRICS]
    return api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=time.time())


def write_experiment(root: Path, searched: list[Searched], hparams: dict[str, HParamValue]) -> Path:
    """ROOT/hparams_experiment/: TensorBoard's experiment summary for every session below ROOT."""
    summary = experiment_summary(experiment(searched, hparams))
    out = root / EXPERIMENT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("events.out.tfevents.*"):  # a resumed search or sweep: one experiment, the latest
        old.unlink()
    # TensorBoard's writer reaches for tf.io.gfile, importing TensorFlow if it is installed: import it here
    # first, without its C++ start-up lines (a multirun's parent process gets here before any job).
    from imgexp.tensorflow_runtime import import_tensorflow

    import_tensorflow()
    write_summary_event(out, summary)
    return out
