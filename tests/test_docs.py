"""Every Python example in the README and docs/ runs, so none can go stale.

Each ```python block is run as it stands, in order per page (a later block may use an earlier
one's names), in a folder holding the files the examples name (clip.flac: a synthetic voice),
with an empty model registry, so the built-in model answers as it would on a fresh clone.
"""

import re
import runpy
from pathlib import Path

import pytest
import soundfile as sf

from vgd import signals

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_the_readme_has_python_examples():
    assert python_blocks(ROOT / "README.md"), "the README shows the Python API"


@pytest.mark.parametrize(
    "page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_python_examples_run(page, tmp_path, monkeypatch):
    sf.write(tmp_path / "clip.flac", signals.synthetic_voice(4.0, "female", 0, seed=1), 16000)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VGD_MODELS", str(tmp_path / "no-registry"))
    source = "\n".join(python_blocks(page))
    script = tmp_path / "example.py"
    script.write_text(source)
    runpy.run_path(str(script), run_name="__main__")


def test_every_figure_says_how_to_reproduce_it():
    missing = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("!["):
                after = " ".join(lines[i + 1 : i + 6])
                if "Reproduce" not in after:
                    missing.append(f"{page.relative_to(ROOT)}:{i + 1}")
    assert missing == []


def test_relative_links_point_at_files():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in link.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert broken == []
