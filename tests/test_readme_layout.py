"""The README's floor plan matches the tree: every module and every experiment folder is named in it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The README's text from `## title` to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_every_module_is_named_in_the_layout():
    layout = section("Layout")
    modules = sorted(p for p in (ROOT / "imgexp").rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    missing = [str(p.relative_to(ROOT)) for p in modules if not re.search(rf"\b{re.escape(p.name)}", layout)]
    assert not missing, f"README.md's Layout does not name {missing}"


def test_every_folder_the_layout_names_exists():
    layout = section("Layout")
    named = set(re.findall(r"\b([a-z_]+)/ ", layout))
    missing = [name for name in named if not any(p.is_dir() for p in (ROOT / name, ROOT / "imgexp" / name))]
    assert not missing, f"README.md's Layout names folders that do not exist: {missing}"


def test_every_experiment_is_listed_under_benchmarks():
    benchmarks = section("Benchmarks")
    folders = sorted(p.name for p in (ROOT / "experiments").iterdir() if p.is_dir() and not p.name.startswith("."))
    missing = [f for f in folders if f"experiments/{f}/" not in benchmarks]
    assert not missing, f"README.md's Benchmarks does not list {missing}"
