"""scripts/level_robustness.py: a model's answers with every clip played at fixed RMS levels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_script, toy_manifest_of, voice
from vgd.audio import rms_dbfs
from vgd.formats import Prediction

level = load_script("level_robustness")
LABELS = ("female", "male")


def test_a_clip_is_scaled_to_the_level_and_a_cut_peak_is_counted():
    wave = voice(120, 1.0)
    quiet, cut = level.at_level(wave, -40.0)
    assert rms_dbfs(quiet) == pytest.approx(-40.0, abs=0.01) and not cut
    loud, cut = level.at_level(wave, -3.0)
    assert cut and np.abs(loud).max() <= 1.0


def pred(label: str | None, p_female: float) -> Prediction:
    return Prediction("x", label=label, probs={"female": p_female, "male": 1 - p_female})


def test_a_level_is_scored_by_its_forced_choice_its_unknowns_and_its_flips():
    truth = ["female", "female", "male", "male"]
    preds = [pred("female", 0.9), pred("unknown", 0.6), pred("male", 0.1), pred("female", 0.8)]
    reference = ["female", "male", "male", "male"]
    row = level.score_level("m", "-30 dBFS", truth, preds, reference, LABELS, 0.25)
    assert row.balanced_accuracy == pytest.approx((1.0 + 0.5) / 2)
    assert row.unknown == pytest.approx(0.25)
    assert row.answered_accuracy == pytest.approx(2 / 3)
    assert row.flipped == pytest.approx(0.5)
    assert row.clipped == 0.25


def test_it_scores_each_model_at_each_level_and_lists_clips_it_cannot_read(toy_model, tmp_path):
    manifest = toy_manifest_of(toy_model)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    extra = tmp_path / "extra.csv"
    extra.write_text(f"path,label,speaker\n{broken},female,nobody\n")
    out = tmp_path / "out"
    argv = ["--manifest", str(manifest), str(extra), "--levels", "-40", "-20"]
    argv += ["--model", f"a={toy_model}", "--model", f"b={toy_model}", "--out", str(out)]
    assert level.main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert len(report["failures"]) == 1 and "broken.wav" in report["failures"][0]
    rows = report["rows"]
    assert [(r["model"], r["level"]) for r in rows] == [
        (m, x) for m in "ab" for x in (level.AS_RECORDED, "-40 dBFS", "-20 dBFS")
    ]
    assert {r["clips"] for r in rows} == {report["clips"]} and report["clips"] == 72
    own = [r for r in rows if r["level"] == level.AS_RECORDED]
    assert all(r["flipped"] == 0 for r in own)
    assert rows[:3] == [dict(r, model="a") for r in rows[3:]]  # the same model, the same answers
    assert (out / "level.png").stat().st_size > 0


def test_a_level_below_the_silence_floor_is_refused(toy_model, tmp_path):
    argv = ["--manifest", str(toy_manifest_of(toy_model)), "--model", f"a={toy_model}"]
    with pytest.raises(SystemExit, match="above the silence floor, -60 dBFS"):
        level.main([*argv, "--levels", "-30", "-70", "--out", str(tmp_path)])
