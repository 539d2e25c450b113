"""The ``vgd`` command: a thin layer that parses arguments, calls the library, picks exit codes.

Exit status: 0 success, 1 finished but some inputs failed (listed), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vgd.adapt import PRIOR_SD, AdaptError
from vgd.audio import AudioError
from vgd.checkpoint import CheckpointError
from vgd.cliargs import add_fields, from_args
from vgd.config import (
    ConfigError,
    RunConfig,
    SplitConfig,
    load_config,
    parse_override,
    save_config,
)
from vgd.corpora import SOURCES, VALIDATE
from vgd.manifest import ManifestError, format_stats
from vgd.predict import PredictConfig
from vgd.registry import Registry, RegistryError
from vgd.version import __version__

log = logging.getLogger("vgd")

EXPECTED_ERRORS = (
    AdaptError,
    ConfigError,
    ManifestError,
    AudioError,
    CheckpointError,
    RegistryError,  # PromotionError included
    FileNotFoundError,
)
DEFAULT_SYNTH_DIR = "data/synth"


def _overrides(items: Sequence[str] | None) -> dict:
    return dict(parse_override(x) for x in items or [])


def _config(args: argparse.Namespace):
    return load_config(getattr(args, "config", None), _overrides(getattr(args, "set", None)))


def _run(args: argparse.Namespace) -> RunConfig:
    return from_args(RunConfig, args)


# ----------------------------------------------------------------------------- data


def cmd_data_synth(args: argparse.Namespace) -> int:
    from vgd.synth import SynthConfig, generate_corpus

    config = SynthConfig(
        speakers=args.speakers, utterances=args.utterances, seed=args.seed, workers=args.workers
    )
    clips = generate_corpus(args.out, config, progress=not args.quiet)
    print(f"wrote {len(clips)} clips to {Path(args.out) / 'manifest.csv'}")
    print(format_stats(clips))
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from vgd.corpora import build
    from vgd.manifest import write_manifest
    from vgd.splits import assign_splits

    result = build(args.source, args.root, validate=args.validate, progress=not args.quiet)
    for line in result.failures:
        print(f"left out: {line}", file=sys.stderr)
    split = SplitConfig(args.val_fraction, args.test_fraction, args.split_seed)
    clips = assign_splits(result.clips, split) if args.split else result.clips
    path = write_manifest(clips, args.out)
    print(f"{result.summary()}\nwrote {path}")
    print(format_stats(clips))
    return 1 if result.failures else 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from vgd.manifest import format_stats, read_manifest

    print(format_stats(read_manifest(args.manifest)))
    return 0


# ----------------------------------------------------------------------------- model


def cmd_train(args: argparse.Namespace) -> int:
    import shutil

    from vgd.train import save_outputs, train

    config = _config(args)
    state_dir = Path(args.out) / "state"
    if args.restart and state_dir.exists():
        shutil.rmtree(state_dir)
    result = train(config, _run(args), state_dir=state_dir, progress=not args.quiet)
    paths = save_outputs(result, args.out)
    best = result.best
    score = best.get("val_balanced_accuracy")
    print(
        f"trained {result.parameters} parameters in {result.seconds:.1f} s; best epoch "
        f"{result.best_epoch}"
        + (f", val balanced accuracy {score:.4f}" if score is not None else "")
    )
    for line in result.unreadable:
        print(f"left out: {line}", file=sys.stderr)
    print(f"checkpoint: {paths['model']}\ncurves: {paths['curves']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vgd.checkpoint import load_checkpoint
    from vgd.evaluate import evaluate, format_metrics, write_report
    from vgd.train import load_clips

    loaded = load_checkpoint(args.checkpoint, device=args.device)
    clips = [c for c in load_clips(loaded.recipe, args.manifest) if c.split in args.split]
    if not clips:
        raise ManifestError(f"{args.manifest}: no clips in split(s) {args.split}")
    result = evaluate(loaded, clips, batch_size=args.batch_size, cache_dir=args.cache_dir)
    print(format_metrics(result.metrics))
    if args.out:
        paths = write_report(result, args.out)
        print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 1 if result.metrics["n_unreadable"] else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from vgd.formats import format_predictions
    from vgd.io import atomic_write_text

    try:
        config = PredictConfig(
            args.min_confidence, args.min_speech, PredictConfig.vad if args.vad else None
        )
    except ValueError as e:
        print(f"vgd: error: {e}", file=sys.stderr)
        return 2
    model = _load_model(args)
    preds = model.predict(args.paths, None, config, args.batch_size, args.workers, not args.quiet)
    text = format_predictions(preds, model.labels, args.format)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {len(preds)} predictions to {args.out}")
    else:
        sys.stdout.write(text)
    return _report_failures(preds)


def cmd_adapt(args: argparse.Namespace) -> int:
    model = _load_model(args)
    fitted = model.adapt(args.manifest, prior_sd=args.prior_sd)
    model.save(args.out)
    speakers = ", ".join(f"{n} {label}" for label, n in fitted.speakers.items())
    print(
        f"bias {fitted.bias:+.2f} on {model.labels[1]}, fitted on {fitted.clips} clips "
        f"({speakers} speakers) of {args.manifest}: balanced accuracy on them "
        f"{fitted.balanced_accuracy_before:.4f} → {fitted.balanced_accuracy_after:.4f}\n"
        f"wrote {args.out} (from {model.source.describe()}); vgd predict --model {args.out} ..."
    )
    return 0


def _report_failures(results: Sequence) -> int:
    """List the rows that carry an error on stderr; exit status 1 if any, else 0."""
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"failed: {r.path}: {r.error}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(results)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_segment(args: argparse.Namespace) -> int:
    from vgd.audio import find_audio
    from vgd.formats import format_segments, format_summary, write_per_file
    from vgd.io import atomic_write_text

    config = _segment_config(args)
    if config is None:
        return 2
    if args.batch_size < 1:
        print(f"vgd: error: --batch-size must be >= 1, got {args.batch_size}", file=sys.stderr)
        return 2
    per_file = bool(args.out) and (Path(args.out).is_dir() or args.out.endswith(("/", os.sep)))
    if args.format == "textgrid" and not per_file and len(find_audio(args.paths)[0]) > 1:
        print("vgd: error: a TextGrid holds one recording: pass --out FOLDER/", file=sys.stderr)
        return 2
    model = _load_model(args)
    results = model.segment(args.paths, None, config, args.batch_size, not args.quiet)
    ok = [r for r in results if r.error is None]
    if per_file:
        written = write_per_file(results, args.format, args.out)
        print(f"wrote {len(written)} {args.format} file(s) to {args.out}")
    elif args.format != "textgrid" or len(ok) == 1:
        text = format_segments(results, args.format)
        if args.out:
            atomic_write_text(args.out, text)
            print(f"wrote segments of {len(ok)} recording(s) to {args.out}")
        else:
            sys.stdout.write(text)
    print(format_summary(results), end="", file=sys.stdout if args.out else sys.stderr)
    return _report_failures(results)


def _segment_config(args: argparse.Namespace):
    """The SegmentConfig the flags describe; None (after saying why) when they are invalid."""
    from vgd.segment import SegmentConfig

    try:
        return SegmentConfig(
            min_confidence=args.min_confidence,
            hop_s=args.hop,
            min_turn_s=args.min_turn,
            bridge_s=args.bridge,
            edge_margin_db=args.edge_margin if args.edge_margin > 0 else None,
        )
    except ValueError as e:
        print(f"vgd: error: {e}", file=sys.stderr)
        return None


def cmd_plot_segments(args: argparse.Namespace) -> int:
    import soundfile as sf
    import torch

    from vgd.audio import resample, to_mono
    from vgd.features import LogMel
    from vgd.plots import segment_bands

    config = _segment_config(args)
    if config is None:
        return 2
    if args.seconds <= 0 or args.start < 0:
        print("vgd: error: --seconds must be > 0 and --start >= 0", file=sys.stderr)
        return 2
    model = _load_model(args)
    loaded = model.loaded
    [result] = model.segment([args.file], None, config)
    if result.error:
        raise AudioError(result.path, result.error)
    rate = loaded.spec.audio.sample_rate
    with sf.SoundFile(args.file) as f:  # only the plotted span is read
        f.seek(min(round(args.start * f.samplerate), f.frames))
        data = f.read(round(args.seconds * f.samplerate), dtype="float32", always_2d=True)
        wave = resample(to_mono(data), f.samplerate, rate)
    spans = [(s.start, s.end, s.label) for s in result.segments]
    title = f"{Path(args.file).name}: {_share_text(result.summary())}"
    if args.view == "mel":
        frontend = LogMel(loaded.spec.features, rate)
        with torch.inference_mode():
            mel = frontend(torch.from_numpy(wave)[None])[0, 0].numpy()
        hop_s = loaded.spec.features.hop_ms / 1000
        out = segment_bands(spans, args.out, mel=mel, hop_s=hop_s, start_s=args.start, title=title)
    else:
        out = segment_bands(spans, args.out, wave, rate, start_s=args.start, title=title)
    print(f"wrote {out}")
    return 0


def _share_text(summary: dict) -> str:
    share = summary["women_share"]
    return f"{summary['speech_s']:.1f} s of speech" + (
        "" if share is None else f", women {share:.0%} of the gendered speaking time"
    )


def _registry(args: argparse.Namespace) -> Registry:
    from vgd.api import registry_root

    return Registry(registry_root(args.registry))


def _load_model(args: argparse.Namespace):
    """The model ``--model`` names (a path, a registry version, builtin), else the registry's
    promoted one, else the built-in model: :func:`vgd.api.load_model`'s rule."""
    from vgd.api import load_model

    model = load_model(args.model, device=args.device, registry=args.registry)
    if model.source.kind == "builtin" and not args.model:
        print(
            f"vgd: no promoted model in {model.source.registry}/: using {model.source.describe()}",
            file=sys.stderr,
        )
    return model


