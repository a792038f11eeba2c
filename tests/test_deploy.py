"""From a run to a device: LiteRT (float, float16, dynamic, int8), TF.js in Node and in a real browser.

Each export is made by the CLI and then run here by the runtime that will run it, on the run's own
validation images, against the Keras model: LiteRT's interpreter (ai-edge-litert), @tensorflow/tfjs
in Node (npm installs it into a cache folder) and Chromium driven by Playwright for the web page.
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import cli_command, cli_env, run_cli
from test_quiet import NOISE
from imgexp.compose import compose_config
from imgexp.deploy.tfjs import CDN_URL, MODULES_VARIABLE, NODE_PACKAGES
from imgexp.job import run_job
from imgexp.run_folder import write_config

CHROMIUM = Path("/usr/bin/chromium")
NODE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imgexp-tests" / "tfjs"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A CNN trained on the bundled digits, in bfloat16 (a mixed-precision run's exports convert its float32
    twin). The digits live in scikit-learn, not on disk: int8 calibration rebuilds their training split."""
    run_dir = tmp_path_factory.mktemp("deploy_run")
    cfg, choices = compose_config(["dataset.image_size=[16,16]", "model.filters=[8,16]", "model.dense_units=32",
                                   "trainer.epochs=4", "trainer.verbose=0", "optimizer.lr=0.003",
                                   "trainer.precision=mixed_bfloat16"])
    write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)
    run_job(cfg, run_dir, choices)
    return run_dir


