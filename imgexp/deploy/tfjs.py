"""TensorFlow.js: a graph model (model.json and weight shards) with its labels and a web page, and
TF.js itself in Node to run it.

The graph format, not the layers one: TF.js does not read Keras 3's layer configs (`batch_shape`,
DTypePolicy dicts). The graph is converted from a SavedModel whose `serve` endpoint runs the float32
model with training=False, so resizing, preprocessing, dropout and batch norm are the inference ones.
"""

import json
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from imgexp import safe_write
from imgexp.deploy.tfjs_compat import TESTED_VERSION
from imgexp.errors import UserError

PAGE = "index.html"
LABELS = "labels.json"
NODE_PACKAGES = (f"@tensorflow/tfjs@{TESTED_VERSION}", f"@tensorflow/tfjs-backend-wasm@{TESTED_VERSION}")
MODULES_VARIABLE = "IMGEXP_TFJS_MODULES"  # a node_modules folder holding NODE_PACKAGES
DEFAULT_PREFIX = Path("~/.cache/imgexp/tfjs")
BACKENDS = ("cpu", "wasm")
CDN_URL = f"https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@{TESTED_VERSION}/dist/tf.min.js"


def write_tfjs(saved_model: Path, folder: Path, labels: list[str], root: Path, convert) -> None:
    """model.json, its shards, labels.json and index.html in `folder`, all or nothing."""
    page = resources.files("imgexp.deploy").joinpath("page.html").read_text().replace("{{TFJS_URL}}", CDN_URL)

    def write(temp: Path) -> None:
        convert(str(saved_model), str(temp), signature_def="serve", saved_model_tags="serve")
        (temp / LABELS).write_text(json.dumps(labels))  # a fresh folder of its own, renamed into place whole
        (temp / PAGE).write_text(page)

    safe_write.write_folder_with(folder, write, root)


def node_modules() -> Path:
    """The node_modules folder holding TF.js for Node, or one line saying how to get it."""
    if shutil.which("node") is None:
        raise UserError("--format tfjs checks the model in Node.js with TF.js; install Node.js (node on PATH)")
    folder = Path(os.environ.get(MODULES_VARIABLE) or DEFAULT_PREFIX.expanduser() / "node_modules")
    missing = [p for p in NODE_PACKAGES if not (folder / p.rsplit("@", 1)[0] / "package.json").is_file()]
    if missing:
        raise UserError(f"--format tfjs checks the model with TF.js in Node; {folder} lacks {missing[0]}: "
                        f"npm install --prefix {DEFAULT_PREFIX} {' '.join(NODE_PACKAGES)} "
                        f"(or set {MODULES_VARIABLE} to a node_modules folder holding them)")
    return folder


def run_in_node(model_dir: Path, images: np.ndarray, modules: Path,
                backends: tuple[str, ...] = BACKENDS) -> dict[str, tuple[np.ndarray, float]]:
    """{backend: (probabilities, latency ms at batch 1)} from TF.js in Node on float images in [0, 255]."""
    script = resources.files("imgexp.deploy").joinpath("tfjs_node.js")
    with tempfile.TemporaryDirectory(prefix="imgexp-tfjs-") as tmp:
        pixels, out = Path(tmp) / "images.f32", Path(tmp) / "out.json"
        images.astype("<f4").tofile(pixels)
        with resources.as_file(script) as script_path:
            result = subprocess.run(["node", str(script_path), str(model_dir), str(pixels),
                                     json.dumps(list(images.shape)), ",".join(backends), str(out)],
                                    env={**os.environ, "NODE_PATH": str(modules)}, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"TF.js in Node failed: {result.stderr.strip()[-2000:]}")
        found = json.loads(out.read_text())
    return {backend: (np.asarray(r["probabilities"], np.float32).reshape(r["shape"]), float(r["latency_ms"]))
            for backend, r in found.items()}