def cmd_promote(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.rollback:
        if args.checkpoint:
            raise RegistryError("--rollback takes no checkpoint: it restores the previous version")
        v = registry.rollback()
        print(f"rolled back: current model is {v.name} ({v.metric} {v.score:.4f}), {v.model}")
        return 0
    checkpoint, manifest = args.checkpoint, args.manifest
    if not checkpoint:
        checkpoint, pipeline_manifest = _pipeline_outputs(args.params)
        manifest = manifest or pipeline_manifest
    v = registry.promote(
        checkpoint, args.metrics, metric=args.metric, force=args.force, manifest=manifest
    )
    i = v.info
    print(
        f"promoted {checkpoint} as {v.name}: {v.metric} {v.score:.4f}; data "
        f"{i['data_version'][:10]} ({i['data_version_source']}); commit {i['git_commit']}"
    )
    print(f"model: {v.model}\ncard: {v.path / 'MODEL_CARD.md'}")
    return 0


def _pipeline_outputs(params_path: str) -> tuple[Path, str]:
    """The DVC pipeline's model and the manifest it was trained on, from params.yaml."""
    from vgd.params import PipelineParams, load_params

    params = load_params(params_path) if Path(params_path).exists() else PipelineParams()
    checkpoint = params.retrain.model
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no pipeline output (run dvc repro); or pass one")
    return checkpoint, str(params.data.manifest)


def cmd_models(args: argparse.Namespace) -> int:
    from vgd import pretrained
    from vgd.registry import format_versions

    registry = _registry(args)
    versions = registry.versions()
    current = registry.current_version()
    if versions:
        print(format_versions(versions, current.name if current else None))
    else:
        print(f"no models in {registry.root}/ (run vgd promote)")
    builtin = pretrained.builtin_model()
    if builtin is not None:
        mark = "*" if current is None else " "
        print(f"{mark} built-in  {pretrained.describe()}  {builtin}")
    return 0


# ----------------------------------------------------------------------------- pipeline


def cmd_pipeline(args: argparse.Namespace) -> int:
    from vgd import pipeline
    from vgd.params import load_params

    params = load_params(args.params)
    if args.stage == "data":
        data = pipeline.stage_data(params, progress=not args.quiet)
        for line in data.failures:
            print(f"left out: {line}", file=sys.stderr)
        print(f"wrote {data.manifest}")
        print(format_stats(data.clips))
        return 0
    if args.stage == "retrain":
        paths = pipeline.stage_retrain(params, progress=not args.quiet)
        print(f"checkpoint: {paths['model']}\ncurves: {paths['curves']}")
        return 0
    from vgd.evaluate import format_metrics

    metrics, paths = pipeline.stage_evaluate(params)
    print(format_metrics(metrics))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 1 if metrics["n_unreadable"] else 0


def cmd_plot_mel(args: argparse.Namespace) -> int:
    import torch

    from vgd.audio import load_audio
    from vgd.features import LogMel
    from vgd.plots import mel_spectrograms

    config = _config(args)
    frontend = LogMel(config.features, config.audio.sample_rate)
    mels, titles = [], []
    for path in args.files:
        wave = load_audio(path, config.audio)[: round(args.seconds * config.audio.sample_rate)]
        with torch.inference_mode():
            mels.append(frontend(torch.from_numpy(wave)[None])[0, 0].numpy())
        titles.append(args.titles[len(titles)] if args.titles else Path(path).name)
    out = mel_spectrograms(
        mels, titles, config.features.hop_ms / 1000, config.features.f_max, args.out
    )
    print(f"wrote {out}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from vgd.evaluate import format_metrics
    from vgd.pitch import evaluate_pitch_baseline
    from vgd.train import load_clips

    config = _config(args)
    metrics = evaluate_pitch_baseline(load_clips(config, args.manifest), config.audio)
    print(f"pitch-only baseline: threshold {metrics['threshold_hz']:.1f} Hz (tuned on train)")
    print(format_metrics(metrics))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from vgd.config import to_dict

    config = _config(args)
    if args.out:
        save_config(config, args.out)
        print(f"wrote {args.out}")
    else:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
    return 0


# ----------------------------------------------------------------------------- parser


def _flags(add: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """A parent parser holding one group of flags, declared once and shared by subcommands."""
    parent = argparse.ArgumentParser(add_help=False)
    add(parent)
    return parent


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (defaults when omitted)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value by dotted path, e.g. --set optim.lr=1e-3 (repeatable)",
    )


def _manifest_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manifest", default=RunConfig.manifest, help="manifest CSV (default: %(default)s)"
    )


def _device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")


def _registry_flag(p: argparse.ArgumentParser) -> None:
    from vgd.api import DEFAULT_REGISTRY

    p.add_argument(
        "--registry", help=f"model registry folder (default: $VGD_MODELS or {DEFAULT_REGISTRY})"
    )


def _model_flags(p: argparse.ArgumentParser) -> None:
    """The model that answers: --model, --device, --registry (vgd.api.load_model's arguments)."""
    p.add_argument(
        "--model",
        help="checkpoint, registry version (v0003) or 'builtin' (default: the registry's "
        "promoted model, else the built-in one)",
    )
    _device_flag(p)
    _registry_flag(p)


def _segment_flags(p: argparse.ArgumentParser) -> None:
    from vgd.segment import SegmentConfig

    d = SegmentConfig()
    p.add_argument(
        "--min-confidence",
        type=float,
        default=d.min_confidence,
        help="speech whose mean gender probability is under this is 'unknown' (default: "
        "%(default)s)",
    )
    p.add_argument(
        "--min-turn",
        type=float,
        default=d.min_turn_s,
        help="seconds a gender turn inside a stretch of speech lasts at least (default: "
        "%(default)s)",
    )
    p.add_argument(
        "--bridge",
        type=float,
        default=d.bridge_s,
        help="speech less than this many seconds apart is heard together: windows span the "
        "pause and a turn runs across it (default: %(default)s)",
    )
    p.add_argument(
        "--hop",
        type=float,
        default=d.hop_s,
        help="gender window hop, seconds (default: %(default)s)",
    )
    p.add_argument(
        "--edge-margin",
        type=float,
        default=d.edge_margin_db,
        help="dB over the local noise floor that speech edges are moved in to; 0 keeps the "
        "VAD's edges (default: %(default)s)",
    )


def _predict_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--workers", type=int, default=0, help="threads decoding ahead (0: CPU cores - 1, ≤ 8)"
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=PredictConfig.min_confidence,
        help="label a speech file 'unknown' when its best (calibrated) probability is under "
        "this (default: %(default)s; 0 always names a gender)",
    )
    p.add_argument(
        "--min-speech",
        type=float,
        default=PredictConfig.min_speech_s,
        metavar="SECONDS",
        help="label a file 'nonspeech' when Silero VAD finds less speech than this (default: "
        "%(default)s); the speech_s column counts up to it. Silent files are always nonspeech",
    )
    p.add_argument(
        "--no-vad",
        dest="vad",
        action="store_false",
        help="no speech check: every file that is not silent gets a gender or 'unknown'",
    )


