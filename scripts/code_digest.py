"""Write the sha256 of the Python modules a pipeline stage can run, as JSON.

    python scripts/code_digest.py search/run.py --out results/release/code/search.json
    python scripts/code_digest.py vgd search --out results/release/code.json   # whole packages

A DVC stage cannot depend on ``vgd/`` when its outputs live in ``vgd/pretrained/`` (each run
would change its own input). vgd/pretrained/dvc.yaml runs this on every ``dvc repro`` instead
and its stages depend on the digest, which changes only when a module does.

A folder stands for every module under it. A ``.py`` file stands for itself and every module of
this project it can import, read from the source: imports at any depth (inside functions
too, which run later), relative imports, and any string constant that names a module (lazy
exports through ``importlib``). So a stage whose code a change cannot reach does not rerun: the
card's wording reruns the final fit (4 minutes), not the search (an hour).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vgd.io import atomic_write_text


def digest(paths: Iterable[Path]) -> dict[str, str]:
    """{module path: sha256} of the modules the paths can run, sorted by path."""
    files: set[Path] = set()
    for path in paths:
        files |= set(path.rglob("*.py")) if path.is_dir() else import_closure(path)
    return {f.as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(files)}


def import_closure(entry: Path, root: Path = Path()) -> set[Path]:
    """The entry file and every module under ``root`` (or beside the entry) it can import."""
    search_dirs = [entry.parent, root]
    sources: dict[Path, _Source] = {}
    todo = [entry]
    while todo:
        while todo:
            path = todo.pop()
            if path not in sources:
                sources[path] = source = _read(path, _package_of(path, root))
                todo.extend(f for name in source.imports for f in _module_files(name, search_dirs))
        # then the lazy exports that some module read names (``vgd.load_model``)
        mentioned = set().union(*(s.mentions for s in sources.values()))
        lazy = {m for s in sources.values() for attr, m in s.lazy.items() if attr in mentioned}
        todo = [f for m in lazy for f in _module_files(m, search_dirs) if f not in sources]
    return set(sources)


@dataclass(frozen=True)
class _Source:
    """What a module can import: its import statements, the names it uses, its lazy exports."""

    imports: set[str]
    mentions: set[str]
    lazy: dict[str, str]


def _read(path: Path, package: str) -> _Source:
    """Parse a module, skipping ``if TYPE_CHECKING:`` blocks, which never run."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    imports: set[str] = set()
    mentions: set[str] = set()
    pairs: dict[
        str, str
    ] = {}  # str -> str dict entries: the lazy exports, if a __getattr__ reads them
    for node in _running_nodes(tree):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, package)
            imports.add(base)
            imports.update(f"{base}.{a.name}" if base else a.name for a in node.names)
            mentions.update(a.name for a in node.names)
        elif isinstance(node, ast.Attribute):
            mentions.add(node.attr)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                key, value = getattr(k, "value", None), getattr(v, "value", None)
                if isinstance(key, str) and isinstance(value, str):
                    pairs[key] = value
    lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    return _Source(imports, mentions, pairs if lazy else {})


def _running_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of the tree except those under ``if TYPE_CHECKING:``."""
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def _absolute(module: str, level: int, package: str) -> str:
    """The absolute name of ``from <level dots><module> import``."""
    if not level:
        return module
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, module] if module else base)


def _module_files(name: str, search_dirs: list[Path]) -> list[Path]:
    """The files ``import a.b.c`` runs: a/__init__.py, a/b/__init__.py, a/b/c.py."""
    parts = name.split(".")
    if not all(parts):
        return []
    for base in search_dirs:
        found = []
        for i in range(1, len(parts) + 1):
            stem = base.joinpath(*parts[:i])
            for candidate in (stem / "__init__.py", stem.with_suffix(".py")):
                if candidate.is_file():
                    found.append(candidate)
                    break
        if found:
            return found
    return []


def _package_of(path: Path, root: Path) -> str:
    """The package a module file belongs to, as Python names it from ``root`` ('' for a script)."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return ""
    parts = list(rel.parent.parts)
    return ".".join(parts) if parts and (root / rel.parent / "__init__.py").is_file() else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", type=Path, nargs="+", help="entry .py files or package folders")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    missing = [str(x) for x in args.paths if not (x.is_dir() or x.suffix == ".py" and x.is_file())]
    if missing:
        print(
            f"code_digest: error: {', '.join(missing)}: no such folder or .py file",
            file=sys.stderr,
        )
        return 2
    try:
        table = digest(args.paths)
    except SyntaxError as e:
        print(f"code_digest: error: {e.filename}: {e.msg} (line {e.lineno})", file=sys.stderr)
        return 2
    atomic_write_text(args.out, json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
