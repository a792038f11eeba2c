"""Using a run trained here: predict (names, probabilities, CSV, skipped files), export, evaluate."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY, run_cli, write_class_folders
from imgexp.job import run_job
from imgexp.compose import compose_config
from imgexp.run_folder import write_config


@pytest.fixture(scope="module")
def folder_run(image_folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("predict_run")
    cfg, choices = compose_config([*TINY, "dataset=folder", f"dataset.path={image_folder}", "trainer.epochs=3",
                                   "optimizer.lr=0.003"])
    write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)  # as Hydra does for a CLI run
    run_job(cfg, run_dir, choices)
    return run_dir


def test_predict_folder_and_files_with_csv(folder_run, image_folder, tmp_path):
    odd = tmp_path / "odd"
    odd.mkdir()
    Image.fromarray(np.full((40, 70), 200, np.uint8), mode="L").save(odd / "gray.png")
    Image.fromarray(np.full((20, 20, 4), 90, np.uint8), mode="RGBA").save(odd / "rgba.gif")
    (odd / "notes.txt").write_text("not an image")
    csv_path = tmp_path / "predictions.csv"
    result = run_cli(str(folder_run), str(image_folder / "validation"), str(odd), "--top-k", "2",
                     "--output", str(csv_path), module="imgexp.predict", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping" in result.stderr and "notes.txt" in result.stderr
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 16 + 2
    for row in rows:
        assert row["class"] in ("horizontal", "vertical")
        assert float(row["horizontal"]) + float(row["vertical"]) == pytest.approx(1.0, abs=1e-5)
    validation = [r for r in rows if "/validation/" in r["path"]]
    correct = [r["class"] == ("horizontal" if "/horizontal/" in r["path"] else "vertical") for r in validation]
    assert np.mean(correct) > 0.5
    assert len([l for l in result.stdout.splitlines() if l.strip()]) == 18


@pytest.mark.parametrize("args, message", [
    (["/no/such/run", "x.jpg"], "no such run directory"),
])
def test_bad_run_dir_is_one_line(args, message):
    result = run_cli(*args, module="imgexp.predict", timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_run_without_model_is_one_line(tmp_path):
    result = run_cli(str(tmp_path), "x.jpg", module="imgexp.predict", timeout=60)
    assert result.returncode == 2 and "no model.keras" in result.stderr


def test_a_run_that_did_not_finish_is_one_line(folder_run, tmp_path):
    """model.keras without metrics.json: killed before the run wrote its last file."""
    for name in ("model.keras", "labels.json"):
        (tmp_path / name).write_bytes((folder_run / name).read_bytes())
    result = run_cli(str(tmp_path), "x.jpg", module="imgexp.predict", timeout=60)
    assert result.returncode == 2 and "did not finish" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_help_does_not_import_tensorflow(command):
    code = (f"import sys\nsys.argv=['p','--help']\nfrom imgexp.{command} import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'tensorflow' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def validation_images(image_folder, size=(16, 16)):
    files = sorted((image_folder / "validation").rglob("*.jpg"))[:6]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize(size[::-1]), np.float32) for f in files])


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel", "tflite"])
def test_export_loads_back_and_agrees(folder_run, image_folder, tmp_path, fmt):
    import keras
    import tensorflow as tf

    out = tmp_path / {"keras": "m.keras", "h5": "m.h5", "savedmodel": "sm", "tflite": "m.tflite"}[fmt]
    result = run_cli(str(folder_run), "--format", fmt, "--output", str(out), module="imgexp.export", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(checked: OK)" in result.stdout
    from imgexp.deploy.float32 import in_float32

    images = validation_images(image_folder)
    trained = keras.models.load_model(folder_run / "model.keras")
    as_trained = trained.predict(images, verbose=0)
    # SavedModel and TFLite compute in float32 whatever the run's precision was (it is auto here).
    expected = as_trained if fmt in ("keras", "h5") else in_float32(trained).predict(images, verbose=0)
    if fmt in ("keras", "h5"):
        got = keras.models.load_model(out).predict(images, verbose=0)
    elif fmt == "savedmodel":
        loaded = tf.saved_model.load(str(out))  # keep it referenced while its function runs
        got = np.asarray(loaded.serve(images))
    else:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(out))
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(images.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, images)
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(got, as_trained, atol=0.02)  # bfloat16 keeps ~3 significant digits
    again = run_cli(str(folder_run), "--format", fmt, "--output", str(out), module="imgexp.export", timeout=120)
    assert again.returncode == 2 and "exists already" in again.stderr, "an export is never overwritten"


def test_evaluate_on_the_runs_validation_split(folder_run):
    result = run_cli(str(folder_run), module="imgexp.evaluate", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = folder_run / "evaluation" / "validation"
    metrics = json.loads((out / "metrics.json").read_text())
    trained = json.loads((folder_run / "metrics.json").read_text())
    assert metrics["images"] == 16, "image_folder/validation holds 2 x 8 images"
    assert metrics["accuracy"] == pytest.approx(trained["val_accuracy"]), "the same model on the run's own split"
    assert metrics["loss"] == pytest.approx(trained["val_loss"], rel=1e-4)
    assert (out / "confusion_matrix.png").is_file()
    assert "precision" in result.stdout and "horizontal" in result.stdout and "recall" in result.stdout


def test_evaluate_another_folder_and_its_test_split(folder_run, tmp_path):
    write_class_folders(tmp_path / "other" / "train", ["horizontal", "vertical"], per_class=4, seed=5)
    write_class_folders(tmp_path / "other" / "test", ["horizontal", "vertical"], per_class=3, seed=6)
    result = run_cli(str(folder_run), f"dataset.path={tmp_path / 'other'}", "--split", "test",
                     module="imgexp.evaluate", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    test_split = json.loads((folder_run / "evaluation" / "test" / "metrics.json").read_text())
    assert test_split["images"] == 6 and test_split["split"] == "test"
    result = run_cli(str(folder_run), "--folder", str(tmp_path / "other" / "test"), module="imgexp.evaluate",
                     timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    as_folder = json.loads((folder_run / "evaluation" / "folder-test" / "metrics.json").read_text())
    assert as_folder["images"] == 6, "the folder's 2 x 3 images, read as they are"
    assert as_folder["accuracy"] == test_split["accuracy"] and as_folder["loss"] == pytest.approx(test_split["loss"])
    assert json.loads((folder_run / "evaluation" / "test" / "metrics.json").read_text()) == test_split, \
        "evaluating a folder named test does not overwrite the test split's evaluation"


def test_evaluate_errors_are_one_line(folder_run, image_folder):
    result = run_cli(str(folder_run), "--split", "test", module="imgexp.evaluate", timeout=120)
    assert result.returncode == 2 and "no test/ folder" in result.stderr and "Traceback" not in result.stderr


def test_a_model_with_code_inside_is_refused(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "model.keras")
    (tmp_path / "labels.json").write_text('["a", "b"]')
    (tmp_path / "metrics.json").write_text('{"val_accuracy": 1.0}')  # as a finished run has
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    result = run_cli(str(tmp_path), str(image), module="imgexp.predict", timeout=120)
    assert result.returncode == 2 and "refused" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("tool, extra", [("imgexp.predict", ["x.png"]), ("imgexp.evaluate", []),
                                         ("imgexp.export", ["--format", "h5"])])
def test_a_model_file_cut_short_is_one_line(folder_run, tmp_path, tool, extra):
    for name in ("labels.json", "metrics.json"):
        (tmp_path / name).write_bytes((folder_run / name).read_bytes())
    shutil.copytree(folder_run / ".hydra", tmp_path / ".hydra")  # evaluate rebuilds the split from it
    whole = (folder_run / "model.keras").read_bytes()
    (tmp_path / "model.keras").write_bytes(whole[: len(whole) * 2 // 3])  # an interrupted copy
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    result = run_cli(str(tmp_path), *[str(tmp_path / e) if e.endswith(".png") else e for e in extra],
                     module=tool, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [l for l in result.stderr.splitlines() if ": error:" in l]
    assert len(errors) == 1 and "damaged" in errors[0] and "model.keras" in errors[0]


def copy_of(run_dir, tmp_path):
    copy = tmp_path / "received_run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("evaluation", "export"))
    return copy


def test_export_never_writes_through_a_link_in_the_run_folder(folder_run, tmp_path):
    run = copy_of(folder_run, tmp_path)
    target = tmp_path / "home" / ".ssh" / "authorized_keys"
    target.parent.mkdir(parents=True)
    (run / "export").mkdir()
    (run / "export" / "model.keras").symlink_to(target)  # dangling: `exists()` is False
    result = run_cli(str(run), "--format", "keras", module="imgexp.export", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "exists already" in result.stderr
    assert not target.exists()
    (run / "export" / "model.keras").unlink()
    (run / "export").rmdir()
    (run / "export").symlink_to(target.parent)  # the whole folder linked out
    result = run_cli(str(run), "--format", "h5", module="imgexp.export", timeout=120)
    assert result.returncode == 2 and "symbolic link" in result.stderr
    assert not list(target.parent.iterdir())


def test_evaluate_never_writes_through_a_link_in_the_run_folder(folder_run, tmp_path):
    run = copy_of(folder_run, tmp_path)
    bashrc = tmp_path / ".bashrc"
    bashrc.write_text("# mine\n")
    (run / "evaluation" / "validation").mkdir(parents=True)
    (run / "evaluation" / "validation" / "metrics.json").symlink_to(bashrc)
    result = run_cli(str(run), module="imgexp.evaluate", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert bashrc.read_text() == "# mine\n", "the link was replaced, not followed"
    assert json.loads((run / "evaluation" / "validation" / "metrics.json").read_text())["images"] == 16
    shutil.rmtree(run / "evaluation")
    (run / "evaluation").symlink_to(tmp_path)
    result = run_cli(str(run), module="imgexp.evaluate", timeout=300)
    assert result.returncode == 2 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "validation").exists()


def test_predict_skips_a_decompression_bomb_in_one_line(folder_run, image_folder, tmp_path):
    big = Image.new("1", (13000, 13000))  # 169 megapixels in a file of a few KB
    big.save(tmp_path / "big.png", optimize=True)
    result = run_cli(str(folder_run), str(tmp_path / "big.png"), str(image_folder / "validation" / "vertical"),
                     module="imgexp.predict", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    [line] = [l for l in result.stderr.splitlines() if "big.png" in l]
    assert "13000x13000 is 169,000,000 pixels" in line and "Traceback" not in result.stderr
