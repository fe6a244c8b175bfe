"""The shape of the house, checked on the source: which way imports may run.

The kernel (`backend/core`) depends on no domain; a domain imports only the domains below
it (the table), and only their public rooms (no router, no tasks, no `_private` name); the
app assembly (app, cli, worker, models, demo data, embedded servers) may import anything,
and nothing imports it. No import loop: neither among modules nor through a package's
`__init__` (Python runs every parent package when a module is imported).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("backend", "points", "volunteers")
KERNEL = "backend.core"
# What assembles the application out of the domains: free to import them all.
ASSEMBLY = {
    "backend",
    "backend.app",
    "backend.cli",
    "backend.contract",
    "backend.demo",
    "backend.embedded",
    "backend.models",
    "backend.worker",
}
# Each domain and the domains it may import (besides the kernel). Identity and geography
# are the ground: roles are granted on regions, and regions are administered by roles.
ALLOWED: dict[str, set[str]] = {
    "backend.ops": {"backend.storage"},
    "backend.wechat": set(),
    "backend.auth": {"backend.regions", "backend.wechat"},
    "backend.regions": {"backend.auth"},
    "backend.storage": {"backend.auth"},
    "backend.cases": {"backend.auth", "backend.regions", "backend.storage"},
    "backend.mediation": {"backend.auth", "backend.regions", "backend.storage", "backend.cases"},
    "backend.stats": {"backend.auth", "backend.regions", "backend.cases", "backend.mediation"},
    "points": {"backend.auth", "backend.regions", "backend.storage"},
    "volunteers": {
        "backend.auth",
        "backend.regions",
        "backend.storage",
        "backend.cases",
        "points",
    },
}
# Imported by every domain for the principal: the package stays light (its `__init__`
# gathers no router), so importing the principal never runs endpoints that import back.
LIGHT_PACKAGES = {"backend.auth"}
# Rooms another domain may not reach into.
PRIVATE_ROOMS = {"router", "tasks"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in SOURCES:
        for path in (ROOT / source).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that runs: what sits under `if TYPE_CHECKING:` is for the checker only."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in (child, *_runtime_nodes(child)))
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(module: str) -> Iterator[tuple[str, str | None]]:
    """(module imported, name imported from it or None) for each runtime import."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in SOURCES:
                    yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in SOURCES:
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in MODULES:
                    yield submodule, None
                else:
                    yield node.module, alias.name


def _owner(module: str) -> str:
    """The domain (or kernel, or assembly part) a module belongs to."""
    parts = module.split(".")
    if parts[0] != "backend":
        return parts[0]
    owner = ".".join(parts[:2])
    return owner


def _edges() -> dict[str, set[str]]:
    """Module -> modules that importing it runs: what it imports, and the packages above
    those that it is not itself inside (Python runs a package's `__init__` before any of
    its modules, so a package gathering its own routers is no loop)."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for target, _ in _imports(module):
            parts = target.split(".")
            for n in range(1, len(parts) + 1):
                name = ".".join(parts[:n])
                inside = module == name or module.startswith(name + ".")
                if name in MODULES and (name == target or not inside) and name != module:
                    graph[module].add(name)
    return graph


def test_the_kernel_depends_on_no_domain() -> None:
    wrong = [
        f"{module} imports {target}"
        for module in MODULES
        if _owner(module) == KERNEL
        for target, _ in _imports(module)
        if _owner(target) != KERNEL
    ]
    assert not wrong, "\n".join(wrong)


def test_domains_import_only_the_domains_below_them_and_only_their_public_rooms() -> None:
    wrong: list[str] = []
    for module in MODULES:
        owner = _owner(module)
        if owner in ASSEMBLY or owner == KERNEL:
            continue
        assert owner in ALLOWED, f"{owner} is a new domain: add it to ALLOWED"
        for target, name in _imports(module):
            target_owner = _owner(target)
            if target_owner in (owner, KERNEL):
                continue
            if target_owner in ASSEMBLY:
                wrong.append(f"{module} imports the assembly ({target})")
            elif target_owner not in ALLOWED[owner]:
                wrong.append(f"{module} imports {target}: {owner} may not depend on it")
            elif target.split(".")[-1] in PRIVATE_ROOMS or (name or "").startswith("_"):
                wrong.append(f"{module} reaches into {target}{'.' + name if name else ''}")
    assert not wrong, "\n".join(wrong)


def test_no_import_loop() -> None:
    graph = _edges()
    # Tarjan's strongly connected components: any component of two or more is a loop.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(loop) for loop in loops)


def test_every_domain_gathers_one_router_and_its_rooms_are_complete() -> None:
    for owner in ALLOWED:
        package = MODULES[owner]
        assert package.name == "__init__.py", f"{owner} is a package"
        if not list(package.parent.rglob("router.py")) or owner in LIGHT_PACKAGES:
            continue
        tree = ast.parse(package.read_text(encoding="utf-8"))
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        imported = {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert "router" in assigned | imported, f"{owner}/__init__.py exposes no `router`"
    # A (sub-)domain that answers HTTP has the same rooms as every other.
    for _module, path in MODULES.items():
        if path.name == "router.py":
            folder = path.parent
            missing = [
                room
                for room in ("schemas.py", "service.py", "errors.py")
                if not (folder / room).exists()
            ]
            assert not missing, f"{folder.relative_to(ROOT)} has a router but no {missing}"


def test_no_router_reads_the_application_state() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for module, path in MODULES.items()
        if path.name == "router.py" and "request.app.state" in path.read_text(encoding="utf-8")
    ]
    assert not readers, f"routers take core.deps instead: {readers}"
