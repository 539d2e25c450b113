"""Prediction: files, folders, long recordings in windows, bad files as rows, output formats,
and the words: a gender, unknown, nonspeech (music, noise, tones and silence)."""

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import voice
from vgd import signals
from vgd.audio import find_audio, save_audio
from vgd.checkpoint import load_checkpoint
from vgd.cli import main
from vgd.formats import format_predictions
from vgd.predict import PredictConfig, predict_paths

# The toy voices are harmonic tones: a model learns their pitch, Silero VAD rightly hears no speech.
NO_VAD = PredictConfig(vad=None)


@pytest.fixture
def loaded(toy_model):
    return load_checkpoint(toy_model)


def test_predicts_the_toy_voices(loaded, tmp_path):
    save_audio(tmp_path / "low.wav", voice(95, 2.0, seed=7), 16000)
    save_audio(tmp_path / "high.wav", voice(215, 2.0, seed=8), 16000)
    preds = predict_paths(loaded, [tmp_path], progress=False, config=NO_VAD)
    preds = {p.path.split("/")[-1]: p for p in preds}
    assert preds["low.wav"].label == "male" and preds["high.wav"].label == "female"
    for p in preds.values():
        assert sum(p.probs.values()) == pytest.approx(1.0) and p.error is None
        assert p.speech_s is None  # not counted without the VAD


def test_long_recording_is_windowed_and_pooled(loaded, tmp_path):
    save_audio(tmp_path / "long.wav", voice(95, 10.0), 16000)  # 1 s crop → 10 windows
    (pred,) = predict_paths(loaded, [tmp_path / "long.wav"], progress=False)
    assert pred.windows == 10 and pred.duration_s == pytest.approx(10.0)


def test_silent_windows_are_skipped(loaded, tmp_path):
    wave = np.concatenate([np.zeros(16000 * 3, np.float32), voice(95, 2.0)])
    save_audio(tmp_path / "gap.wav", wave, 16000)
    (pred,) = predict_paths(loaded, [tmp_path / "gap.wav"], progress=False)
    assert pred.windows == 2 and pred.error is None


