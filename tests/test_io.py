"""Atomic writes: whole files or none, readable like any other file the user writes."""

from __future__ import annotations

import os
import stat

import pytest

from vgd.io import atomic_write_json, atomic_write_text


def test_an_atomic_write_gets_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "card.md"
    atomic_write_text(path, "old")

    class Boom(Exception):
        pass

    def explode(f):
        f.write("half")
        raise Boom

    from vgd.io import atomic_write

    with pytest.raises(Boom):
        atomic_write(path, explode)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["card.md"]