class _Flags:
    """The shared flag groups, each built once for every subcommand that takes it."""

    def __init__(self) -> None:
        self.config = _flags(_config_flags)
        self.manifest = _flags(_manifest_flag)
        self.device = _flags(_device_flag)
        self.registry = _flags(_registry_flag)
        self.model = _flags(_model_flags)
        self.segment = _flags(_segment_flags)


def _data_commands(sub) -> None:
    data = sub.add_parser("data", help="build, inspect and synthesise corpora").add_subparsers(
        dest="data_command", required=True
    )
    p = data.add_parser("synth", help="generate the built-in synthetic voice corpus")
    p.add_argument("--out", default=DEFAULT_SYNTH_DIR)
    p.add_argument("--speakers", type=int, default=200)
    p.add_argument("--utterances", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per CPU)")
    p.set_defaults(func=cmd_data_synth)

    p = data.add_parser("build", help="build a manifest from a labelled speech corpus")
    p.add_argument("source", choices=list(SOURCES))
    p.add_argument("root", help="corpus root (or the CSV/TSV, for sources csv and common_voice)")
    p.add_argument("--out", required=True, help="manifest CSV to write")
    p.add_argument(
        "--validate",
        choices=VALIDATE,
        default="decode",
        help="decode: catch silent and too-short files too; header: faster; none: trust metadata",
    )
    p.add_argument("--no-split", dest="split", action="store_false", help="leave splits empty")
    p.add_argument("--val-fraction", type=float, default=SplitConfig.val_fraction)
    p.add_argument("--test-fraction", type=float, default=SplitConfig.test_fraction)
    p.add_argument("--split-seed", type=int, default=SplitConfig.seed)
    p.set_defaults(func=cmd_data_build)

    p = data.add_parser("stats", help="clips, speakers and hours per label")
    p.add_argument("manifest")
    p.set_defaults(func=cmd_data_stats)