def validation_images(run_dir: Path):
    """The run's validation split as the test rebuilds it: scikit-learn's digits, split as imgexp splits them."""
    from imgexp.data.pipeline import make_dataset
    from imgexp.run_data import run_split
    from imgexp.run_folder import open_run

    batches = list(make_dataset(run_split(open_run(run_dir), "validation"), (16, 16), 64,
                                training=False).as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


@functools.cache
def keras_probabilities(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, model.keras' probabilities) on the run's validation images."""
    import keras

    images, labels = validation_images(run_dir)
    return images, labels, keras.models.load_model(run_dir / "model.keras").predict(images, verbose=0)


def litert_probabilities(path: Path, images: np.ndarray) -> tuple[np.ndarray, str]:
    """LiteRT's interpreter on float images: quantized in and dequantized out by the model's own parameters."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(images.shape))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = images
    if source["dtype"] != np.float32:
        scale, zero = source["quantization"]
        x = np.clip(np.round(images / scale + zero), -128, 127).astype(source["dtype"])
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(target["index"])
    if target["dtype"] != np.float32:
        scale, zero = target["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y, np.dtype(source["dtype"]).name


def test_a_finished_run_records_what_it_costs_to_deploy(digits_run):
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert metrics["model_bytes"] == (digits_run / "model.keras").stat().st_size
    assert 0 < metrics["latency_ms"] < 1000


@pytest.mark.parametrize("quantize", ["none", "float16", "dynamic", "int8"])
def test_tflite_exports_run_in_litert_on_the_runs_images(digits_run, tmp_path, quantize):
    out = tmp_path / f"model-{quantize}.tflite"
    result = run_cli(str(digits_run), "--format", "tflite", "--quantize", quantize, "--output", str(out),
                     module="imgexp.export", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    images, labels, keras_probs = keras_probabilities(digits_run)
    got, input_type = litert_probabilities(out, images)
    keras_accuracy = float(np.mean(keras_probs.argmax(1) == labels))
    accuracy = float(np.mean(got.argmax(1) == labels))
    manifest = json.loads((tmp_path / "manifest.json").read_text())["exports"][out.name]
    assert manifest["checked_on_images"] == len(labels)
    figures = manifest["checks"][0]
    assert figures["accuracy"] == pytest.approx(accuracy, abs=1e-9), "the manifest says what LiteRT gives"
    assert figures["keras_accuracy"] == pytest.approx(keras_accuracy, abs=1e-9)
    assert figures["bytes"] == out.stat().st_size and figures["latency_ms"] > 0
    if quantize == "int8":  # full-integer: integer input and output, as microcontrollers need
        assert input_type == "int8"
        assert accuracy >= keras_accuracy - 0.02, (accuracy, keras_accuracy)
        assert out.stat().st_size < 0.5 * (digits_run / "model.keras").stat().st_size
    else:
        assert input_type == "float32"
        assert accuracy >= keras_accuracy - 0.02
    if quantize == "none":  # the float32 twin of a bfloat16 model: same classes, bf16's rounding apart
        assert np.mean(got.argmax(1) == keras_probs.argmax(1)) >= 0.97
        assert np.max(np.abs(got - keras_probs)) < 0.05
        assert figures["verdict"] == "OK" and figures["max_difference_float32"] <= 1e-4


@pytest.fixture(scope="session")
def tfjs_modules():
    """@tensorflow/tfjs and its WASM backend for Node, installed by npm into a cache folder once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("the TF.js tests need Node.js and npm (node and npm on PATH)")
    modules = NODE_CACHE / "node_modules"
    if not all((modules / p.rsplit("@", 1)[0] / "package.json").is_file() for p in NODE_PACKAGES):
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(NODE_CACHE), "--no-audit", "--no-fund", *NODE_PACKAGES],
                       check=True, capture_output=True, timeout=600)
    return modules


def quiet_env() -> dict[str, str]:
    env = cli_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # as in a user's shell: the export keeps TensorFlow's start-up quiet itself
    return env


@pytest.fixture(scope="module")
def tfjs_export(digits_run, tfjs_modules, tmp_path_factory):
    from imgexp.deploy.tfjs_compat import INSTALL, installed_version

    if installed_version() is None:
        pytest.skip(f"the TF.js tests need the converter (tensorflowjs): {INSTALL}")
    out = tmp_path_factory.mktemp("tfjs") / "web"
    result = subprocess.run(cli_command(str(digits_run), "--format", "tfjs", "--output", str(out),
                                        module="imgexp.export"),
                            env={**quiet_env(), MODULES_VARIABLE: str(tfjs_modules)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not NOISE.findall(result.stderr + result.stdout), "the converter's imports and Node stay quiet"
    return out, result


def test_tfjs_export_agrees_with_keras_in_node_on_cpu_and_wasm(digits_run, tfjs_export, tfjs_modules):
    from imgexp.deploy.float32 import in_float32
    from imgexp.deploy.tfjs import run_in_node

    out, result = tfjs_export
    assert {p.name for p in out.iterdir()} >= {"model.json", "labels.json", "index.html"}
    assert json.loads((out / "labels.json").read_text()) == [str(d) for d in range(10)]
    assert json.loads((out / "model.json").read_text())["format"] == "graph-model"
    images, labels, keras_probs = keras_probabilities(digits_run)
    import keras

    twin = in_float32(keras.models.load_model(digits_run / "model.keras")).predict(images, verbose=0)
    found = run_in_node(out, images, tfjs_modules)
    assert set(found) == {"cpu", "wasm"}
    for backend, (probs, latency) in found.items():
        assert np.mean(probs.argmax(1) == twin.argmax(1)) == 1.0, backend
        assert np.max(np.abs(probs - twin)) <= 5e-4, backend
        assert np.mean(probs.argmax(1) == keras_probs.argmax(1)) >= 0.97, backend  # bf16's rounding apart
        assert latency > 0
    checks = json.loads((out.parent / "manifest.json").read_text())["exports"]["web"]["checks"]
    assert [c["runtime"].split()[-1] for c in checks] == ["cpu", "wasm"]
    assert all(c["verdict"] == "OK" and c["max_difference_float32"] <= 5e-4 for c in checks)
    assert "TF.js 4.22.0 wasm" in result.stdout


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_web_page_classifies_a_chosen_image_as_keras_does(digits_run, tfjs_export, tfjs_modules, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="the page test drives Chromium with playwright")
    if not CHROMIUM.is_file():
        pytest.skip(f"the page test needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    import keras
    from PIL import Image

    out, _ = tfjs_export
    model = keras.models.load_model(digits_run / "model.keras")
    images, labels, keras_probs = keras_probabilities(digits_run)
    index = int(np.argmax(keras_probs.max(1)))  # an image Keras is sure of: rounding cannot flip its class
    pixels = np.clip(np.round(images[index]), 0, 255).astype(np.uint8)
    picture = tmp_path / "digit.png"
    Image.fromarray(pixels).resize((48, 48), Image.NEAREST).save(picture)  # a raw image of another size
    raw = np.asarray(Image.open(picture).convert("RGB"), np.float32)[None]
    expected = [str(d) for d in range(10)][int(model.predict(raw, verbose=0).argmax())]

    server = serve(out)
    tfjs = tfjs_modules / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.route(CDN_URL, lambda route: route.fulfill(path=str(tfjs), content_type="text/javascript"))
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            page.set_input_files("#image", str(picture))
            page.wait_for_selector("#predictions li", timeout=60_000)
            first = page.locator("#predictions li").first
            shown, probability = first.get_attribute("data-label"), float(first.get_attribute("data-probability"))
            text = first.inner_text()
            page.screenshot(path=str(tmp_path / "page.png"))
            browser.close()
    finally:
        server.shutdown()
    assert shown == expected, (shown, expected)
    assert text.startswith(f"{expected} ") and text.endswith("%")
    assert probability == pytest.approx(float(model.predict(raw, verbose=0).max()), abs=0.02)
    assert (tmp_path / "page.png").stat().st_size > 0  # what a person sees, left for a look


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx"], "invalid choice: 'onnx'"),
    (["--format", "savedmodel", "--quantize", "int8"], "--quantize int8: only --format tflite is quantized"),
    (["--format", "tflite", "--images", "0"], "--images 0: give at least 1"),
])
def test_bad_export_requests_are_one_line(digits_run, args, message):
    result = run_cli(str(digits_run), *args, module="imgexp.export", timeout=120)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == \
        [next(line for line in result.stderr.splitlines() if message in line)], "one line, and only it"


def test_an_existing_export_is_never_overwritten(digits_run, tmp_path):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"someone's model")
    result = run_cli(str(digits_run), "--format", "tflite", "--output", str(out), module="imgexp.export", timeout=120)
    assert result.returncode == 2 and "exists already" in result.stderr
    assert out.read_bytes() == b"someone's model"


def test_a_quantized_export_past_its_accuracy_bound_fails_the_command(digits_run, tmp_path):
    out = tmp_path / "m.tflite"
    result = run_cli(str(digits_run), "--format", "tflite", "--quantize", "int8", "--max-accuracy-drop", "-100",
                     "--output", str(out), module="imgexp.export", timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "ACCURACY DROP" in result.stdout and "FAILED its check" in result.stdout
    assert out.is_file(), "the export is written; the table says what it costs"


@pytest.fixture(scope="module")
def folder_run(image_folder, tmp_path_factory):
    """A run on a folder of JPEGs that can be moved away afterwards."""
    data = tmp_path_factory.mktemp("photos") / "photos"
    shutil.copytree(image_folder, data)
    run_dir = tmp_path_factory.mktemp("folder_run")
    cfg, choices = compose_config(["dataset.image_size=[16,16]", "model.filters=[8,16]", "model.dense_units=32",
                                   "trainer.epochs=2", "trainer.verbose=0", "dataset=folder", f"dataset.path={data}"])
    write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)
    run_job(cfg, run_dir, choices)
    return run_dir, data


def test_without_the_runs_data_the_export_says_so_and_checks_on_another_folder(folder_run, tmp_path):
    run_dir, data = folder_run
    moved = data.rename(data.with_name("moved"))
    try:
        out = tmp_path / "m.tflite"
        gone = run_cli(str(run_dir), "--format", "tflite", "--quantize", "int8", "--output", str(out),
                       module="imgexp.export", timeout=120)
        assert gone.returncode == 2 and not out.exists(), gone.stderr[-2000:]
        [line] = [line for line in gone.stderr.splitlines() if "imgexp.export: error:" in line]
        assert str(data) in line and "--folder DIR" in line
        found = run_cli(str(run_dir), "--format", "tflite", "--quantize", "int8", "--output", str(out),
                        "--folder", str(moved / "validation"), "--max-accuracy-drop", "100",
                        module="imgexp.export", timeout=300)
        assert found.returncode == 0, found.stderr[-2000:]
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert manifest["exports"]["m.tflite"]["checked_on_images"] == 16  # validation/: 8 per class
    finally:
        moved.rename(data)


def test_a_split_csv_that_disagrees_with_the_data_is_said(digits_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy, ignore=shutil.ignore_patterns("export"))
    lines = (copy / "split.csv").read_text().splitlines()
    first_validation = next(i for i, line in enumerate(lines) if line.startswith("validation,"))
    lines[first_validation] = lines[first_validation].replace("validation,", "train,", 1)
    (copy / "split.csv").write_text("\n".join(lines) + "\n")
    result = run_cli(str(copy), "--format", "tflite", module="imgexp.export", timeout=120)
    assert result.returncode == 2
    assert "split.csv: its validation images are not the ones the run's dataset keys list now" in result.stderr
    assert not (copy / "export" / "model.tflite").exists()
