"""scripts/pitch_reliance.py: how far a cross-corpus model's answers follow one F0 threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import load_script

SR = 16000


def tone(path, hz: float) -> str:
    """1 s of a voice-like tone: a fundamental at ``hz`` and its harmonics."""
    t = np.arange(SR) / SR
    wave = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 6))
    sf.write(path, (0.2 * wave).astype(np.float32), SR)
    return str(path)


@pytest.fixture()
def corpora(tmp_path):
    """Corpus a: women 200-230 Hz, men 100-130 Hz. Corpus b: women 150-195, men 90-110."""
    pitches = {
        ("a", "female"): [200, 210, 220, 230],
        ("a", "male"): [100, 110, 120, 130],
        ("b", "female"): [150, 160, 185, 195],
        ("b", "male"): [90, 100, 105, 110],
    }
    rows = ["path,label,speaker,corpus"]
    for (corpus, label), hzs in pitches.items():
        for i, hz in enumerate(hzs):
            path = tone(tmp_path / f"{corpus}_{label}_{i}.wav", hz)
            rows.append(f"{path},{label},{corpus}{label}{i},{corpus}")
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest, pitches


def loco_run(train: str, test: str, female_scores: list[float], targets: list[int]) -> dict:
    """A saved run whose every clip has two windows of the given P(female)."""
    logits = [[[np.log(p), np.log(1 - p)]] * 2 for p in female_scores]
    return {
        "recipe": "default",
        "kind": "loco",
        "train": train,
        "seed": 1,
        "oof": {test: {"logits": logits, "targets": targets}},
    }


def test_a_model_that_thresholds_pitch_agrees_with_f0_and_its_errors_are_named(
    corpora, tmp_path, capsys
):
    script = load_script("pitch_reliance")
    manifest, pitches = corpora
    # trained on a, it calls b's voices female above 175 Hz: b's two low women are wrong
    b_hz = pitches[("b", "female")] + pitches[("b", "male")]
    said = [0.9 if hz > 175 else 0.1 for hz in b_hz]
    runs = [loco_run("a", "b", said, [0] * 4 + [1] * 4)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": runs}))
    out = tmp_path / "pitch.json"
    assert script.main([str(results), "--manifest", str(manifest), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert run["agreement"] == 1.0
    assert 160 < run["threshold_hz"] < 185
    assert run["wrong"]["female"]["n"] == 2 and run["wrong"]["male"]["n"] == 0
    assert 150 < run["wrong"]["female"]["median_f0"] < 165 < run["right_median_f0"]["female"]
    assert run["recall_female"] == 0.5 and run["recall_male"] == 1.0
    # the pitch-only baseline fitted on a separates a (130 < threshold < 200) and misses b's women
    a_to_b = next(b for b in report["baseline"] if b["train"] == "a")
    assert 130 < a_to_b["threshold_hz"] < 200
    assert a_to_b["recall_female"] < 1.0
    assert "agrees with F0" in capsys.readouterr().out


def test_a_model_with_one_answer_for_all_follows_no_threshold(corpora, tmp_path, capsys):
    script = load_script("pitch_reliance")
    manifest, _ = corpora
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": [loco_run("a", "b", [0.1] * 8, [0] * 4 + [1] * 4)]}))
    out = tmp_path / "pitch.json"
    assert script.main([str(results), "--manifest", str(manifest), "--out", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    assert run["agreement"] is None and run["recall_female"] == 0.0
    assert "one answer to every clip" in capsys.readouterr().out


def test_saved_clips_that_are_not_the_manifests_are_refused(corpora, tmp_path, capsys):
    script = load_script("pitch_reliance")
    manifest, _ = corpora
    runs = [loco_run("a", "b", [0.5] * 8, [1] * 8)]  # labels that are not b's
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": runs}))
    assert script.main([str(results), "--manifest", str(manifest)]) == 2
    assert "not the manifest's clips of b" in capsys.readouterr().err