def _training_commands(sub, f: _Flags) -> None:
    p = sub.add_parser(
        "train", parents=[f.config], help="train a model (resumes an interrupted run in --out)"
    )
    add_fields(p.add_argument_group("run settings (not stored in the checkpoint)"), RunConfig)
    p.add_argument("--out", default="runs/train", help="output folder")
    p.add_argument("--restart", action="store_true", help="discard saved state in --out")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        parents=[f.manifest, f.device],
        help="score a checkpoint on a split of a manifest",
    )
    p.add_argument("checkpoint")
    p.add_argument("--split", nargs="+", default=["test"])
    p.add_argument("--out", help="folder for metrics.json, predictions and plots")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cache-dir", default="", help="decoded-audio cache folder")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "baseline",
        parents=[f.config, f.manifest],
        help="pitch-only baseline (median F0, threshold tuned on train)",
    )
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser(
        "config", parents=[f.config], help="print (or write) the resolved training config"
    )
    p.add_argument("--out", help="write YAML here")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("pipeline", help="one stage of the DVC pipeline (dvc.yaml runs these)")
    p.add_argument("stage", choices=["data", "retrain", "evaluate"])
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=cmd_pipeline)


def _inference_commands(sub, f: _Flags) -> None:
    p = sub.add_parser(
        "predict",
        parents=[f.model],
        help="classify audio files, folders and long recordings",
    )
    p.add_argument("paths", nargs="+")
    _predict_flags(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "segment",
        parents=[f.model, f.segment],
        help="who speaks when, by gender: female/male/unknown/nonspeech segments of recordings",
    )
    p.add_argument("paths", nargs="+", help="audio files and folders")
    p.add_argument("--format", choices=["csv", "rttm", "textgrid", "json"], default="csv")
    p.add_argument(
        "--out", help="a file for all recordings, or FOLDER/ for one file each (default: stdout)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="windows per model call, across files (default: %(default)s; on a CPU as fast as "
        "64 and ~120 MB lighter)",
    )
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "adapt",
        parents=[f.model],
        help="fit the decision threshold to your own recordings (labelled clips of 10+ "
        "speakers of each label) and write the model with it",
    )
    p.add_argument("manifest", help="a manifest of labelled clips of your own (path,label,speaker)")
    p.add_argument("--out", required=True, help="the adapted checkpoint to write")
    p.add_argument(
        "--prior-sd",
        type=float,
        default=PRIOR_SD,
        help="how far the bias may move with little evidence, in log-odds (default: %(default)s)",
    )
    p.set_defaults(func=cmd_adapt)


