"""The release pipeline's code digests: each stage reruns when a module it can run changes, and
only then. A module the static reading misses would leave a stage's outputs stale unflagged, so
the closure is checked against what Python really imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ["search/run.py", "scripts/cross_corpus.py", "scripts/release_model.py"]


@pytest.fixture
def digest():
    return load_script("code_digest")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_folder_stands_for_every_module_under_it(digest, tmp_path):
    pkg = tmp_path / "pkg"
    write(pkg / "a.py", "x = 1\n")
    write(pkg / "sub" / "b.py", "y = 2\n")
    (pkg / "model.pt").write_bytes(b"weights")  # data beside the code is not code
    out = tmp_path / "code.json"
    assert digest.main([str(pkg), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert sorted(json.loads(first)) == [f"{pkg.as_posix()}/a.py", f"{pkg.as_posix()}/sub/b.py"]
    (pkg / "model.pt").write_bytes(b"other weights")
    assert digest.main([str(pkg), "--out", str(out)]) == 0 and out.read_bytes() == first
    write(pkg / "a.py", "x = 3\n")
    assert digest.main([str(pkg), "--out", str(out)]) == 0 and out.read_bytes() != first


def closure_project(root: Path) -> None:
    """A package with every kind of import the closure must follow, and modules it must not."""
    write(root / "app" / "__init__.py", "")
    write(root / "app" / "core" / "__init__.py", "from .ops import run\n")
    write(
        root / "app" / "core" / "ops.py", "def run():\n    from ..late import go\n    return go()\n"
    )
    write(root / "app" / "late.py", "from app.core import util\ndef go(): return util.x\n")
    write(root / "app" / "core" / "util.py", "x = 1\n")
    write(
        root / "app" / "lazy" / "__init__.py",
        "import importlib\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app.typed import T\n"
        "_EXPORTS = {'card': 'app.card', 'other': 'app.other'}\n"
        "def __getattr__(name):\n"
        "    return getattr(importlib.import_module(_EXPORTS[name]), name)\n",
    )
    for name in ("typed", "card", "other", "unused"):
        write(root / "app" / f"{name}.py", f"{name} = 1\n")
    write(root / "scripts" / "helper.py", "h = 1\n")
    write(
        root / "scripts" / "main.py",
        "import helper\nimport app.core\nimport app.lazy\nprint(app.core.run(), app.lazy.card)\n",
    )


def test_the_closure_follows_late_relative_and_lazy_imports_only(digest, tmp_path, monkeypatch):
    closure_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    found = {p.as_posix() for p in digest.import_closure(Path("scripts/main.py"))}
    assert found == {
        "scripts/main.py",
        "scripts/helper.py",  # beside the script, as Python's sys.path[0]
        "app/__init__.py",
        "app/core/__init__.py",
        "app/core/ops.py",  # a relative import in a package's __init__
        "app/late.py",  # inside a function, two dots up
        "app/core/util.py",  # `from package import module`
        "app/lazy/__init__.py",
        "app/card.py",  # a lazy export the script names
    }  # not app/other.py (a lazy export nobody names), app/typed.py (typing only), app/unused.py
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # as the project root is on a stage's path
    ran = subprocess.run(
        [sys.executable, "scripts/main.py"], capture_output=True, text=True, env=env
    )
    assert ran.returncode == 0 and ran.stdout.split() == ["1", "1"], ran.stderr


def test_a_stage_digest_changes_only_with_a_module_the_stage_can_run(digest, tmp_path, monkeypatch):
    closure_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = Path("code.json")
    assert digest.main(["scripts/main.py", "--out", str(out)]) == 0
    first = out.read_bytes()
    for outside in ("app/other.py", "app/typed.py", "app/unused.py"):
        write(Path(outside), "changed = 2\n")
    assert digest.main(["scripts/main.py", "--out", str(out)]) == 0 and out.read_bytes() == first
    write(Path("app/core/util.py"), "x = 2\n")
    assert digest.main(["scripts/main.py", "--out", str(out)]) == 0 and out.read_bytes() != first


def test_bad_paths_and_broken_modules_get_one_line(digest, tmp_path, capsys):
    out = tmp_path / "code.json"
    assert digest.main([str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "nope: no such folder or .py file" in capsys.readouterr().err
    bad = write(tmp_path / "bad.py", "def broken(:\n")
    assert digest.main([str(bad), "--out", str(out)]) == 2
    assert f"{bad}: invalid syntax" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_module_python_imports_is_in_the_stage_digest(digest, entry, monkeypatch):
    """Import the entry and each module of its closure: no other module of vgd/ or search/ loads."""
    monkeypatch.chdir(ROOT)
    closure = {p.as_posix() for p in digest.import_closure(Path(entry))}
    modules = sorted(
        p.removesuffix(".py").replace("/", ".") for p in closure if "scripts/" not in p
    )
    code = (
        "import importlib, runpy, sys\n"
        f"sys.path[:0] = [{str(Path(entry).parent)!r}, '.']\n"
        f"runpy.run_path({entry!r}, run_name='not_main')\n"
        f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
        " if n.split('.')[0] in ('vgd', 'search') and getattr(m, '__file__', None)))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    loaded = {Path(f).resolve().relative_to(ROOT).as_posix() for f in ran.stdout.split()}
    assert loaded and loaded <= closure, loaded - closure


def test_the_search_and_the_comparison_do_not_run_the_card_writer(digest, monkeypatch):
    monkeypatch.chdir(ROOT)
    search, compare, final = (
        {p.as_posix() for p in digest.import_closure(Path(e))} for e in ENTRIES
    )
    assert "vgd/modelcard.py" in final and "vgd/train.py" in search & compare & final
    assert "vgd/modelcard.py" not in search | compare
    assert "search/trainable.py" in search and "search/space.py" in compare


def test_no_module_imports_by_a_name_computed_at_run_time():
    """The closure reads imports from the source; vgd's lazy exports are its one dynamic import."""
    dynamic = []
    for path in sorted([*ROOT.glob("vgd/**/*.py"), *ROOT.glob("search/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                "importlib.import_module",
                "__import__",
                "import_module",
            ):
                dynamic.append(path.relative_to(ROOT).as_posix())
    assert dynamic == ["vgd/__init__.py"]
