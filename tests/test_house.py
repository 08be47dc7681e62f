"""The house: each app stands on the ones below it and never reaches up, and no module takes
part in an import cycle. Read from the source, so it fails the moment an arrow is reversed."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Which of our packages each one may import (besides itself). `core` imports none of ours;
# `cvm` is the project's wiring and may import everything.
ALLOWED = {
    "core": set(),
    "customers": {"core"},
    "services": {"core", "customers"},
    "valuation": {"core", "customers", "services"},
    "cockpit": {"core", "customers", "services", "valuation"},
    "cvm": {"core", "customers", "services", "valuation", "cockpit"},
}
OURS = set(ALLOWED)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module of ours this file imports, at the top or inside a function."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # `from pkg import module` imports a module, not only a name
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


def source_files(root: Path):
    for app in OURS:
        for path in (root / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(path, root): path for path in source_files(root)}
    graph = {}
    for name, path in files.items():
        graph[name] = {m for m in imported_modules(path, root) if m in files and m != name}
    return graph


def reversed_arrows(root: Path) -> list[str]:
    wrong = []
    for name, targets in import_graph(root).items():
        app = name.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != app and other not in ALLOWED[app]:
                wrong.append(f"{name} -> {target}")
    return sorted(wrong)


def import_cycles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    graph = import_graph(root)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_apps_import_only_the_floors_below_them():
    assert reversed_arrows(ROOT) == []


def test_no_module_takes_part_in_an_import_cycle():
    assert import_cycles(ROOT) == []


@pytest.fixture
def house_copy(tmp_path):
    for app in OURS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_the_check_fails_when_an_arrow_is_reversed(house_copy):
    """The ground floor reaching up, as customers once did into services and valuation."""
    models = house_copy / "customers" / "models.py"
    models.write_text("from valuation.models import CustomerValue  # noqa\n" + models.read_text(encoding="utf-8"))
    assert reversed_arrows(house_copy) == ["customers.models -> valuation.models"]


def test_the_check_fails_on_a_file_level_cycle(house_copy):
    selectors = house_copy / "customers" / "selectors.py"
    access = house_copy / "customers" / "access.py"
    access.write_text(access.read_text(encoding="utf-8") + "\nfrom .selectors import search_customers  # noqa\n")
    assert ["customers.access", "customers.selectors"] in import_cycles(house_copy)
    assert selectors.exists()


def test_the_valuation_engine_loads_without_django():
    """valuation/engine is pure maths, run on a CSV export as well as in the nightly run:
    every module of it, imported on a fresh interpreter, loads no Django (nor does core.cents,
    which its money rounding uses)."""
    code = ("import importlib, pkgutil, sys, valuation.engine as engine; "
            "[importlib.import_module(f'valuation.engine.{m.name}') for m in pkgutil.iter_modules(engine.__path__)]; "
            "assert 'core.cents' in sys.modules; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))")
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                            env=environment)
    assert result.stdout.strip() == "[]"