def _registry_commands(sub, f: _Flags) -> None:
    p = sub.add_parser(
        "promote",
        parents=[f.registry],
        help="add an evaluated checkpoint to the model registry (refused if it scores worse)",
    )
    p.add_argument("checkpoint", nargs="?", help="model.pt (default: the pipeline's model)")
    p.add_argument(
        "--metrics", help="metrics.json (default: beside the checkpoint, then in eval/ beside it)"
    )
    p.add_argument("--metric", default="balanced_accuracy", help="the score that must not drop")
    p.add_argument("--force", action="store_true", help="promote even if worse")
    p.add_argument(
        "--manifest",
        help="manifest it was trained on, for the model card (default: the pipeline's, from "
        "params.yaml, when promoting the pipeline's model)",
    )
    p.add_argument("--params", default="params.yaml", help="the pipeline's params (default model)")
    p.add_argument("--rollback", action="store_true", help="restore the previous version")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser(
        "models",
        parents=[f.registry],
        help="list the registry's versions and the built-in model (* marks the one in use)",
    )
    p.set_defaults(func=cmd_models)


def _plot_commands(sub, f: _Flags) -> None:
    plot = sub.add_parser("plot", help="figures").add_subparsers(dest="plot_command", required=True)
    p = plot.add_parser(
        "mel", parents=[f.config], help="log-mel spectrograms of files, side by side"
    )
    p.add_argument("files", nargs="+")
    p.add_argument("--out", default="mel.png")
    p.add_argument("--titles", nargs="+", help="one title per file (default: file names)")
    p.add_argument("--seconds", type=float, default=3.0, help="plot at most this much of each")
    p.set_defaults(func=cmd_plot_mel)

    p = plot.add_parser(
        "segments",
        parents=[f.model, f.segment],
        help="a recording with its gender segments as coloured bands",
    )
    p.add_argument("file")
    p.add_argument("--out", default="segments.png")
    p.add_argument(
        "--view", choices=["wave", "mel"], default="wave", help="what is under the bands"
    )
    p.add_argument("--start", type=float, default=0.0, help="plot from this second")
    p.add_argument("--seconds", type=float, default=120.0, help="plot at most this much")
    p.set_defaults(func=cmd_plot_segments)


def build_parser() -> argparse.ArgumentParser:
    """The ``vgd`` command line: each subcommand's flags, shared groups declared once."""
    parser = argparse.ArgumentParser(prog="vgd", description="Voice gender detection from speech.")
    parser.add_argument("--version", action="version", version=f"vgd {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True)
    flags = _Flags()
    _data_commands(sub)
    _training_commands(sub, flags)
    _inference_commands(sub, flags)
    _registry_commands(sub, flags)
    _plot_commands(sub, flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vgd`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", force=True
    )
    try:
        return args.func(args)
    except EXPECTED_ERRORS as e:
        print(f"vgd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vgd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
