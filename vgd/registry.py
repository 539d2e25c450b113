"""A models/ registry: evaluated checkpoints promoted as numbered versions, with provenance.

Layout (``root`` is ``models`` unless the caller picks another; the CLI reads ``VGD_MODELS``)::

    models/registry.json        {"current": "v0002", "history": ["v0001", "v0002"],
                                 "versions": {"v0001": {...}, "v0002": {...}}}
    models/v0001/model.pt       the checkpoint, byte for byte
    models/v0001/metrics.json   the evaluation report it was promoted on
    models/v0001/MODEL_CARD.md  data, metrics, config, intended use and limits, provenance
    models/v0001/info.json      this version's entry of registry.json

A version folder is written under a temporary name and renamed into place before registry.json is
(atomically) rewritten, so an interrupted promotion leaves the registry as it was: at worst an
unlisted folder, which the next promotion skips over when it numbers versions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vgd.checkpoint import CheckpointError, LoadedModel, load_checkpoint
from vgd.io import atomic_write_json, atomic_write_text
from vgd.manifest import ManifestError, check_labels, read_manifest
from vgd.modelcard import DataSummary, model_card, summarize_data
from vgd.provenance import file_hash, find_data_version, git_commit
from vgd.splits import ensure_splits
from vgd.version import __version__

log = logging.getLogger(__name__)

INDEX = "registry.json"
LOWER_IS_BETTER = frozenset({"loss"})
_NAME = re.compile(r"^v(\d{4,})$")


class RegistryError(ValueError):
    """The registry cannot do what was asked (nothing promoted, nothing to roll back, bad index)."""


class PromotionError(RegistryError):
    """A checkpoint was refused for promotion; the message gives the one reason."""


@dataclass(frozen=True)
class Version:
    """One promoted model: its folder and the entry registry.json holds for it."""

    name: str
    path: Path
    info: dict[str, Any]

    @property
    def model(self) -> Path:
        return self.path / "model.pt"

    @property
    def metric(self) -> str:
        return self.info["metric"]

    @property
    def score(self) -> float:
        return self.info["score"]


class Registry:
    """Numbered model versions under ``root``, one of them current."""

    def __init__(self, root: str | os.PathLike = "models") -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------------- reading

    def _read(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.is_file():
            return {"current": None, "history": [], "versions": {}}
        try:
            data = json.loads(path.read_text())
            if not isinstance(data.get("versions"), dict) or not isinstance(data["history"], list):
                raise KeyError("versions/history")
            if data["current"] is not None and data["current"] not in data["versions"]:
                raise KeyError(f"current {data['current']!r} is not a version")
        except (json.JSONDecodeError, KeyError, AttributeError) as e:
            raise RegistryError(f"{path}: not a vgd model registry ({e})") from e
        return data

    def _version(self, name: str, data: dict[str, Any]) -> Version:
        return Version(name, self.root / name, data["versions"][name])

    def versions(self) -> list[Version]:
        """Every promoted version, oldest first (rolled-back ones included)."""
        data = self._read()
        return [self._version(n, data) for n in sorted(data["versions"])]

    def current_version(self) -> Version | None:
        data = self._read()
        return self._version(data["current"], data) if data["current"] else None

    def current(self) -> Path | None:
        """The promoted model.pt, or None when nothing is promoted."""
        version = self.current_version()
        return version.model if version else None

    # ------------------------------------------------------------------------- changing

    def promote(
        self,
        checkpoint: str | os.PathLike,
        metrics_path: str | os.PathLike | None = None,
        metric: str = "balanced_accuracy",
        force: bool = False,
        manifest: str | os.PathLike | None = None,
        workdir: str | os.PathLike | None = None,
    ) -> Version:
        """Copy an evaluated checkpoint in as the next version and make it current.

        Metrics come from ``metrics_path`` or, when omitted, from ``metrics.json`` beside the
        checkpoint, then ``eval/metrics.json`` beside it (where ``vgd evaluate --out`` and the
        pipeline put them). The validation numbers stored inside the checkpoint do not count.
        Refused (PromotionError) when the checkpoint does not load with ``weights_only``, has no
        metrics, lacks ``metric`` (a number), or scores worse than the current version on it;
        ``force`` overrides only the last (and promoting the current checkpoint again).
        ``manifest`` is the one the model was trained on (a checkpoint holds no paths), for the
        card's data section and the data version; ``workdir`` (default: the current directory)
        is where relative paths, dvc.lock and git are looked up.
        """
        workdir = Path(workdir or ".")
        checkpoint = _resolve(workdir, checkpoint)
        loaded = _load(checkpoint)
        metrics, metrics_file = find_metrics(
            checkpoint, metrics_path and _resolve(workdir, metrics_path)
        )
        _check_labels(metrics, loaded, metrics_file)
        score = _score(metrics, metric, metrics_file)
        if not manifest:
            raise PromotionError(
                f"{checkpoint}: which manifest was it trained on? pass it with --manifest"
            )
        manifest = _resolve(workdir, manifest)
        summary = _data_summary(loaded, manifest)
        data_version, data_source = find_data_version(manifest, workdir)
        data = self._read()
        sha = file_hash(checkpoint, hashlib.sha256())
        if not force:
            self._check_improves(data, metric, score, sha, data_version)
        name = self._next_name(data)
        info = {
            "version": name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metric": metric,
            "score": score,
            "data_version": data_version,
            "data_version_source": data_source,
            "git_commit": git_commit(workdir),
            "source": str(checkpoint),
            "source_metrics": str(metrics_file),
            "manifest": str(manifest),
            "sha256": sha,
            "vgd_version": __version__,
            "trained_with_vgd": loaded.vgd_version,
            "forced": force,
        }
        self._write_version(name, checkpoint, metrics, loaded, summary, info)
        data["versions"][name] = info
        data["history"].append(name)
        data["current"] = name
        atomic_write_json(self.root / INDEX, data)
        log.debug("promoted %s as %s (%s %.4f)", checkpoint, name, metric, score)
        return self._version(name, data)

    def rollback(self) -> Version:
        """Make the previously promoted version current again; the newer one stays on disk."""
        data = self._read()
        if len(data["history"]) < 2:
            what = f"only {data['current']} was ever promoted" if data["current"] else "none"
            raise RegistryError(f"{self.root}: no previous version to roll back to ({what})")
        dropped = data["history"].pop()
        data["versions"][dropped]["rolled_back"] = datetime.now(timezone.utc).isoformat(
            timespec="seconds"
        )
        data["current"] = data["history"][-1]
        atomic_write_json(self.root / INDEX, data)
        log.debug("rolled back %s; current is %s", dropped, data["current"])
        return self._version(data["current"], data)

    # ------------------------------------------------------------------------- helpers

    def _check_improves(
        self, data: dict[str, Any], metric: str, score: float, sha: str, data_version: str
    ) -> None:
        if not data["current"]:
            return
        current = self._version(data["current"], data)
        if current.info.get("sha256") == sha:
            raise PromotionError(f"this checkpoint is already the current model ({current.name})")
        if current.info.get("data_version") != data_version:
            log.warning(
                "%s was trained and scored on other data (%s, now %s): the scores compared "
                "may come from different test sets",
                current.name,
                current.info.get("data_version"),
                data_version,
            )
        try:
            theirs = json.loads((current.path / "metrics.json").read_text())[metric]
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise PromotionError(
                f"cannot compare on {metric}: current {current.name} has no such metric "
                "(use --force or another --metric)"
            ) from e
        if not isinstance(theirs, (int, float)):
            return  # e.g. a null ROC-AUC: nothing to beat
        worse = score > theirs if metric in LOWER_IS_BETTER else score < theirs
        if worse:
            raise PromotionError(
                f"{metric} {score:.4f} is worse than current {current.name}'s {theirs:.4f} "
                "(use --force to promote anyway)"
            )

    def _next_name(self, data: dict[str, Any]) -> str:
        taken = set(data["versions"])
        if self.root.is_dir():
            taken |= {p.name for p in self.root.iterdir()}
        numbers = [int(m.group(1)) for n in taken if (m := _NAME.match(n))]
        return f"v{max(numbers, default=0) + 1:04d}"

    def _write_version(
        self,
        name: str,
        checkpoint: Path,
        metrics: dict[str, Any],
        loaded: LoadedModel,
        summary: DataSummary,
        info: dict[str, Any],
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=self.root))
        try:
            shutil.copyfile(checkpoint, tmp / "model.pt")
            if file_hash(tmp / "model.pt", hashlib.sha256()) != info["sha256"]:
                raise PromotionError(f"{checkpoint}: changed while it was being copied")
            atomic_write_json(tmp / "metrics.json", metrics)
            atomic_write_json(tmp / "info.json", info)
            atomic_write_text(tmp / "MODEL_CARD.md", model_card(loaded, metrics, summary, info))
            os.rename(tmp, self.root / name)  # fails rather than merge into an existing folder
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- checks


def _load(checkpoint: Path) -> LoadedModel:
    try:
        return load_checkpoint(checkpoint)
    except CheckpointError as e:
        raise PromotionError(f"refused: {e}") from e


def find_metrics(
    checkpoint: str | os.PathLike, metrics_path: str | os.PathLike | None = None
) -> tuple[dict[str, Any], Path]:
    """The evaluation metrics for a checkpoint and the file they came from (see promote)."""
    checkpoint = Path(checkpoint)
    if metrics_path is not None:
        candidates = [Path(metrics_path)]
    else:
        candidates = [checkpoint.parent / "metrics.json", checkpoint.parent / "eval/metrics.json"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        looked = " or ".join(str(p) for p in candidates)
        raise PromotionError(
            f"{checkpoint}: no evaluation metrics ({looked} not found); run "
            f"`vgd evaluate {checkpoint} --out {checkpoint.parent / 'eval'}` or pass --metrics"
        )
    try:
        metrics = json.loads(found.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PromotionError(f"{found}: unreadable metrics ({e})") from e
    if not isinstance(metrics, dict):
        raise PromotionError(f"{found}: not a metrics report (expected a JSON object)")
    return metrics, found


def _score(metrics: dict[str, Any], metric: str, source: Path) -> float:
    value = metrics.get(metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if metric not in metrics:
        known = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float))) or "none"
        raise PromotionError(f"{source}: no metric {metric!r} (numeric metrics: {known})")
    raise PromotionError(f"{source}: metric {metric!r} is {value!r}, not a number")


def _check_labels(metrics: dict[str, Any], loaded: LoadedModel, source: Path) -> None:
    """Catch metrics that plainly belong to another model (a different label order)."""
    labels = metrics.get("labels")
    if labels is not None and tuple(labels) != loaded.labels:
        raise PromotionError(
            f"{source}: metrics are for labels {labels}, the checkpoint has {list(loaded.labels)}"
        )


def _resolve(workdir: Path, path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.is_absolute() else workdir / path


def _data_summary(loaded: LoadedModel, manifest: Path) -> DataSummary:
    try:
        clips = read_manifest(manifest)
        check_labels(clips, loaded.labels, str(manifest))
        clips = ensure_splits(clips, loaded.recipe.split)
    except ManifestError as e:
        raise PromotionError(
            f"{e}; pass the manifest the model was trained on with --manifest"
        ) from e
    return summarize_data(clips, loaded.recipe, str(manifest))


# ----------------------------------------------------------------------------- provenance


def format_versions(versions: list[Version], current: str | None) -> str:
    """A printable table of versions, ``*`` marking the current one."""
    lines = [f"  {'version':<8} {'created':<20} {'score':<26} {'data':<12} commit"]
    for v in versions:
        i = v.info
        score = f"{v.metric} {v.score:.4f}"
        commit = i.get("git_commit", "?")
        commit = commit[:8] + ("-dirty" if commit.endswith("-dirty") else "")
        note = "  (rolled back)" if i.get("rolled_back") else ""
        lines.append(
            f"{'*' if v.name == current else ' '} {v.name:<8} {i.get('created', '?')[:19]:<20} "
            f"{score:<26} {i.get('data_version', '?')[:10]:<12} {commit:<12}{note}".rstrip()
        )
    return "\n".join(lines)
