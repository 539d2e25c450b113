"""How a model's answers move with the recording level: every clip played at fixed RMS levels.

    python scripts/level_robustness.py --manifest MANIFEST --model NAME=CHECKPOINT [...]
        [--levels -55 -45 -35 -25 -15] [--limit N] [--out results/bench/level]

A front end that normalises each utterance (``features.normalize=utterance``) hears a quiet
recording as it hears a loud one; one that does not (``channel`` or ``none``) hears a level
shift as a shift of every log-mel value, which only the training's gain augmentation
(``augment.gain_db``) teaches it to ignore. Each clip is scaled to each RMS level in dBFS
(peaks beyond full scale clipped, and counted) and scored through the one inference path,
``vgd.api.Model.predict`` on audio in memory, so the figures are what ``vgd predict`` answers.

Per model and level it prints the balanced accuracy of the forced choice, the share answered
"unknown" at the model's threshold, the accuracy on the clips it answers, and the share of clips
whose forced choice differs from the one at the clip's own level. Writes results.json and
level.png to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vgd.api import load_model  # noqa: E402
from vgd.audio import AudioError, load_audio, rms_dbfs  # noqa: E402
from vgd.config import AudioConfig  # noqa: E402
from vgd.formats import Prediction  # noqa: E402
from vgd.io import atomic_write_json  # noqa: E402
from vgd.manifest import Clip, read_manifests  # noqa: E402
from vgd.plots import pyplot, save_figure  # noqa: E402

RATE = 16000
AS_RECORDED = "as recorded"


@dataclass(frozen=True)
class LevelScore:
    """One model's answers at one level."""

    model: str
    level: str
    clips: int
    balanced_accuracy: float
    unknown: float
    answered_accuracy: float
    flipped: float
    clipped: float


def at_level(wave: np.ndarray, dbfs: float) -> tuple[np.ndarray, bool]:
    """``wave`` scaled to an RMS of ``dbfs``, clipped to full scale; True when a peak was cut."""
    scaled = wave * 10 ** ((dbfs - rms_dbfs(wave)) / 20)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32), bool(np.abs(scaled).max() > 1.0)


def forced(pred: Prediction, labels: Sequence[str]) -> str:
    """The label with the highest probability, whatever the threshold of "unknown" says."""
    return max(labels, key=lambda x: pred.probs[x])


def score_level(
    name: str,
    level: str,
    truth: Sequence[str],
    preds: Sequence[Prediction],
    reference: Sequence[str],
    labels: Sequence[str],
    clipped: float,
) -> LevelScore:
    """The balanced accuracy, the unknown share and the flips of one level's predictions."""
    choice = [forced(p, labels) for p in preds]
    answered = [(p.label, t) for p, t in zip(preds, truth) if p.label in labels]
    return LevelScore(
        model=name,
        level=level,
        clips=len(preds),
        balanced_accuracy=float(balanced_accuracy_score(truth, choice)),
        unknown=1 - len(answered) / len(preds),
        answered_accuracy=float(np.mean([a == t for a, t in answered])) if answered else 0.0,
        flipped=float(np.mean([c != r for c, r in zip(choice, reference)])),
        clipped=clipped,
    )


def load_clips(clips: Sequence[Clip]) -> tuple[list[np.ndarray], list[str], list[str]]:
    """The waves and labels of the clips that load; each one that does not is named, not fatal."""
    waves, truth, failures = [], [], []
    for clip in clips:
        try:
            waves.append(load_audio(clip.path))
            truth.append(clip.label)
        except AudioError as e:
            failures.append(str(e))
    return waves, truth, failures


def measure(
    name: str,
    checkpoint: str,
    waves: Sequence[np.ndarray],
    truth: Sequence[str],
    levels: Sequence[float],
) -> list[LevelScore]:
    """One model's scores at the clips' own level (the reference for flips), then at each level."""
    model = load_model(checkpoint)
    rows, reference = [], []
    for dbfs in [None, *levels]:
        scaled = [(w, False) if dbfs is None else at_level(w, dbfs) for w in waves]
        preds = model.predict([(w, RATE) for w, _ in scaled])
        reference = reference or [forced(p, model.labels) for p in preds]
        level = AS_RECORDED if dbfs is None else f"{dbfs:g} dBFS"
        cut = float(np.mean([c for _, c in scaled]))
        rows.append(score_level(name, level, truth, preds, reference, model.labels, cut))
        print(format_row(rows[-1]), flush=True)
    return rows


HEADER = (
    f"{'model':<14} {'level':<12} {'clips':>6} {'bal acc':>8} {'unknown':>8} "
    f"{'acc ans':>8} {'flipped':>8} {'clipped':>8}"
)


def format_row(r: LevelScore) -> str:
    return (
        f"{r.model:<14} {r.level:<12} {r.clips:>6} {r.balanced_accuracy:>8.4f} {r.unknown:>8.3f} "
        f"{r.answered_accuracy:>8.4f} {r.flipped:>8.3f} {r.clipped:>8.3f}"
    )


def plot(rows: Sequence[LevelScore], path: Path) -> Path:
    """Balanced accuracy and flipped answers against the level, one line per model."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r.model for r in rows):
        fixed = [r for r in rows if r.model == name and r.level != AS_RECORDED]
        x = [float(r.level.split()[0]) for r in fixed]
        left.plot(x, [r.balanced_accuracy for r in fixed], marker="o", label=name)
        right.plot(x, [r.flipped for r in fixed], marker="o", label=name)
    left.set(xlabel="RMS level (dBFS)", ylabel="balanced accuracy (forced choice)")
    right.set(xlabel="RMS level (dBFS)", ylabel="share of answers changed from the own level")
    left.legend()
    return save_figure(fig, path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", nargs="+", required=True, help="one or more manifest CSVs")
    p.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    p.add_argument("--levels", nargs="+", type=float, default=[-55, -45, -35, -25, -15])
    p.add_argument("--limit", type=int, default=0, help="at most N clips, evenly spaced (0: all)")
    p.add_argument("--out", default="results/bench/level")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    models = [spec.split("=", 1) for spec in args.model]
    if any(len(m) != 2 for m in models):
        sys.exit("level_robustness: --model takes NAME=CHECKPOINT")
    floor = AudioConfig().silence_dbfs
    if min(args.levels) <= floor:
        sys.exit(f"level_robustness: --levels must lie above the silence floor, {floor:g} dBFS")
    clips = read_manifests(args.manifest)
    if args.limit and len(clips) > args.limit:
        clips = clips[:: -(-len(clips) // args.limit)]
    waves, truth, failures = load_clips(clips)
    for failure in failures:
        print(f"skipped: {failure}", file=sys.stderr)
    if not waves:
        sys.exit("level_robustness: no clip could be read")
    own = np.percentile([rms_dbfs(w) for w in waves], [10, 50, 90])
    print(f"{len(waves)} clips; their own RMS level: median {own[1]:.1f} dBFS", end="")
    print(f" (10-90%: {own[0]:.1f} to {own[2]:.1f})\n{HEADER}", flush=True)
    rows = [r for name, path in models for r in measure(name, path, waves, truth, args.levels)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"manifests": args.manifest, "clips": len(waves), "failures": failures}
    report["own_level_dbfs"] = {"p10": own[0], "median": own[1], "p90": own[2]}
    atomic_write_json(out / "results.json", {**report, "rows": [asdict(r) for r in rows]})
    plot(rows, out / "level.png")
    print(f"wrote {out / 'results.json'} and {out / 'level.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
