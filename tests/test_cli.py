"""The vgd command end to end on tiny audio, and its failure paths (one line, exit status 2)."""

import json

import pytest

from conftest import TOY_FEATURES, voice, write_toy_corpus
from vgd.audio import save_audio
from vgd.cli import main


def run(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_predict_end_to_end(tmp_path, capsys):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=12, utterances=6)
    code, out, _ = run(
        capsys,
        "train",
        "--manifest",
        manifest,
        "--out",
        tmp_path / "run",
        "--set",
        "optim.epochs=5",
        "--set",
        "window.seconds=1.0",
        "--set",
        "model.width=8",
        "--set",
        "optim.batch_size=8",
        *[f"--set={k}={v}" for k, v in TOY_FEATURES.items()],
    )
    assert code == 0 and "checkpoint:" in out
    model = tmp_path / "run" / "model.pt"
    code, out, _ = run(
        capsys, "evaluate", model, "--manifest", manifest, "--out", tmp_path / "eval"
    )
    assert code == 0 and "balanced accuracy" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["balanced_accuracy"] >= 0.75 and (tmp_path / "eval" / "confusion.png").exists()
    save_audio(tmp_path / "in" / "low.wav", voice(95, 3.0, seed=5), 16000)
    # a harmonic tone is no speech to the VAD: --no-vad asks the model alone
    predict = ["predict", tmp_path / "in", "--model", model, "--format", "json"]
    code, out, _ = run(capsys, *predict, "--no-vad")
    assert code == 0 and json.loads(out)[0]["label"] == "male"
    code, out, _ = run(capsys, *predict)
    assert code == 0 and json.loads(out)[0]["label"] == "nonspeech"


def test_train_rerun_resumes_from_saved_state(toy_manifest, tmp_path, capsys):
    args = [
        "train",
        "--manifest",
        toy_manifest,
        "--out",
        tmp_path / "r",
        "--set",
        "optim.epochs=1",
        "--set",
        "window.seconds=1.0",
        "--set",
        "model.width=4",
    ]
    assert run(capsys, *args)[0] == 0
    assert (tmp_path / "r" / "state" / "state.pt").exists()
    moved = ["--threads", "1", "--cache-dir", tmp_path / "cache"]  # run settings may change
    assert run(capsys, *args, *moved)[0] == 0
    code, _, err = run(capsys, *args[:-2], "--set", "model.width=6")
    assert code == 2 and "different training config" in err and "--restart" in err
    assert run(capsys, *args[:-2], "--set", "model.width=6", "--restart")[0] == 0


def test_predict_exit_status_reports_failures(toy_model, tmp_path, capsys):
    save_audio(tmp_path / "ok.wav", voice(200, 2.0), 16000)
    (tmp_path / "bad.wav").write_text("not audio")
    code, out, err = run(
        capsys,
        "predict",
        tmp_path,
        "--model",
        toy_model,
        "--format",
        "csv",
        "--out",
        tmp_path / "p.csv",
    )
    assert code == 1
    assert "failed: " in err and "bad.wav: not audio" in err and "1 of 2 file(s) failed" in err
    assert (tmp_path / "p.csv").read_text().count("\n") == 3


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--manifest", "nowhere.csv"], "nowhere.csv: no such manifest"),
        (["train", "--set", "optim.lrr=1"], "optim.lrr: names no config field"),
        (["train", "--set", "model.width=wide"], "model.width: expected an integer"),
        (["train", "--config", "absent.yaml"], "absent.yaml: no such file"),
        (["evaluate", "absent.pt"], "absent.pt: no such checkpoint"),
        (["predict", "x.wav", "--model", "absent.pt"], "absent.pt: no such checkpoint"),
        (["plot", "mel", "absent.wav"], "absent.wav: missing"),
        (["data", "stats", "absent.csv"], "absent.csv: no such manifest"),
    ],
)
def test_failures_are_one_line_with_status_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and err.startswith("vgd: error:")


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    (tmp_path / "m.pt").write_bytes(b"\x80\x04junk")
    code, _, err = run(capsys, "predict", tmp_path, "--model", tmp_path / "m.pt")
    assert code == 2 and "not a loadable vgd checkpoint" in err


def test_data_stats_and_config(toy_manifest, tmp_path, capsys):
    code, out, _ = run(capsys, "data", "stats", toy_manifest)
    assert code == 0 and "female" in out and "total" in out
    code, out, _ = run(capsys, "config", "--set", "optim.lr=0.01", "--out", tmp_path / "c.yaml")
    code, out, _ = run(capsys, "config", "--config", tmp_path / "c.yaml")
    assert code == 0 and "lr: 0.01" in out


def test_plot_mel(tmp_path, capsys):
    save_audio(tmp_path / "f.wav", voice(210, 1.0), 16000)
    save_audio(tmp_path / "m.wav", voice(100, 1.0), 16000)
    code, _, _ = run(
        capsys,
        "plot",
        "mel",
        tmp_path / "f.wav",
        tmp_path / "m.wav",
        "--titles",
        "female",
        "male",
        "--out",
        tmp_path / "mel.png",
    )
    assert code == 0 and (tmp_path / "mel.png").stat().st_size > 5000
