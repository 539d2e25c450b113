"""Prediction: files, folders, long recordings in windows, bad files as rows, output formats."""

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import voice
from vgd.audio import save_audio
from vgd.checkpoint import load_checkpoint
from vgd.predict import find_audio, format_predictions, predict_paths


@pytest.fixture
def loaded(toy_model):
    return load_checkpoint(toy_model)


def test_predicts_the_toy_voices(loaded, tmp_path):
    save_audio(tmp_path / "low.wav", voice(95, 2.0, seed=7), 16000)
    save_audio(tmp_path / "high.wav", voice(215, 2.0, seed=8), 16000)
    preds = {p.path.split("/")[-1]: p for p in predict_paths(loaded, [tmp_path], progress=False)}
    assert preds["low.wav"].label == "male" and preds["high.wav"].label == "female"
    for p in preds.values():
        assert sum(p.probs.values()) == pytest.approx(1.0) and p.error is None


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
    preds = predict_paths(loaded, [tmp_path, tmp_path / "absent.wav"], progress=False)
    errors = {p.path.split("/")[-1]: p.error for p in preds}
    assert errors["good.wav"] is None
    assert errors["empty.wav"].startswith("empty")
    assert errors["text.wav"].startswith("not audio")
    assert errors["silent.wav"].startswith("silent")
    assert errors["short.wav"].startswith("too short")
    assert errors["absent.wav"].startswith("missing")


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
    assert find_audio([tmp_path / "empty"])[1][0].error == "folder holds no audio files"


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
    (sure,) = predict_paths(loaded, [tmp_path / "a.wav"], progress=False, min_confidence=0.0)
    best = max(sure.probs.values())
    assert sure.label in loaded.labels
    (unsure,) = predict_paths(
        loaded, [tmp_path / "a.wav"], progress=False, min_confidence=best + 1e-6
    )
    assert unsure.label == "unknown" and unsure.probs == sure.probs and unsure.error is None
