"""No module imports from a layer above its own (README: Layout): the order a newcomer can rely on."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first. A module is placed by its longest matching prefix.
LAYERS = [
    ("base", ["imgexp.errors", "imgexp.safe_write", "imgexp.folder_lock", "imgexp.stopwatch", "imgexp.keras_compat",
              "imgexp.hydra_compat", "imgexp.tensorflow_runtime", "imgexp.latency", "imgexp.config",
              "imgexp.config_use", "imgexp.run_folder"]),
    ("data and models", ["imgexp.data", "imgexp.models", "imgexp.compose", "imgexp.run_data"]),
    ("training and tracking", ["imgexp.training", "imgexp.tracking", "imgexp.run_table", "imgexp.run_context"]),
    ("one job", ["imgexp.job", "imgexp.hydra_callbacks"]),
    ("searches and deployment", ["imgexp.tuning", "imgexp.deploy"]),
    ("entry points", ["imgexp.app", "imgexp.tools", "imgexp.__main__", "imgexp.compare", "imgexp.predict",
                      "imgexp.evaluate", "imgexp.export", "imgexp.rerun"]),
]


def layer_of(module: str) -> int | None:
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.Module) -> set[str]:
    """The imgexp modules a file imports, leaving out `if TYPE_CHECKING:` blocks (annotations only)."""
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("imgexp"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if (ROOT / Path(*f"{node.module}.{a.name}".split("."))).with_suffix(".py").exists())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("imgexp"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in (ROOT / "imgexp").rglob("*.py")
                if module_name(p) != "imgexp" and layer_of(module_name(p)) is None]
    assert not unplaced, f"place {unplaced} in tests/test_layers.py's LAYERS (and the README's Layout)"


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for path in (ROOT / "imgexp").rglob("*.py"):
        module = module_name(path)
        own = layer_of(module)
        for dependency in imported(ast.parse(path.read_text())):
            theirs = layer_of(dependency)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} ({LAYERS[own][0]}) imports {dependency} ({LAYERS[theirs][0]})")
    assert not upward, upward
