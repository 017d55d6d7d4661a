"""The code's shape, checked like behaviour: no module-level import cycle among the product's
modules and no function longer than a screen (import-linter checks the arrows between the apps
in CI: `lint-imports`)."""

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "annotator", "scoring", "routing")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _product_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def module_level_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the product modules it imports at module level. Imports inside functions are
    left out: they run after every module has loaded, which is how a task module and the
    service that queues it may name each other."""
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_module_level_import_cycle():
    graph = module_level_imports(_product_modules())
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


# Longer functions are split into named steps (docs/architecture.md, code conventions).
MAX_FUNCTION_LINES = 60


def long_functions(modules: dict[str, Path], limit: int) -> list[str]:
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{name}:{node.lineno} {node.name} ({lines})")
    return found


def test_no_function_is_longer_than_a_screen():
    assert long_functions(_product_modules(), MAX_FUNCTION_LINES) == []


def test_the_length_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def too_long():\n{body}\n")
    found = long_functions({"long": tmp_path / "long.py"}, MAX_FUNCTION_LINES)
    assert [f.split(" ", 1)[1] for f in found] == [f"too_long ({MAX_FUNCTION_LINES + 1})"]


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The check above can fail: a two-module cycle is reported."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("from a import thing\n")
    graph = module_level_imports({"a": tmp_path / "a.py", "b": tmp_path / "b.py"})
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
