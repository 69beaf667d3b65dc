"""Print the package-to-package imports inside bert_repro (issue 19: one way through the code).

    python scripts/import_graph.py            # one line per package: what it imports
    python scripts/import_graph.py --modules  # the same, module by module

A package is a folder under bert_repro/ (data, tasks, stages, ...) or a top-level module;
framework imports (mindspore, mindnlp, mindtorch) are listed too, so a package that must stay
framework-free shows at a glance whether it does. Imports inside functions count: they are the
lazy ones, still a dependency.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bert_repro"
FRAMEWORK = ("mindspore", "mindnlp", "mindtorch")


def unit(module: str, modules: bool) -> str:
    """`bert_repro.data.glue` -> `data` (or the module itself with --modules)."""
    parts = module.split(".")[1:]
    if modules:
        return ".".join(parts)
    return parts[0] if parts else module


def imports_of(path: Path) -> set[str]:
    """Absolute names this file imports (relative imports resolved), framework roots kept."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def graph(modules: bool = False) -> dict[str, set[str]]:
    """{package: packages it imports} over every .py under bert_repro/."""
    edges: dict[str, set[str]] = defaultdict(set)
    known = {
        ".".join(("bert_repro", *p.relative_to(PACKAGE).with_suffix("").parts))
        for p in PACKAGE.rglob("*.py")
    } | {"bert_repro." + ".".join(p.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("*/")}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        source = unit(".".join(("bert_repro", *parts)), modules)
        edges.setdefault(source, set())
        for name in imports_of(path):
            root = name.split(".")[0]
            if root in FRAMEWORK:
                edges[source].add(f"[{root}]")
            elif root == "bert_repro" and name in known:
                target = unit(name, modules)
                if target != source and target:
                    edges[source].add(target)
    return edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="module by module")
    args = parser.parse_args()
    for source, targets in sorted(graph(args.modules).items()):
        print(f"{source:<16} -> {', '.join(sorted(targets)) or '-'}")


if __name__ == "__main__":
    main()
