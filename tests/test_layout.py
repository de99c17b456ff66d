"""The package layout keeps its promises: dependencies point one way, no import circles, small
modules. Imports are read from the source with `ast` (function-level imports included)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlreason", "envs", "rewards", "experiments")
# which first-party packages each package may import
ALLOWED = {
    "rlreason": {"rlreason"},
    "envs": {"envs"},
    "rewards": {"rewards", "envs"},
    "experiments": set(PACKAGES),
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """First-party modules imported anywhere in `path` (the longest known prefix of each)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(len(parts), 0, -1):
                if ".".join(parts[:i]) in known:
                    found.add(".".join(parts[:i]))
                    break
    return found


def test_dependencies_point_one_way_between_the_packages():
    mods = modules()
    bad = []
    for name, path in mods.items():
        top = name.split(".")[0]
        for dep in imports_of(path, set(mods)):
            if dep.split(".")[0] not in ALLOWED[top]:
                bad.append(f"{name} imports {dep}")
    assert not bad, bad


def test_no_module_imports_itself_through_a_circle():
    mods = modules()
    graph = {n: imports_of(p, set(mods)) - {n} for n, p in mods.items()}
    # a package's __init__ re-exporting its own modules is not a circle of behaviour
    for n in graph:
        graph[n] = {d for d in graph[n] if not (n.startswith(d + ".") and d in mods)}
    state: dict[str, int] = {}
    cycles = []

    def visit(n, stack):
        state[n] = 1
        for d in graph[n]:
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, cycles


def test_every_module_is_under_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, long
