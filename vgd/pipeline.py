"""The DVC pipeline's stages (data → search → retrain → evaluate) as functions of params.yaml.

Each takes the validated :class:`~vgd.params.PipelineParams`. The search stage lives in search/
because Ray and Optuna may only be imported there.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from vgd.config import ConfigError, RunConfig, apply_overrides, load_config
from vgd.manifest import Clip, ManifestError, write_manifest
from vgd.params import PipelineParams, SourceConfig

log = logging.getLogger(__name__)


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


def stage_retrain(params: PipelineParams, progress: bool = True) -> dict[str, Path]:
    """Train the search's best configuration on train+val, less the val speakers kept to fit
    the temperature (``retrain.calibrate_fraction``); write model.pt and its curves."""
    from vgd.calibration import calibrate
    from vgd.train import load_clips, save_outputs, train

    search = params.search.results
    epochs = params.retrain.epochs or best_epochs(search / "summary.json")
    config = apply_overrides(
        load_config(search / "best_config.yaml"),
        {
            "data.train_splits": ["train", "val"],
            "data.val_split": "",
            "optim.epochs": epochs,
            "optim.patience": 0,
        },
    )
    run = RunConfig(manifest=str(params.data.manifest))
    fraction, seed = params.retrain.calibrate_fraction, params.split.seed
    clips, held = calibration_split(load_clips(config, run.manifest), fraction, seed)
    log.info(
        "retraining the best configuration for %d epochs on train+val less %d clips kept to "
        "calibrate",
        epochs,
        len(held),
    )
    out = Path(params.retrain.out)
    state_dir = out / "state"
    result = train(config, run, clips, state_dir=state_dir, progress=progress)
    if held:
        result.calibration = calibrate(result.model, config.spec, held, reader=None)
        log.info(
            "calibration on %d held-out val clips: temperature %.3f, ECE %.4f → %.4f",
            len(held),
            *(result.calibration[k] for k in ("temperature", "val_ece_before", "val_ece_after")),
        )
    else:
        log.warning("retrain.calibrate_fraction is 0: the model is not calibrated (T = 1)")
    paths = save_outputs(result, out)
    shutil.rmtree(state_dir, ignore_errors=True)  # resumable while running, not an artefact
    return paths


def calibration_split(
    clips: list[Clip], fraction: float, seed: int = 0
) -> tuple[list[Clip], list[Clip]]:
    """The clips to retrain on (train, and val less the held-out speakers) and those of the
    held-out speakers, ``fraction`` of val's per gender (seeded). Test clips are in neither."""
    from vgd.splits import hold_out_speakers, speaker_key

    val = [c for c in clips if c.split == "val"]
    held = hold_out_speakers(val, fraction, seed)
    kept = [c for c in clips if c.split in ("train", "val") and speaker_key(c) not in held]
    return kept, [c for c in val if speaker_key(c) in held]


def stage_evaluate(params: PipelineParams) -> tuple[dict, dict[str, Path]]:
    """Score the retrained model on the untouched split; write metrics.json and the plots."""
    from vgd.checkpoint import load_checkpoint
    from vgd.evaluate import evaluate, write_report
    from vgd.train import load_clips

    loaded = load_checkpoint(params.retrain.model)
    split = params.evaluate.split
    clips = [c for c in load_clips(loaded.recipe, str(params.data.manifest)) if c.split == split]
    if not clips:
        raise ManifestError(f"{params.data.manifest}: no clips in split {split!r}")
    result = evaluate(loaded, clips, batch_size=params.evaluate.batch_size)
    return result.metrics, write_report(result, params.evaluate.out)
