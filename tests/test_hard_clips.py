"""scripts/hard_clips.py: the clips saved runs answer wrongly, matched back to the manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_script, voice
from vgd.audio import save_audio
from vgd.crossval import test_fold_clips as fold_clips
from vgd.manifest import Clip, read_manifest, write_manifest
from vgd.splits import speaker_folds

LABELS = ("female", "male")


@pytest.fixture(scope="module")
def script():
    return load_script("hard_clips")


@pytest.fixture
def manifest(tmp_path):
    """Two corpora × two genders × three speakers, one 1-s tone each, pitched by gender."""
    clips = []
    for corpus in ("corpusA", "corpusB"):
        for label, f0 in (("female", 210.0), ("male", 110.0)):
            for s in range(3):
                path = tmp_path / corpus / f"{label}{s}.wav"
                save_audio(path, voice(f0 + 10 * s, 1.0, seed=s), 16000)
                clips.append(Clip(str(path), label, f"{corpus}-{label}{s}", 1.0, corpus))
    return write_manifest(clips, tmp_path / "manifest.csv")


def pooled_report(clips, wrong_paths, seeds=(1,), recipe="default", same_as=None):
    """A cross_corpus.py report of 3-fold pooled runs: each test clip's one window says its own
    label, except the clips in ``wrong_paths``, which say the other."""
    runs = []
    for seed in seeds:
        folds = speaker_folds(clips, 3, seed)
        for k in range(3):
            test = [c for c in fold_clips(clips, folds, k, seed) if c.split == "test"]
            oof = {}
            for name in sorted({c.corpus for c in test}):
                mine = [c for c in test if c.corpus == name]
                targets = [LABELS.index(c.label) for c in mine]
                said = [1 - t if c.path in wrong_paths else t for c, t in zip(mine, targets)]
                logits = [[[3.0, -3.0]] if s == 0 else [[-3.0, 3.0]] for s in said]
                oof[name] = {"logits": logits, "targets": targets}
            runs.append({"recipe": recipe, "kind": "pooled", "seed": seed, "fold": k, "oof": oof})
    return {"folds": 3, "same_as": same_as or {}, "runs": runs}


def test_every_clip_is_matched_once_per_seed_and_its_wrong_answers_counted(
    script, manifest, tmp_path
):
    clips = read_manifest(manifest)
    hard = clips[0].path  # corpusA, female
    path = tmp_path / "results.json"
    path.write_text(json.dumps(pooled_report(clips, {hard}, seeds=(1, 2))))
    counts, n_runs = script.tally([path], clips, "pooled")
    assert n_runs == 6
    assert {c.path: counts[c.path] for c in clips} == {
        c.path: [2, 2 if c.path == hard else 0] for c in clips
    }
    rows = script.clip_rows(clips, counts, np.full(len(clips), np.nan))
    (a, b) = script.floors(rows, 0.5)
    # corpusA: 1 of its 3 women always wrong → recall F 2/3, M 1
    assert a["corpus"] == "corpusA" and a["female"] == {"clips": 3, "hard": 1}
    assert a["floor_balanced_accuracy"] == pytest.approx(5 / 6)
    assert b["floor_balanced_accuracy"] == 1.0


def test_a_copied_recipe_is_not_counted_twice(script, manifest, tmp_path):
    clips = read_manifest(manifest)
    report = pooled_report(clips, set())
    copy = pooled_report(clips, {c.path for c in clips}, recipe="pick")
    report["runs"] += copy["runs"]
    report["same_as"] = {"pick": "default"}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report))
    counts, n_runs = script.tally([path], clips, "pooled")
    assert n_runs == 3 and all(counts[c.path] == [1, 0] for c in clips)


def test_a_report_whose_clips_differ_from_the_manifest_is_refused(script, manifest, tmp_path):
    clips = read_manifest(manifest)
    report = pooled_report(clips, set())
    # As if drawn by another fold function: the saved labels no longer line up.
    targets = next(iter(report["runs"][0]["oof"].values()))["targets"]
    targets[0] = 1 - targets[0]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report))
    with pytest.raises(ValueError, match=f"^{path}: pooled seed 1 fold 0: .*not the manifest's"):
        script.tally([path], clips, "pooled")
    report["clips_sha1"] = "0" * 40
    path.write_text(json.dumps(report))
    with pytest.raises(ValueError, match="other clips"):
        script.tally([path], clips, "pooled")


def test_main_prints_the_hard_clips_with_their_pitch_and_writes_them(
    script, manifest, tmp_path, capsys
):
    clips = read_manifest(manifest)
    male = next(c for c in clips if c.corpus == "corpusB" and c.label == "male")
    path = tmp_path / "results.json"
    path.write_text(json.dumps(pooled_report(clips, {male.path})))
    out = tmp_path / "hard"
    assert script.main([str(path), "--manifest", str(manifest), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    (line,) = [s for s in printed.splitlines() if male.speaker in s]
    assert " 1/1 " in line and " 110 " in line  # wrong in its one run; its tone's F0
    saved = json.loads((out / "clips.json").read_text())
    row = next(r for r in saved["clips"] if r["path"] == male.path)
    # 110 Hz: under corpusB's women (210-230 Hz) and its other men (120, 130 Hz)
    assert row["f0_pct"] == {"female": 0.0, "male": 0.0}
    assert (out / "clips.png").stat().st_size > 0
    missing = tmp_path / "nothing.json"
    missing.write_text(json.dumps({"folds": 3, "runs": []}))
    assert script.main([str(missing), "--manifest", str(manifest)]) == 2


def test_a_left_out_corpus_is_matched_whole(script, manifest, tmp_path):
    clips = read_manifest(manifest)
    left_out = [c for c in clips if c.corpus == "corpusB"]
    targets = [LABELS.index(c.label) for c in left_out]
    # It calls every one of them female: the men are wrong.
    oof = {"corpusB": {"logits": [[[3.0, -3.0]]] * len(left_out), "targets": targets}}
    run = {"recipe": "default", "kind": "loco", "seed": 1, "fold": 0, "oof": oof}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"folds": 3, "runs": [run]}))
    counts, n_runs = script.tally([path], clips, "loco")
    assert n_runs == 1 and set(counts) == {c.path for c in left_out}
    assert all(counts[c.path] == [1, int(c.label == "male")] for c in left_out)
    assert script.tally([path], clips, "pooled") == ({}, 0)


def test_a_corpus_of_one_gender_has_a_floor_over_the_gender_it_has(script):
    rows = [
        {"corpus": "women", "label": "female", "share_wrong": 1.0},
        {"corpus": "women", "label": "female", "share_wrong": 0.0},
    ]
    (line,) = script.floors(rows, 0.5)
    assert line["floor_balanced_accuracy"] == 0.5 and "male" not in line