def test_bad_files_get_error_rows_and_the_rest_go_on(loaded, tmp_path):
    save_audio(tmp_path / "good.wav", voice(95, 2.0), 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("hello")
    sf.write(tmp_path / "silent.wav", np.zeros(32000, np.float32), 16000)
    save_audio(tmp_path / "short.wav", voice(95, 0.1), 16000)
    for config in (PredictConfig(), NO_VAD):
        preds = predict_paths(loaded, [tmp_path, tmp_path / "absent.wav"], False, config=config)
        errors = {p.path.split("/")[-1]: p.error for p in preds}
        assert errors["good.wav"] is None
        assert errors["empty.wav"].startswith("empty")
        assert errors["text.wav"].startswith("not audio")
        assert errors["short.wav"].startswith("too short")
        assert errors["absent.wav"].startswith("missing")
        silent = next(p for p in preds if p.path.endswith("silent.wav"))
        assert (silent.label, silent.error, silent.speech_s) == ("nonspeech", None, 0.0)
        assert silent.duration_s == pytest.approx(2.0)


def test_batches_span_files_and_give_the_same_answer(loaded, tmp_path):
    for i in range(5):
        save_audio(tmp_path / f"{i}.wav", voice(90 + 30 * i, 2.5), 16000)
    one = predict_paths(loaded, [tmp_path], batch_size=1, progress=False)
    many = predict_paths(loaded, [tmp_path], batch_size=64, progress=False)
    for a, b in zip(one, many):
        assert a.probs == pytest.approx(b.probs, abs=1e-5)


def test_folders_are_searched_recursively_for_audio_only(tmp_path):
    save_audio(tmp_path / "a" / "b" / "x.flac", voice(95, 1.0), 16000)
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    files, errors = find_audio([tmp_path])
    assert [f.name for f in files] == ["x.flac"] and not errors
    (tmp_path / "empty").mkdir()
    assert find_audio([tmp_path / "empty"])[1][0].reason == "folder holds no audio files"


def test_output_formats(loaded, tmp_path):
    save_audio(tmp_path / "a.wav", voice(95, 2.0), 16000)
    (tmp_path / "b.wav").write_bytes(b"")
    preds = predict_paths(loaded, [tmp_path], progress=False)
    rows = list(csv.DictReader(io.StringIO(format_predictions(preds, loaded.labels, "csv"))))
    assert set(rows[0]) >= {"path", "label", "p_female", "p_male", "duration_s", "error"}
    data = json.loads(format_predictions(preds, loaded.labels, "json"))
    assert [d["error"] is None for d in data] == [True, False]
    table = format_predictions(preds, loaded.labels, "table")
    assert "ERROR" in table and "p_female" in table


def test_parallel_decoding_keeps_the_order_and_the_answers(loaded, tmp_path):
    for i in range(7):
        save_audio(tmp_path / f"{i}.wav", voice(90 + 20 * i, 1.0 + 0.5 * i), 16000)
    (tmp_path / "3b.wav").write_text("not audio")  # an error in the middle stays in its place
    serial = predict_paths(loaded, [tmp_path], batch_size=4, progress=False, workers=1)
    threaded = predict_paths(loaded, [tmp_path], batch_size=4, progress=False, workers=4)
    assert [p.path for p in serial] == [p.path for p in threaded]
    assert [p.error for p in serial] == [p.error for p in threaded]
    for a, b in zip(serial, threaded):
        assert a.probs == pytest.approx(b.probs, abs=1e-6)


def test_a_file_under_the_confidence_threshold_is_unknown(loaded, tmp_path):
    save_audio(tmp_path / "a.wav", voice(95, 2.0, seed=3), 16000)
    sure_config = PredictConfig(min_confidence=0.0, vad=None)
    (sure,) = predict_paths(loaded, [tmp_path / "a.wav"], progress=False, config=sure_config)
    best = max(sure.probs.values())
    assert sure.label in loaded.labels
    unsure_config = PredictConfig(min_confidence=best + 1e-6, vad=None)
    (unsure,) = predict_paths(loaded, [tmp_path / "a.wav"], progress=False, config=unsure_config)
    assert unsure.label == "unknown" and unsure.probs == sure.probs and unsure.error is None


NONSPEECH_SIGNALS = {
    "music": lambda: signals.music_like(8.0, seed=2),
    "pink": lambda: signals.coloured_noise(8.0, "pink", seed=1),
    "tone": lambda: signals.tone(8.0, 440.0),
    "hiss": lambda: signals.silence_with_hiss(8.0),
    "silence": lambda: np.zeros(8 * 16000, np.float32),
}


@pytest.fixture
def mixed_folder(tmp_path):
    """Music, noise, a tone, near-silence and silence, and one voice of the synthetic corpus."""
    for name, make in NONSPEECH_SIGNALS.items():
        save_audio(tmp_path / f"{name}.wav", make(), 16000)
    save_audio(tmp_path / "talk.wav", signals.synthetic_voice(4.0, "female", 0), 16000)
    return tmp_path


def test_music_noise_tone_and_silence_are_nonspeech(loaded, mixed_folder):
    # min_confidence 0: a speech file must name a gender (the toy model is unsure of real voices)
    config = PredictConfig(min_confidence=0.0)
    preds = {
        p.path.split("/")[-1][:-4]: p
        for p in predict_paths(loaded, [mixed_folder], False, config=config)
    }
    for name in NONSPEECH_SIGNALS:
        assert (preds[name].label, preds[name].error) == ("nonspeech", None), name
        assert preds[name].speech_s < config.min_speech_s
    assert preds["talk"].label in loaded.labels and preds["talk"].speech_s >= config.min_speech_s
    # the VAD changes labels only: the probabilities are the model's, as without it
    no_vad = predict_paths(loaded, [mixed_folder], False, config=PredictConfig(0.0, vad=None))
    assert {p.path: p.probs for p in no_vad} == {p.path: p.probs for p in preds.values()}
    assert [p.label for p in no_vad if p.path.endswith("music.wav")] != ["nonspeech"]


def test_min_speech_decides_how_much_speech_is_enough(loaded, mixed_folder):
    talk = mixed_folder / "talk.wav"
    (pred,) = predict_paths(loaded, [talk], False, config=PredictConfig(0.0, min_speech_s=60.0))
    assert pred.label == "nonspeech" and 2.0 < pred.speech_s < 4.0  # the whole file counted


def test_cli_predict_says_nonspeech_and_takes_the_options(toy_model, mixed_folder, capsys):
    args = ["-q", "predict", str(mixed_folder), "--model", str(toy_model), "--format", "csv"]
    assert main([*args, "--min-confidence", "0"]) == 0  # nonspeech is an answer, not a failure
    rows = {
        r["path"].split("/")[-1][:-4]: r
        for r in csv.DictReader(io.StringIO(capsys.readouterr().out))
    }
    assert {name: rows[name]["label"] for name in NONSPEECH_SIGNALS} == dict.fromkeys(
        NONSPEECH_SIGNALS, "nonspeech"
    )
    assert rows["talk"]["label"] in ("female", "male") and float(rows["talk"]["speech_s"]) >= 0.5
    assert main([*args, "--no-vad", "--min-confidence", "0"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["label"] for r in rows if "silence" not in r["path"]} <= {"female", "male"}
    assert all(r["speech_s"] == "" for r in rows if "silence" not in r["path"])
    assert main([*args, "--min-speech", "-1"]) == 2
    assert "min_speech_s" in capsys.readouterr().err
