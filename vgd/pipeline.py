"""The DVC pipeline's stages (data → search → retrain → evaluate) as functions of params.yaml.

Each section of params.yaml is one frozen config: ``data`` (:class:`SourceConfig`), ``split``
(:class:`~vgd.config.SplitConfig`), ``search`` (``search.config.SearchConfig``, read by
search/run.py), ``retrain`` (:class:`RetrainConfig`) and ``evaluate`` (:class:`EvaluateConfig`).
The search stage lives in search/ because Ray and Optuna may only be imported there.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgd.config import ConfigError, SplitConfig, apply_overrides, from_dict, load_config, load_yaml
from vgd.manifest import Clip, ManifestError, write_manifest

log = logging.getLogger(__name__)

DEFAULT_PARAMS = "params.yaml"
SOURCES = ("synth", "folder", "csv", "librispeech", "vctk", "common_voice")


@dataclass(frozen=True)
class SourceConfig:
    """Where the pipeline's speech comes from and where its manifest goes (params: ``data``)."""

    source: str = "synth"
    root: str = ""  # corpus root for every source but synth
    validate: str = "header"  # header | decode | none: how hard to check each file
    synth_speakers: int = 200
    synth_utterances: int = 10
    synth_seed: int = 0
    out: str = "data/pipeline"  # manifest.csv (and the synthetic audio) go here

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"data.source: must be one of {', '.join(SOURCES)}")
        if self.source != "synth" and not self.root:
            raise ConfigError(f"data.root: required for source {self.source!r}")
        if self.validate not in ("header", "decode", "none"):
            raise ConfigError("data.validate: must be header, decode or none")

    @property
    def manifest(self) -> Path:
        return Path(self.out) / "manifest.csv"


@dataclass(frozen=True)
class RetrainConfig:
    """How the winning configuration is retrained on train+val (params: ``retrain``).

    ``epochs: 0`` trains for the epoch at which the best trial peaked on validation; there is no
    validation data left to stop on once val is folded into training, and the search already
    measured when to stop. A positive number overrides it.
    """

    epochs: int = 0
    out: str = "results/pipeline"

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError("retrain.epochs: must be >= 0 (0: the best trial's best epoch)")


@dataclass(frozen=True)
class EvaluateConfig:
    """Which split the final model is scored on and where the report goes (params: ``evaluate``)."""

    split: str = "test"
    out: str = "results/pipeline/eval"
    batch_size: int = 64


@dataclass(frozen=True)
class PipelineParams:
    """params.yaml, validated: every key must name a field of its section's config."""

    data: SourceConfig
    split: SplitConfig
    retrain: RetrainConfig
    evaluate: EvaluateConfig
    search: dict[str, Any]  # validated by search.config.SearchConfig (Ray's side of the fence)


def load_params(path: str | Path = DEFAULT_PARAMS) -> PipelineParams:
    """Read params.yaml; unknown sections or keys are errors that name them."""
    raw = load_yaml(path)
    sections = {"data", "split", "search", "retrain", "evaluate"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ConfigError(f"{path}: unknown section {unknown[0]!r} (known: {sorted(sections)})")
    try:
        return PipelineParams(
            data=from_dict(SourceConfig, raw.get("data"), "data."),
            split=from_dict(SplitConfig, raw.get("split"), "split."),
            retrain=from_dict(RetrainConfig, raw.get("retrain"), "retrain."),
            evaluate=from_dict(EvaluateConfig, raw.get("evaluate"), "evaluate."),
            search=dict(raw.get("search") or {}),
        )
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


@dataclass(frozen=True)
class DataStage:
    """What the data stage wrote: the manifest, its clips (with splits) and the files left out."""

    manifest: Path
    clips: list[Clip]
    failures: list[str]


def stage_data(params: PipelineParams, progress: bool = True) -> DataStage:
    """Build the manifest with speaker-disjoint splits from the configured source."""
    from vgd.splits import assign_splits

    src = params.data
    clips, failures = _source_clips(src, progress)
    if not clips:
        raise ManifestError(f"{src.root or src.out}: no usable clips")
    clips = assign_splits(clips, params.split)
    return DataStage(write_manifest(clips, src.manifest), clips, failures)


def _source_clips(src: SourceConfig, progress: bool) -> tuple[list[Clip], list[str]]:
    if src.source == "synth":
        from vgd.synth import SynthConfig, generate_corpus

        config = SynthConfig(
            speakers=src.synth_speakers, utterances=src.synth_utterances, seed=src.synth_seed
        )
        return generate_corpus(Path(src.out) / "synth", config, progress=progress), []
    from vgd.corpora import build

    result = build(src.source, src.root, validate=src.validate, progress=progress)
    log.info("%s", result.summary())
    return result.clips, list(result.failures)


def best_epochs(search_summary: str | Path) -> int:
    """The epoch at which the search's best trial peaked on validation (from summary.json)."""
    path = Path(search_summary)
    try:
        best = json.loads(path.read_text())["best"]
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no search summary (run the search stage first)") from e
    except (KeyError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: holds no best trial") from e
    return max(int(best.get("best_epoch") or 0), 1)


def stage_retrain(
    params: PipelineParams, best_config: str | Path, search_summary: str | Path, progress=True
) -> dict[str, Path]:
    """Train the search's best configuration on train+val and write model.pt and its curves."""
    from vgd.train import save_outputs, train

    epochs = params.retrain.epochs or best_epochs(search_summary)
    config = apply_overrides(
        load_config(best_config),
        {
            "data.manifest": str(params.data.manifest),
            "data.train_splits": ["train", "val"],
            "data.val_split": "",
            "optim.epochs": epochs,
            "optim.patience": 0,
        },
    )
    log.info("retraining the best configuration on train+val for %d epochs", epochs)
    out = Path(params.retrain.out)
    state_dir = out / "state"
    result = train(config, state_dir=state_dir, progress=progress)
    paths = save_outputs(result, out)
    shutil.rmtree(state_dir, ignore_errors=True)  # resumable while running, not an artefact
    return paths


def stage_evaluate(params: PipelineParams, checkpoint: str | Path) -> tuple[dict, dict[str, Path]]:
    """Score the retrained model on the untouched split; write metrics.json and the plots."""
    from vgd.checkpoint import load_checkpoint
    from vgd.evaluate import evaluate, write_report
    from vgd.train import load_clips

    loaded = load_checkpoint(checkpoint)
    config = apply_overrides(loaded.config, {"data.manifest": str(params.data.manifest)})
    split = params.evaluate.split
    clips = [c for c in load_clips(config) if c.split == split]
    if not clips:
        raise ManifestError(f"{params.data.manifest}: no clips in split {split!r}")
    result = evaluate(loaded, clips, batch_size=params.evaluate.batch_size)
    return result.metrics, write_report(result, params.evaluate.out)
