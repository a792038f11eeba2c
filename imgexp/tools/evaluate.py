"""Evaluate a finished run's model on its validation split, its test split or another folder.

    python -m imgexp.evaluate RUN_DIR                       # the run's own validation split
    python -m imgexp.evaluate RUN_DIR --split test          # DATASET/test/<class>/*
    python -m imgexp.evaluate RUN_DIR dataset.path=DIR      # DIR in the tutorial's layout
    python -m imgexp.evaluate RUN_DIR --folder DIR          # DIR/<class>/* as it is

Writes metrics.json, confusion_matrix.png and classification_report.txt into
RUN_DIR/evaluation/<split>/ (or evaluation/folder-<name>/) and prints per-class precision and recall.
"""

import sys
from pathlib import Path

from imgexp import safe_write
from imgexp.errors import UserError
from imgexp.run_data import folder_split, run_config, run_source
from imgexp.run_folder import (CONFUSION_FILE, CONFUSION_PLOT, EVALUATION_DIR, METRICS_FILE, REPORT_FILE, FinishedRun,
                               open_run, trained_image_size, write_json)
from imgexp.tools.cli import OneLineParser, run_tool


def choose_split(run: FinishedRun, split: str, folder: Path | None, dataset_path: str | None):
    """(name, Split) to evaluate on, with the same classes as the run."""
    if folder is not None:
        return f"folder-{folder.name}", folder_split(folder, run.class_names)
    source, _ = run_source(run, dataset_path)
    if split == "test":
        if source.test is None:
            path = run_config(run)["dataset"].get("path") if dataset_path is None else dataset_path
            raise UserError(f"dataset.path={path}: no test split (no test/ folder, split column or "
                            "dataset.test_split); use --split validation or --folder DIR")
        return "test", source.test
    return "validation", source.validation


def evaluate(run_dir: Path, split: str, folder: Path | None, dataset_path: str | None, batch_size: int) -> Path:
    from imgexp.tensorflow_runtime import import_tensorflow

    import_tensorflow()
    from imgexp.data.pipeline import make_dataset
    from imgexp.models.head import choose_head
    from imgexp.tracking.artifacts import write_classification_report
    from imgexp.tracking.plots import confusion_counts, plot_confusion_matrix
    from imgexp.training.evaluation import balanced_accuracy, predict_split

    run = open_run(run_dir)
    name, data = choose_split(run, split, folder, dataset_path)
    model = run.load_model()
    head = choose_head(len(run.class_names), "sigmoid" if model.output_shape[-1] == 1 else "softmax")
    ds = make_dataset(data, trained_image_size(model), batch_size, training=False)
    y_true, y_pred, loss = predict_split(model, ds, head)
    out = safe_write.checked_folder(run_dir / EVALUATION_DIR / name, run_dir)  # no link out of the run folder
    write_json(out / METRICS_FILE, {"accuracy": float((y_true == y_pred).mean()),
                                      "balanced_accuracy": balanced_accuracy(y_true, y_pred), "loss": loss,
                                      "images": int(len(y_true)), "split": name})
    counts = confusion_counts(y_true, y_pred, run.class_names, out / CONFUSION_FILE)
    plot_confusion_matrix(counts, run.class_names, out / CONFUSION_PLOT)
    print(write_classification_report(y_true, y_pred, run.class_names, out / REPORT_FILE))
    print(f"accuracy {float((y_true == y_pred).mean()):.4f}, loss {loss:.4f} on {len(y_true)} images; wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m imgexp.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run, multirun job, trial or a search's best/")
    parser.add_argument("overrides", nargs="*", help="dataset.path=DIR: evaluate on another folder in the same layout")
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--folder", type=Path, help="a folder of class sub-folders to evaluate on as it is")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    return run_tool("imgexp.evaluate", lambda: evaluate(args.run_dir, args.split, args.folder,
                                                  dataset_path_override(args.overrides), args.batch_size))


def dataset_path_override(overrides: list[str]) -> str | None:
    unknown = [o for o in overrides if not o.startswith("dataset.path=")]
    if unknown:
        raise UserError(f"{unknown[0]}: only dataset.path=DIR can be given here")
    return next((o.split("=", 1)[1] for o in overrides), None)


if __name__ == "__main__":
    sys.exit(main())
