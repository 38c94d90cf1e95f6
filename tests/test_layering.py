"""The dependency rules of DESIGN.md, checked on the source: a change that breaks them fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = {"model", "encoding", "values", "value_json", "permissions", "errors", "records", "signing", "trust", "jws"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def attribute_uses(path: Path) -> set[str]:
    """Dotted names used in the module, like ``time.time`` or ``os.environ``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name):
            found.add(f"{node.value.value.id}.{node.value.attr}.{node.attr}")
    return found


@pytest.mark.parametrize("path", modules("registry"), ids=lambda p: str(p.relative_to(ROOT)))
def test_registry_never_imports_resolver_or_aiohttp(path):
    assert not imported(path) & {"resolver", "aiohttp"}


@pytest.mark.parametrize("path", [p for p in modules("registry") if p.stem in PURE], ids=lambda p: p.stem)
def test_pure_registry_modules_do_no_io_and_read_no_clock(path):
    assert not imported(path) & {"asyncpg", "aiohttp", "os", "time", "socket", "resolver"}
    clocks = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "datetime.datetime.now", "time.time"}
    assert not attribute_uses(path) & clocks


def test_pure_modules_exist():
    assert {p.stem for p in modules("registry")} >= {"model", "encoding", "values", "value_json", "permissions", "errors", "records"}


def test_engine_imports_neither_aiohttp_nor_asyncpg():
    assert not imported(ROOT / "resolver" / "engine.py") & {"aiohttp", "asyncpg"}


@pytest.mark.parametrize("path", modules("registry") + modules("resolver"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_config_reads_the_environment(path):
    if path == ROOT / "resolver" / "config.py":
        return
    assert not attribute_uses(path) & {"os.environ", "os.getenv", "os.environb"}
