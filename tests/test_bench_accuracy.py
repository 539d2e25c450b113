"""scripts/bench_accuracy.py on a tiny fake LibriSpeech tree (no ../shared needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_script, voice
from vgd.audio import save_audio

TINY = ["model.width=4", "model.n_blocks=2", "window.seconds=1.0", "optim.epochs=2"]
TINY += ["optim.batch_size=4"]


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_accuracy")


def fake_librispeech(root: Path, speakers: int = 10) -> dict[str, str]:
    """SPEAKERS.TXT plus train-clean-100/<spk>/<chap>/<spk>-<chap>-0000.flac; returns {id: sex}."""
    sex = {str(100 + s): "F" if s % 2 else "M" for s in range(speakers)}
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    rows += [f"{spk:<5}| {x} | train-clean-100  | 25.00 | Reader {spk}" for spk, x in sex.items()]
    rows.append("999  | F | train-clean-360  | 25.00 | Absent | Reader")  # listed, no audio
    root.mkdir(parents=True)
    (root / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n")
    for s, (spk, x) in enumerate(sex.items()):
        f0 = (190 if x == "F" else 100) + 5 * s
        path = root / "train-clean-100" / spk / "7" / f"{spk}-7-0000.flac"
        save_audio(path, voice(f0, 1.5, seed=s), 16000)
    return sex


def run(bench, root: Path, out: Path, *extra: str) -> int:
    sets = [x for item in TINY for x in ("--set", item)] + ["--threads", "1", "--device", "cpu"]
    return bench.main(["--root", str(root), "--folds", "2", "--out", str(out), "-q", *sets, *extra])


def test_cv_tests_every_speaker_once_and_writes_outputs(bench, tmp_path, toy_model):
    sex = fake_librispeech(tmp_path / "LibriSpeech")
    out = tmp_path / "bench"
    assert run(bench, tmp_path / "LibriSpeech", out, "--pretrained", str(toy_model)) == 0
    report = json.loads((out / "results.json").read_text())
    assert set(report["inits"]) == {"scratch", "pretrained"}
    assert report["n_speakers"] == len(sex)
    for init in report["inits"].values():
        folds = init["folds"]
        assert [f["fold"] for f in folds] == [0, 1]
        tested = [spk for f in folds for spk in f["test_speakers"]]
        assert sorted(tested) == sorted(sex)  # every speaker tested exactly once
        for f in folds:
            assert 0 <= f["balanced_accuracy"] <= 1
            assert {"recall_female", "recall_male", "speaker_accuracy"} <= set(f)
            assert f["n_train"] > 0 and f["n_val"] > 0 and 1 <= f["epochs"] <= 2
            assert 0 <= f["ece_after"] <= 1 and 0 <= f["ece_before"] <= 1 and f["temperature"] > 0
            assert {"val_ece_before", "val_ece_after"} <= set(f)
        assert {"ece_before", "ece_after"} <= set(init["summary"])
        assert (
            init["summary"]["balanced_accuracy"]["min"]
            <= init["summary"]["balanced_accuracy"]["mean"]
        )
    # the pretrained run rebuilt the checkpoint's network, not the tiny override
    assert report["pretrained_config"]["model"]["width"] == 8
    assert (out / "accuracy.png").stat().st_size > 0


def test_fold_splits_are_speaker_disjoint(bench, tmp_path):
    from vgd.corpora import build
    from vgd.splits import speaker_folds

    fake_librispeech(tmp_path / "ls", speakers=12)
    clips = build("librispeech", tmp_path / "ls", progress=False).clips
    folds = speaker_folds(clips, 3, seed=0)
    for k in range(3):
        split = {c.speaker: c.split for c in bench.fold_clips(clips, folds, k, seed=0)}
        assert {s for s, f in zip([c.speaker for c in clips], folds) if f == k} == {
            s for s, x in split.items() if x == "test"
        }
        assert {s for s, f in zip([c.speaker for c in clips], folds) if f == (k + 1) % 3} == {
            s for s, x in split.items() if x == "val"
        }


def test_missing_root_exits_2_naming_the_folder(bench, tmp_path, capsys):
    missing = tmp_path / "no_librispeech_here"
    assert bench.main(["--root", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_pretrained_checkpoint_exits_2(bench, tmp_path, capsys):
    fake_librispeech(tmp_path / "LibriSpeech")
    absent = tmp_path / "absent.pt"
    code = run(bench, tmp_path / "LibriSpeech", tmp_path / "out", "--pretrained", str(absent))
    assert code == 2
    assert str(absent) in capsys.readouterr().err
