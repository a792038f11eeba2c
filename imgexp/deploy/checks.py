"""Is an export the model the user trained? Its answers on the run's own validation images, next to Keras'.

Each export is run by the runtime that will run it, and compared with two references: the run's
model.keras as Keras runs it (what was trained and validated, in its own precision) and its float32
twin (what SavedModel, TFLite and TF.js are converted from). A float export must give the answers of
the model it was converted from within its tolerance; a quantized one may lose accuracy, up to a
stated bound.
"""

from dataclasses import asdict, dataclass

import numpy as np

TOLERANCE = 1e-4  # largest |probability difference| of a float export from the model it was converted from
TFJS_TOLERANCE = 5e-4  # TF.js kernels (WASM's especially) round differently from TensorFlow's
MAX_ACCURACY_DROP = 2.0  # points of validation accuracy a quantized export may lose (--max-accuracy-drop)


@dataclass
class Reference:
    """The Keras model's answers on the check images."""

    labels: np.ndarray  # the true classes
    keras: np.ndarray  # model.keras, as Keras runs it
    float32: np.ndarray  # its float32 twin
    keras_latency_ms: float
    keras_bytes: int  # of model.keras

    @property
    def keras_accuracy(self) -> float:
        return accuracy(self.keras, self.labels)


@dataclass
class Check:
    """One export on one runtime: the figures of the table and of export/manifest.json."""

    export: str
    runtime: str
    bytes: int
    accuracy: float
    keras_accuracy: float
    agreement: float  # share of images whose top class is the Keras model's
    max_difference: float  # largest |probability difference| from model.keras
    max_difference_float32: float  # ... from its float32 twin
    latency_ms: float  # per image at batch 1, on this machine
    quantized: bool
    limit: str  # what it was held to
    verdict: str  # OK, MISMATCH or ACCURACY DROP

    def as_dict(self) -> dict:
        return asdict(self)


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 classes; a one-column (sigmoid) output is class 1 above 0.5."""
    if probabilities.shape[-1] == 1:
        return (probabilities[:, 0] > 0.5).astype(np.int64)
    return probabilities.argmax(axis=-1)


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predicted_classes(probabilities) == labels))


def check(export: str, runtime: str, size: int, got: np.ndarray, latency_ms: float, reference: Reference, *,
          converted_from_float32: bool, quantized: bool, tolerance: float = TOLERANCE,
          max_accuracy_drop: float = MAX_ACCURACY_DROP) -> Check:
    """The figures of `got` (the export's probabilities) against the reference, and the verdict."""
    got = np.asarray(got, np.float32)
    difference = float(np.max(np.abs(got - reference.keras)))
    difference_float32 = float(np.max(np.abs(got - reference.float32)))
    export_accuracy = accuracy(got, reference.labels)
    if quantized:
        limit = f"accuracy drop <= {max_accuracy_drop:g} points"
        drop = 100 * (reference.keras_accuracy - export_accuracy)
        verdict = "OK" if drop <= max_accuracy_drop + 1e-9 else "ACCURACY DROP"
    else:
        limit = f"|dp| <= {tolerance:.0e} from {'the float32 twin' if converted_from_float32 else 'model.keras'}"
        verdict = "OK" if (difference_float32 if converted_from_float32 else difference) <= tolerance else "MISMATCH"
    return Check(export=export, runtime=runtime, bytes=int(size), accuracy=export_accuracy,
                 keras_accuracy=reference.keras_accuracy,
                 agreement=float(np.mean(predicted_classes(got) == predicted_classes(reference.keras))),
                 max_difference=difference, max_difference_float32=difference_float32,
                 latency_ms=round(float(latency_ms), 3), quantized=quantized, limit=limit, verdict=verdict)


def human_bytes(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    return f"{size / 1000:.1f} KB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"


def print_checks(checks: list[Check], reference: Reference, images: int) -> None:
    """The export's figures beside the Keras model's, one column per runtime (it fits a narrow terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{checks[0].export}: checked on {images} validation images of the run")
    table.add_column("", no_wrap=True)
    table.add_column("model.keras", no_wrap=True)
    for c in checks:
        table.add_column(c.runtime, no_wrap=True)
    figures = [
        ("size", human_bytes(reference.keras_bytes), lambda c: human_bytes(c.bytes)),
        ("accuracy", f"{reference.keras_accuracy:.4f}", lambda c: f"{c.accuracy:.4f}"),
        ("top-1 agreement", "", lambda c: f"{100 * c.agreement:.1f}%"),
        ("max |dp| vs Keras", "", lambda c: f"{c.max_difference:.1e}"),
        ("max |dp| vs float32", "", lambda c: f"{c.max_difference_float32:.1e}"),
        ("ms/image, batch 1", f"{reference.keras_latency_ms:.2f}", lambda c: f"{c.latency_ms:.2f}"),
        ("check", "", lambda c: c.verdict),
    ]
    for name, keras_value, value in figures:
        table.add_row(name, keras_value, *(value(c) for c in checks))
    table.caption = f"check: {checks[0].limit}; |dp|: probability difference"
    Console().print(table)
