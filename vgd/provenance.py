"""Where an artefact came from: file hashes, the DVC hash of its data, the git commit, the
machine that computed it."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

log = logging.getLogger(__name__)


def file_hash(path: str | os.PathLike, h: Any = None) -> str:
    """Hex digest of a file, read in blocks (md5 unless another hashlib object is given)."""
    h = h if h is not None else hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _dvc_locks(workdir: Path) -> list[Path]:
    """dvc.lock in ``workdir``, then in the root of the repository (.dvc or .git) around it."""
    workdir = workdir.resolve()
    locks = [workdir / "dvc.lock"]
    for d in (workdir, *workdir.parents):
        if (d / ".dvc").is_dir() or (d / ".git").exists():
            locks.append(d / "dvc.lock")
            break
    return [p for i, p in enumerate(locks) if p.is_file() and p not in locks[:i]]


def find_data_version(
    manifest: str | os.PathLike, workdir: str | os.PathLike = "."
) -> tuple[str, str]:
    """(hash, source) naming the data a model was trained on.

    The DVC hash recorded in dvc.lock (in ``workdir`` or its repository root) for the manifest
    as a stage's out or dep, or for a directory out that holds it (DVC's ``….dir`` hash);
    otherwise the manifest's own md5, source ``"file md5"``. A dvc.lock hash for the manifest
    file that no longer matches the file is not used: the lock describes other data.
    """
    manifest = Path(manifest).resolve()
    own = file_hash(manifest)
    for lock in _dvc_locks(Path(workdir)):
        try:
            stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
        except (OSError, yaml.YAMLError) as e:
            log.warning("%s: unreadable, ignored (%s)", lock, e)
            continue
        enclosing = None
        for stage in stages.values():
            for entry in [*(stage.get("outs") or []), *(stage.get("deps") or [])]:
                if not isinstance(entry, dict) or not entry.get("md5"):
                    continue
                path = (lock.parent / entry["path"]).resolve()
                if path == manifest:
                    if entry["md5"] == own:
                        return entry["md5"], "dvc.lock"
                    log.warning("%s: the hash of %s is out of date; using the file md5", lock, path)
                    return own, "file md5 (dvc.lock out of date)"
                if str(entry["md5"]).endswith(".dir") and manifest.is_relative_to(path):
                    enclosing = enclosing or (entry["md5"], f"dvc.lock ({entry['path']})")
        if enclosing:
            return enclosing
    return own, "file md5"


def git_commit(workdir: str | os.PathLike = ".") -> str:
    """``git rev-parse HEAD`` (with ``-dirty`` when a tracked file has uncommitted changes), or
    ``unknown``. Untracked files do not count: the main job's own outputs are untracked in a
    fresh clone, and a promoted model must not call that clone's code dirty."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=workdir, capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def machine() -> dict[str, str]:
    """The CPU, the instruction set torch's kernels use on it and torch's version: trained on
    another of any, the same code, data and seed give other floats from the first epoch."""
    return {
        "cpu": _cpu_name(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


def _cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_name(m: dict[str, str]) -> str:
    """A machine() in words: ``AMD EPYC (AVX512, torch 2.11.0)``."""
    return f"{m.get('cpu', '?')} ({m.get('capability', '?')}, torch {m.get('torch', '?')})"
