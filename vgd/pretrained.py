"""The built-in real-voice model that ships inside the package, used when no model is promoted.

It is trained by ``scripts/real_model.py`` on LibriSpeech speakers with the configuration the
search chose (``recipe.yaml`` beside it); ``metrics.json`` holds its cross-validated scores and
``MODEL_CARD.md`` what it is for and what it is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vgd.config import TrainConfig, to_dict

MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
NAME = "builtin:librispeech"
REBUILD = "python scripts/real_model.py --compare"


def builtin_model() -> Path | None:
    """The shipped checkpoint, or None in a checkout where it was never built."""
    path = MODEL_DIR / "model.pt"
    return path if path.is_file() else None


def builtin_metrics() -> dict[str, Any]:
    """The shipped model's metrics.json ({} if absent)."""
    path = MODEL_DIR / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def describe() -> str:
    """One line: what the built-in model is and how well it did."""
    cv = builtin_metrics().get("cv", {}).get("balanced_accuracy")
    score = f", CV balanced accuracy {cv['mean']:.3f} ± {cv['std']:.3f}" if cv else ""
    return f"{NAME} (LibriSpeech read English speech, 2 labels{score})"


def _row(s: dict[str, float]) -> str:
    return f"{s['mean']:.4f} | {s['std']:.4f} | {s['min']:.4f} | {s['max']:.4f}"


def model_card(
    config: TrainConfig, metrics: dict[str, Any], speakers: dict[str, int], n_clips: int
) -> str:
    """MODEL_CARD.md text for the built-in model."""
    cv = metrics["cv"]
    rows = [f"| {key.replace('_', ' ')} | {_row(s)} |" for key, s in cv.items()]
    cal = metrics["calibration"]
    low, high = min(cal["fold_temperatures"]), max(cal["fold_temperatures"])
    device = metrics.get("cv_device", "cpu")
    a = config.augment
    used = [
        n
        for n, v in (
            ("speed", a.speed_pct),
            ("reverb", a.reverb_prob),
            ("telephone", a.telephone_prob),
            ("codec", a.codec_prob),
        )
        if v > 0
    ]
    conditions = (
        f"It trains with recording-condition augmentation ({', '.join(used)}), meant to help"
        " there; measure before relying on it."
        if used
        else "Its recipe uses no recording-condition augmentation (speed, reverb, telephone, "
        "codecs): expect it to do worse there."
    )
    recipe = yaml.safe_dump(to_dict(config), sort_keys=False)
    return f"""# vgd built-in model: `{NAME}`

A small CNN on log-mel features that says whether an adult voice in read English speech is
`female` or `male`, with calibrated probabilities.

## Data
- LibriSpeech train-clean-100, a sample of {n_clips} utterances, one per speaker
  ({", ".join(f"{n} {label}" for label, n in speakers.items())}): read audiobooks by LibriVox
  volunteers, 16 kHz. LibriSpeech (c) 2014 Vassil Panayotov, Creative Commons Attribution 4.0
  (CC BY 4.0). Labels from LibriSpeech's SPEAKERS.TXT.
- The final model is trained on every speaker for the folds' median best epoch
  ({metrics["epochs"]}). Its temperature ({metrics["temperature"]:.3f}) is fitted on the folds'
  {cal["clips"]} pooled out-of-fold test predictions: ECE {cal["ece_before"]:.4f} at T = 1,
  {cal["ece_after"]:.4f} at the fitted T (on the clips it was fitted to).

## Metrics (speaker-disjoint cross-validation: {metrics["cv_folds"]} outer folds, on {device})
{metrics["cv_seeds"]} fold seeds × {metrics["cv_k"]} folds. Each fold trains the recipe on the
speakers of K-2 folds, stops early on one and is scored on the last, whose voices it never heard.
Per-gender recall is the share of each gender's clips labelled correctly; ECE is the expected
calibration error (15 bins) on the test clips, with ("ece") and without the temperature.

| metric | mean | std | min | max |
|---|---|---|---|---|
{chr(10).join(rows)}

## Intended use
Voice gender detection of clean adult speech, as in read audiobooks: one voice per file, a few
seconds or more. Two labels (`female`, `male`) as self-reported by LibriSpeech readers; vgd adds
`unknown` under the confidence threshold and `nonspeech` where no speech is found.

## Limits
- Trained on read English audiobook speech from {sum(speakers.values())} adults: other
  languages, accents, children's voices, telephone or far-field recordings and synthetic voices
  are outside its data, and its accuracy there is not measured. {conditions}
- Gender is inferred from the voice alone; it is not a person's gender identity. Do not use it to
  make decisions about individuals.
- 251 speakers is a small corpus: the fold-to-fold spread above is the honest error bar.
- Calibration is rough: a fold whose ~50 validation speakers are all classified right pushes
  its temperature to the grid's floor, so the single folds' temperatures spread from {low:.3f} to
  {high:.3f} (the table's "ece" uses them); the shipped temperature is fitted on all folds.

## Recipe
```yaml
{recipe}```

## Rebuild
`{REBUILD}` (on the CPU, from ../shared/data/LibriSpeech) retrains this file and re-measures
the table above; `--compare` also trains the default configuration on the same folds.
"""
