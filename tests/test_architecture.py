"""The layout's rules, checked: module and function sizes, the direction of imports, one home per default.

See docs/ARCHITECTURE.md.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
LIBRARY = ("tracker", "models", "gallery", "pipeline")
ALL_CODE = LIBRARY + ("facetrack", "evaluation")
SIZE_LIMITED = ("tracker", "pipeline", "gallery")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: Command-line parsers: a flat list of options, long by nature.
PARSERS = {"build_parser"}


def _modules(packages):
    for pkg in packages:
        yield from sorted((REPO / pkg).rglob("*.py"))


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_module_of_tracker_pipeline_or_gallery_is_over_400_lines():
    big = {str(p.relative_to(REPO)): n for p in _modules(SIZE_LIMITED)
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_no_function_is_over_60_lines_outside_the_command_line_parsers():
    long = []
    for path in _modules(ALL_CODE):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in PARSERS:
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


OURS = ("tracker", "models", "gallery", "pipeline", "facetrack", "evaluation", "demo")


def test_the_tracker_imports_nothing_of_ours_and_only_numpy_and_scipy_outside_the_standard_library():
    import sys
    bad = set()
    for path in _modules(("tracker",)):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in OURS and top != "tracker":
                bad.add(f"{path.name}: {name}")
            elif top not in OURS and top not in ("numpy", "scipy", "__future__") and top not in sys.stdlib_module_names:
                bad.add(f"{path.name}: {name}")
    assert bad == set()


def test_no_library_package_imports_the_composition_layer_or_the_evaluation():
    bad = []
    for path in _modules(LIBRARY):
        if path.name == "__main__.py":
            continue  # entry points delegate to facetrack's command lines
        for name in _imports(path):
            if name.split(".")[0] in ("facetrack", "evaluation", "demo"):
                bad.append(f"{path.relative_to(REPO)}: {name}")
    assert bad == []


def _defaults(target: str) -> dict:
    module, name = target.split(":")
    obj = getattr(importlib.import_module(module), name)
    sig = inspect.signature(obj)
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-12
    return a == b


def _yaml_sections():
    from facetrack.config import SECTIONS
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    for section, (targets, _composed) in SECTIONS.items():
        for key, value in (data.get(section) or {}).items():
            yield section, targets, key, value


@pytest.mark.parametrize("section, targets, key, value",
                         list(_yaml_sections()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_configured_value_is_the_constructor_default(section, targets, key, value):
    """configs/default.yaml repeats each default with its reason; the class keyword is its one home."""
    if section in ("detector", "embedder") and key == "weights":
        pytest.skip("weights are resolved by the composition layer, not a constructor default")
    found = [d[key] for d in map(_defaults, targets) if key in d]
    assert found, f"{section}.{key} is not a keyword of {targets}"
    assert all(_same(f, value) for f in found), f"{section}.{key}: YAML {value!r}, class default {found!r}"
