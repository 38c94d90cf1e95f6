"""The dependency rules of DESIGN.md ("Layout"), checked on the source: a change that breaks them fails here.

``violations(root)`` reads every module under ``root`` and names each import a rule forbids; the tests
run it on this tree, and on small trees made for the purpose to show that each rule does catch what
it forbids.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# resolver's rooms, and the rooms (besides registry, config and the room itself) each may import
ROOMS: dict[str, set[str]] = {
    "core": set(),
    "resolution": {"core"},
    "writes": {"core", "resolution"},
    "keys": {"core"},
    "replication": {"core", "resolution"},
    "http": {"core", "resolution", "writes", "keys", "replication"},
    "native": {"core", "resolution", "writes", "keys", "replication"},
    "ops": {"core", "resolution", "writes", "keys", "replication"},
    "serving": {"core", "resolution", "writes", "keys", "replication", "http", "native", "ops"},
    "cli": {"core", "resolution", "writes", "keys", "replication", "http", "native", "ops", "serving"},
}
NO_CONFIG = {"core"}  # core is shared by everything and configured by nothing
AIOHTTP_SERVER_ROOMS = {"http", "serving"}
WITHOUT_AIOHTTP = {("serving", "node"), ("resolution", "engine"), ("resolution", "cache")}
WITHOUT_ASYNCPG = {("resolution", "engine"), ("resolution", "cache")}
IO_MODULES = {"asyncpg", "aiohttp", "os", "time", "socket", "resolver"}
CLOCKS = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "datetime.datetime.now", "time.time",
          "time.monotonic"}
ENVIRONMENT = {"os.environ", "os.getenv", "os.environb"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> list[str]:
    """Every module the file imports, relative imports made absolute (``from x import y`` gives x and x.y)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append(module)
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def attribute_uses(path: Path) -> set[str]:
    """Dotted names used in the module, like ``time.time`` or ``os.environ``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name):
            found.add(f"{node.value.value.id}.{node.value.attr}.{node.attr}")
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def _aiohttp_server(name: str) -> bool:
    return name == "aiohttp.web" or name.startswith(("aiohttp.web.", "aiohttp.web_"))


def registry_violations(root: Path, path: Path) -> list[str]:
    names = imports(root, path)
    problems = [f"imports {n}" for n in names if _top(n) in ("resolver", "aiohttp")]
    pure = path.parent == root / "registry" or (root / "registry" / "wire") in path.parents
    if pure:
        problems += [f"pure module imports {n}" for n in names if _top(n) in IO_MODULES]
        problems += [f"pure module reads the clock or environment: {a}" for a in sorted(attribute_uses(path) & (CLOCKS | ENVIRONMENT))]
    return problems


def resolver_violations(root: Path, path: Path) -> list[str]:
    parts = path.relative_to(root / "resolver").with_suffix("").parts
    room = parts[0] if len(parts) > 1 else None
    names = imports(root, path)
    problems = []
    if room is not None:
        allowed = ROOMS.get(room, set()) | {room}
        for name in names:
            bits = name.split(".")
            if bits[0] == "resolver" and len(bits) > 1 and bits[1] != "config" and bits[1] not in allowed:
                problems.append(f"room {room} imports {name}")
            if bits[:2] == ["resolver", "config"] and room in NO_CONFIG:
                problems.append(f"room {room} imports {name}")
            if _aiohttp_server(name) and room not in AIOHTTP_SERVER_ROOMS:
                problems.append(f"room {room} imports aiohttp's server side ({name})")
        module = (room, parts[-1])
        if module in WITHOUT_AIOHTTP and any(_top(n) == "aiohttp" for n in names):
            problems.append(f"{room}/{parts[-1]} imports aiohttp")
        if module in WITHOUT_ASYNCPG and any(_top(n) == "asyncpg" for n in names):
            problems.append(f"{room}/{parts[-1]} imports asyncpg")
    elif any(_aiohttp_server(n) for n in names):
        problems.append(f"resolver/{parts[-1]} imports aiohttp's server side")
    if path != root / "resolver" / "config" / "__init__.py" and attribute_uses(path) & ENVIRONMENT:
        problems.append("reads the environment outside resolver/config")
    return problems


def violations(root: Path) -> dict[str, list[str]]:
    """Module path → what it breaks, for every module under ``root`` that breaks a rule."""
    found: dict[str, list[str]] = {}
    for package, check in (("registry", registry_violations), ("resolver", resolver_violations)):
        for path in sorted((root / package).rglob("*.py")):
            problems = check(root, path)
            if problems:
                found[str(path.relative_to(root))] = problems
    return found


# --- this tree -----------------------------------------------------------------------------------


def test_the_tree_keeps_every_rule():
    assert violations(ROOT) == {}


def test_every_room_exists_with_a_docstring_saying_what_it_may_import():
    for room in ("core", "resolution", "writes", "keys", "http", "serving", "ops", "cli"):
        init = ROOT / "resolver" / room / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "mport" in doc, f"resolver/{room}/__init__.py says nothing of what it may import"
    assert (ROOT / "registry" / "pg" / "__init__.py").exists()


def test_registry_keeps_its_pure_modules_at_the_top_and_postgresql_in_pg():
    top = {p.stem for p in (ROOT / "registry").glob("*.py")}
    assert top >= {"model", "encoding", "values", "value_json", "permissions", "errors", "records", "access"}
    assert {p.stem for p in (ROOT / "registry" / "pg").glob("*.py")} >= {"db", "migrate", "store", "feed", "embedded"}
    assert not top & {"db", "migrate", "store", "feed", "embedded"}


# --- the rules catch what they forbid ------------------------------------------------------------


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"registry/__init__.py": "", "resolver/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "culprit", "says"),
    [
        ({"registry/model.py": "from resolver.core import x\n"}, "registry/model.py", "imports resolver.core"),
        ({"registry/pg/store.py": "import aiohttp\n"}, "registry/pg/store.py", "imports aiohttp"),
        ({"registry/model.py": "import asyncpg\n"}, "registry/model.py", "pure module imports asyncpg"),
        ({"registry/model.py": "import datetime\nnow = datetime.datetime.now()\n"}, "registry/model.py", "datetime.datetime.now"),
        ({"resolver/core/a.py": "from ..resolution import engine\n"}, "resolver/core/a.py", "room core imports resolver.resolution"),
        ({"resolver/core/a.py": "from ..config import Settings\n"}, "resolver/core/a.py", "room core imports resolver.config"),
        ({"resolver/resolution/a.py": "from ..writes.registrar import R\n"}, "resolver/resolution/a.py", "room resolution imports resolver.writes"),
        ({"resolver/keys/a.py": "from resolver.resolution.engine import Engine\n"}, "resolver/keys/a.py", "room keys imports resolver.resolution"),
        ({"resolver/http/a.py": "from ..serving.node import Node\n"}, "resolver/http/a.py", "room http imports resolver.serving"),
        ({"resolver/http/a.py": "from ..native import tcp\n"}, "resolver/http/a.py", "room http imports resolver.native"),
        ({"resolver/ops/a.py": "from ..http.app import create_app\n"}, "resolver/ops/a.py", "room ops imports resolver.http"),
        ({"resolver/writes/a.py": "from aiohttp import web\n"}, "resolver/writes/a.py", "aiohttp's server side"),
        ({"resolver/resolution/up.py": "from aiohttp.web_request import Request\n"}, "resolver/resolution/up.py", "aiohttp's server side"),
        ({"resolver/serving/node.py": "import aiohttp\n"}, "resolver/serving/node.py", "serving/node imports aiohttp"),
        ({"resolver/resolution/engine.py": "import asyncpg\n"}, "resolver/resolution/engine.py", "resolution/engine imports asyncpg"),
        ({"resolver/keys/a.py": "import os\nx = os.environ\n"}, "resolver/keys/a.py", "reads the environment"),
    ],
)
def test_a_forbidden_import_is_reported(tmp_path, files, culprit, says):
    found = violations(tree(tmp_path, files))
    assert culprit in found, found
    assert any(says in problem for problem in found[culprit]), found[culprit]


def test_allowed_imports_are_not_reported(tmp_path):
    files = {
        "resolver/config/__init__.py": "import os\nx = os.environ\n",
        "resolver/writes/a.py": "from ..resolution.engine import Engine\nfrom ..config import Settings\nfrom aiohttp import hdrs\n",
        "resolver/resolution/upstream.py": "import aiohttp\nfrom ..core.authority import Delegated\n",
        "resolver/serving/worker.py": "from aiohttp import web\nfrom ..http.app import create_app\nfrom ..ops import bootstrap\n",
        "resolver/cli/main.py": "from ..serving.supervisor import serve\n",
        "registry/pg/store.py": "import asyncpg\nimport time\nfrom ..model import Handle\n",
    }
    assert violations(tree(tmp_path, files)) == {}
