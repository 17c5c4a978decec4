"""The arrows that must never exist (docs/architecture/house.json, "never"), held against the imports:
no module of a part imports a module of a part it must not know."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOUSE = json.loads((ROOT / "docs" / "architecture" / "house.json").read_text())


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        target = ROOT / path
        found.extend(sorted(target.rglob("*.py")) if path.endswith("/") else [target])
    return found


def _owner(module: str) -> str | None:
    """The part holding `module` (a dotted name under `sharelake`), or None."""
    relative = "src/" + module.replace(".", "/")
    for part, spec in HOUSE["parts"].items():
        for path in spec["is"]:
            stem = path.removesuffix(".py")
            if relative == stem or (path.endswith("/") and (relative + "/").startswith(path)):
                return str(part)
    return None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "sharelake" or n.startswith("sharelake.")}


@pytest.mark.parametrize(("source", "target", "why"), HOUSE["never"], ids=lambda v: str(v)[:24])
def test_no_forbidden_arrow(source: str, target: str, why: str) -> None:
    broken = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _files(HOUSE["parts"][source]["is"])
        for name in sorted(_imports(path))
        if _owner(name) == target
    ]
    assert broken == [], f"never {source} -> {target} ({why})"
