"""The import graph of vgd and search/: no circle, and no import that runs back up a layer.

Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import hides
a circle from Python, not from a reader. A new module must be given a layer here.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module imports modules of its own layer or below, never above.
LAYERS = [
    ("base", "version io progress provenance cliargs pretrained"),
    ("config and records", "config params formats"),
    (
        "signals and data",
        "audio device features conditions plots manifest splits batches encoder model vad",
    ),
    ("corpora", "synth signals corpora"),
    ("inference", "checkpoint inference cache packed_audio dataset"),
    ("tasks", "calibration evaluate segment predict train_input pitch modelcard probe"),
    ("workflows", "train crossval registry pipeline adapt"),
    ("api", "api"),
    ("entry points", "cli __main__ __init__"),
    (
        "search: parts",
        "search.trials search.space search.storage search.progress search.shipping search.asha",
    ),
    ("search: results and trainable", "search.figures search.results search.trainable"),
    ("search: harness", "search.harness"),
    ("search: entry", "search.run search.__init__"),
]


def _module_name(path: Path) -> str:
    stem = path.stem
    return stem if path.parent.name == "vgd" else f"search.{stem}"


def _layer_of() -> dict[str, int]:
    out = {}
    for i, (_, names) in enumerate(LAYERS):
        for name in names.split():
            out[name] = i
    return out


def _imports(path: Path, package: str) -> set[str]:
    """The vgd/search modules ``path`` imports, named as in LAYERS."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if not node.level else f"{package}.{node.module}"
            parts = base.split(".")
            if parts[0] in ("vgd", "search") and len(parts) == 1:  # from vgd import x
                found |= {f"{parts[0]}.{a.name}" for a in node.names}
            elif parts[0] in ("vgd", "search"):
                found.add(".".join(parts[:2]))
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in ("vgd", "search")}
    names = set()
    for full in found:
        pkg, _, mod = full.partition(".")
        if pkg == "vgd" and mod == "__version__":
            mod = "__init__"
        names.add((mod or "__init__") if pkg == "vgd" else f"search.{mod or '__init__'}")
    return names


def graph() -> dict[str, set[str]]:
    out = {}
    for package in ("vgd", "search"):
        for path in sorted((ROOT / package).glob("*.py")):
            name = _module_name(path)
            out[name] = _imports(path, package) - {name}
    return out


def test_every_module_has_a_layer():
    layer = _layer_of()
    assert sorted(set(graph()) - set(layer)) == []
    assert sorted(set(layer) - set(graph())) == [], "LAYERS names a module that is gone"


def test_no_import_runs_back_up_a_layer():
    layer = _layer_of()
    upward = [
        f"{m} ({LAYERS[layer[m]][0]}) imports {d} ({LAYERS[layer[d]][0]})"
        for m, deps in graph().items()
        for d in sorted(deps)
        if d in layer and layer[d] > layer[m]
    ]
    assert upward == []


def test_vgd_never_imports_search():
    assert [m for m, deps in graph().items() if "." not in m and any("." in d for d in deps)] == []


def find_circles(g: dict[str, set[str]]) -> list[str]:
    """Every import circle a depth-first walk meets, as ``a -> b -> a``."""
    circles: list[str] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(g.get(node, ())):
            if dep in path:
                circles.append(" -> ".join(path[path.index(dep) :] + [dep]))
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(node)

    for start in sorted(g):
        if start not in done:
            visit(start, [start])
    return circles


def test_no_import_circle():
    assert find_circles(graph()) == []


def test_the_checks_see_function_level_imports_and_circles(tmp_path):
    pkg = tmp_path / "vgd"
    pkg.mkdir()
    (pkg / "a.py").write_text("def f():\n    from vgd.b import x\n")
    (pkg / "b.py").write_text("from vgd import a\nfrom vgd.config import y\n")
    assert _imports(pkg / "a.py", "vgd") == {"b"}
    assert _imports(pkg / "b.py", "vgd") == {"a", "config"}
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert find_circles({"a": {"b"}, "b": set()}) == []
