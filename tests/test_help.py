"""--help is imgexp's own page; a mistaken name suggests the nearest one; values are shown as written."""

import pytest

from conftest import error_lines, run_in_process

MODEL_OPTIONS = ("model: cnn, convnexttiny, efficientnetb0, efficientnetv2b0, inceptionv3, mobilenetv2, "
                 "mobilenetv3large, mobilenetv3small, resnet50")


def test_help_is_imgexps_page(tmp_path):
    result = run_in_process("--help", cwd=tmp_path)
    assert result.returncode == 0
    for text in ("imgexp: hyperparameter experiments", MODEL_OPTIONS,
                 "dataset: csv, digits, folder", "imgexp.export", "model.weights=null", "--hydra-help"):
        assert text in result.stdout, text
    assert "Hydra (" in run_in_process("--hydra-help", cwd=tmp_path).stdout, "Hydra's own help stays reachable"


@pytest.mark.parametrize("args, expected", [
    (["model.dropuot=0.1"], "model.dropuot: unknown config key; did you mean model.dropout?"),
    (["optimizer.learning_rate=0.1"], "did you mean optimizer.lr?"),
    (["trainer.epocs=3"], "did you mean trainer.epochs?"),
    (["model=resnet18"], "model=resnet18: no such option; did you mean resnet50? Or choose one of cnn,"),
    (["dataset.image_size=64"], "dataset.image_size=64: give [height,width], e.g. 'dataset.image_size=[64,64]'"),
    (["tuner=hyperband", "search_space=cnn", "pruner=median"], "pruner=median with tuner=hyperband"),
    (["-m", "hydra/launcher=ray", "optimizer.lr=1e-3,1e-4"], "hydra/launcher=ray: not installed; pip install "
                                                              "'imgexp[ray]' (hydra-ray-launcher)"),
])
def test_mistakes_teach(tmp_path, args, expected):
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert expected in line, line
    assert "PrunerName." not in line
