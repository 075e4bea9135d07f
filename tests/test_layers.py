"""The package's import graph runs one way: each layer imports only the layers below it, and no
module reaches itself through its imports (read from the source, so lazy imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import stsanet

PACKAGE = Path(stsanet.__file__).parent
# lowest first; a module may import its own layer and the ones before it
LAYERS = ["errors", "atomic", "conf", "models", "data", "metrics", "render", "lit", "runs", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """stsanet modules that `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("stsanet")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.startswith("stsanet"):
            found.add(node.module)
            # `from stsanet.runs import reproduce` imports the module stsanet.runs.reproduce
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if (PACKAGE.parent / node.module.replace(".", "/") / f"{a.name}.py")
                      .is_file()}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in imports_of(path) if i in modules and i != name}
            for name, path in modules.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_belongs_to_a_layer():
    assert [m for m in graph() if m != "stsanet" and layer(m) is None] == []


def test_no_module_imports_a_higher_layer():
    upward = sorted(f"{m} -> {i}" for m, targets in graph().items() for i in targets
                    if layer(m) is not None and layer(i) is not None and layer(i) > layer(m))
    assert upward == []


def test_no_import_cycles():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [module, target]))
            elif target not in state:
                visit(target, path + [module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_the_walker_sees_lazy_and_package_imports(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from stsanet.runs import reproduce\n"
                      "    import stsanet.models.stsa\n")
    assert imports_of(source) == {"stsanet.runs", "stsanet.runs.reproduce",
                                  "stsanet.models.stsa"}
