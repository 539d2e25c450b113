"""vgd as a package: the wheel carries both packages and every search space, and an install that
is not editable (nothing of the checkout importable) finds the spaces and runs the CLI."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("vgd", "search", "search_spaces")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout, so the build leaves no build/ or egg-info here.

    pip builds in an isolated environment: pyproject needs a newer setuptools than the venv's.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, src)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("vgd-*.whl")
    return path


def test_wheel_holds_the_code_the_spaces_and_the_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("vgd", "search"):
        for path in (ROOT / package).rglob("*.py"):
            if "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in names
    spaces = sorted((ROOT / "search_spaces").glob("*.yaml"))
    assert spaces
    for path in spaces:
        assert f"search/search_spaces/{path.name}" in names
    for name in ("model.pt", "MODEL_CARD.md", "metrics.json", "recipe.yaml"):
        assert f"vgd/pretrained/{name}" in names  # the built-in real-voice model ships
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "vgd = vgd.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


LOAD_SPACES = """
import json, vgd, search.space as s
spaces = {name: len(s.load_space(name).params) for name in s.available_spaces()}
print(json.dumps({"vgd": vgd.__file__, "space": s.__file__, "dir": str(s.SPACES_DIR),
                  "spaces": spaces}))
"""


@pytest.mark.slow
def test_an_installed_wheel_finds_its_spaces_outside_the_checkout(wheel, tmp_path):
    site = (tmp_path / "site").resolve()
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target"]
    done = subprocess.run([*install, str(site), str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # -S skips site, so the editable install's finder (.pth) never runs; the venv's site-packages
    # come after the install only for torch, numpy and the rest.
    venv = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *venv])}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-S", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    loaded = python("-c", LOAD_SPACES)
    assert loaded.returncode == 0, loaded.stderr
    found = json.loads(loaded.stdout)
    assert Path(found["vgd"]).is_relative_to(site)
    assert Path(found["space"]).is_relative_to(site)
    assert Path(found["dir"]) == site / "search" / "search_spaces"
    shipped = {p.stem for p in (ROOT / "search_spaces").glob("*.yaml")}
    assert set(found["spaces"]) == shipped
    assert all(n > 0 for n in found["spaces"].values())

    helped = python("-m", "vgd.cli", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "usage" in helped.stdout.lower()
