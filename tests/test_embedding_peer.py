"""scripts/embedding_peer.py: a linear probe on cached embeddings, on the comparison's own runs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import load_script
from vgd.config import LABELS
from vgd.manifest import read_manifest


@pytest.fixture(scope="module")
def script():
    return load_script("embedding_peer")


def manifest(tmp_path):
    """Corpus a: 8 women and 8 men, one clip each; corpus b: 6 and 6, two clips each."""
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker", "corpus"])
        for corpus, n, clips in (("a", 8, 1), ("b", 6, 2)):
            for label in LABELS:
                for s in range(n):
                    for c in range(clips):
                        w.writerow([f"{corpus}/{label}{s}_{c}.flac", label, f"{label}{s}", corpus])
    return path


def cache(path, clips, rng):
    """Window embeddings whose first dimension says the gender: corpus a's clips have 2 windows."""
    emb = []
    for clip in clips:
        sign = 1.0 if clip.label == "female" else -1.0
        n = 2 if clip.corpus == "a" else 1
        emb.append(np.c_[np.full(n, sign), rng.normal(0, 0.3, (n, 3))].astype(np.float32))
    counts = [len(e) for e in emb]
    np.savez(path, paths=np.array([c.path for c in clips]), counts=counts, emb=np.concatenate(emb))


def report(script, clips, path):
    """A cross_corpus.py report whose recipe is wrong, unsure (p = 0.12), on each run's first
    test clip and sure (p = 0.9997) on the others."""
    rep = {"seeds": [1], "folds": 2, "runs": []}
    for run, split in script.splits(clips, rep, 0.2):
        test = [c for c in split if c.split == "test"]
        oof = {}
        for corpus in sorted({c.corpus for c in test}):
            mine = [c for c in test if c.corpus == corpus]
            targets = [LABELS.index(c.label) for c in mine]
            logits = [[[4.0, -4.0]] if t == 0 else [[-4.0, 4.0]] for t in targets]
            oof[corpus] = {"logits": logits, "targets": targets}
        first = next(iter(oof.values()))
        first["logits"][0] = [[-z / 4 for z in first["logits"][0][0]]]
        rep["runs"].append({"recipe": "default", **run, "oof": oof, "temperature": 1.0})
    path.write_text(json.dumps(rep))
    return path


def arguments(rep, tmp_path):
    """The script's arguments for the fixtures in ``tmp_path``: embeddings from the cache."""
    return [
        str(rep),
        "--manifest",
        str(tmp_path / "manifest.csv"),
        "--cache",
        str(tmp_path / "emb.npz"),
    ]


def test_probe_and_mean_on_the_reports_runs(script, tmp_path, capsys):
    clips = read_manifest(manifest(tmp_path))
    cache(tmp_path / "emb.npz", clips, np.random.default_rng(0))
    rep = report(script, clips, tmp_path / "results.json")
    out = tmp_path / "out"
    argv = arguments(rep, tmp_path)
    assert script.main([*argv, "--out", str(out)]) == 0  # the cache is read: no encoder runs
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [len(runs[m]) for m in ("probe", "vgd", "mean")] == [4, 4, 4]  # 2 LOCO + 2 pooled
    assert all(r["macro"] == 1.0 for r in runs["probe"])  # the embeddings separate the genders
    # The recipe misses one clip per run; the sure probe overrules it in the mean.
    assert all(r["macro"] < 1.0 for r in runs["vgd"])
    assert all(r["macro"] == 1.0 for r in runs["mean"])
    lines = capsys.readouterr().out.splitlines()
    paired = next(line for line in lines if line.startswith("mean     macro"))
    assert paired.split()[-2:] == ["2", "0"]  # wins, losses over the 2 pooled folds
    loco = [r for r in runs["probe"] if r["kind"] == "loco"]
    assert {r["train"] for r in loco} == {"a", "b"}
    assert all(len(r["per_corpus"]) == 1 for r in loco)  # scored on the left-out corpus alone


def test_a_run_of_other_clips_is_refused(script, tmp_path):
    clips = read_manifest(manifest(tmp_path))
    cache(tmp_path / "emb.npz", clips, np.random.default_rng(0))
    rep = report(script, clips, tmp_path / "results.json")
    data = json.loads(rep.read_text())
    targets = data["runs"][0]["oof"][next(iter(data["runs"][0]["oof"]))]["targets"]
    targets[0] = 1 - targets[0]
    rep.write_text(json.dumps(data))
    argv = arguments(rep, tmp_path)
    with pytest.raises(ValueError, match="not this split's"):
        script.main(argv)


def test_each_speaker_and_stratum_weighs_the_same(script, tmp_path):
    clips = read_manifest(manifest(tmp_path))
    w = script.balance_weights(clips)
    totals = {}
    for clip, weight in zip(clips, w):
        key = (clip.corpus, clip.label)
        totals[key] = totals.get(key, 0.0) + weight
    assert np.allclose(list(totals.values()), list(totals.values())[0])
    b = [weight for clip, weight in zip(clips, w) if clip.corpus == "b"]
    a = [weight for clip, weight in zip(clips, w) if clip.corpus == "a"]
    # b's speakers have 2 clips and there are 6 per gender, a's 1 clip and 8 per gender.
    assert b[0] / a[0] == pytest.approx(8 / (2 * 6))
