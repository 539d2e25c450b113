"""The one inference path: windows, silence, streaming, and evaluate == predict == validation."""

import csv
import json

import numpy as np
import pytest

from conftest import toy_config, toy_manifest_of, toy_run, voice
from vgd import inference
from vgd.audio import AudioError, save_audio
from vgd.checkpoint import load_checkpoint
from vgd.cli import main
from vgd.config import ModelSpec, WindowConfig
from vgd.evaluate import evaluate
from vgd.inference import crop, file_windows, wave_windows, window_starts
from vgd.manifest import Clip, write_manifest
from vgd.predict import predict_paths
from vgd.train import load_clips, save_outputs, train

SPEC = ModelSpec(window=WindowConfig(seconds=1.0))


def test_windows_cover_the_recording_end_to_end():
    assert window_starts(100, 40) == [0, 30, 60]  # the last window ends at the last sample
    assert window_starts(120, 40) == [0, 40, 80]  # back to back when it divides
    assert window_starts(30, 40) == [0]
    assert window_starts(1000, 40, max_windows=4) == [0, 320, 640, 960]


def test_short_recordings_are_tiled_to_a_window():
    wave = np.arange(1, 11, dtype=np.float32)
    out = crop(wave, 0, 25)
    assert out.shape == (25,) and np.all(out != 0) and out[10] == wave[0]
    assert np.all(crop(np.zeros(0, np.float32), 0, 5) == 0)


def test_silent_windows_are_left_out_and_all_silent_is_an_error():
    wave = np.concatenate([np.zeros(48000, np.float32), voice(120, 2.0)])
    assert len(list(wave_windows(wave, SPEC))) == 2  # 5 s → 5 windows, 3 of them silent
    with pytest.raises(AudioError, match="silent"):
        list(wave_windows(np.zeros(32000, np.float32), SPEC, "quiet.wav"))


@pytest.mark.parametrize("rate", [16000, 8000])
def test_streaming_a_long_file_yields_the_windows_of_decoding_it(tmp_path, monkeypatch, rate):
    path = tmp_path / "long.wav"
    save_audio(path, voice(150, 7.3, rate=rate), rate)
    duration, decoded = file_windows(path, SPEC)
    monkeypatch.setattr(inference, "STREAM_ABOVE_S", 1.0)  # now the file counts as long
    streamed_duration, streamed = file_windows(path, SPEC)
    decoded, streamed = np.stack(list(decoded)), np.stack(list(streamed))
    assert duration == pytest.approx(streamed_duration, abs=1e-3) and decoded.shape == (8, 16000)
    # 16 kHz files are read sample for sample; other rates are resampled per window, which
    # differs from resampling the whole file only near the window edges.
    tolerance = 1e-6 if rate == 16000 else 0.05
    assert np.abs(decoded - streamed).max() <= tolerance


@pytest.fixture(scope="module")
def recordings(toy_model, tmp_path_factory):
    """The toy model's test clips plus a long, a short and a partly silent recording."""
    root = tmp_path_factory.mktemp("rec")
    loaded = load_checkpoint(toy_model)
    clips = [c for c in load_clips(loaded.recipe, str(toy_manifest_of(toy_model)))]
    extra = {
        "long.wav": voice(105, 9.5, seed=1),
        "short.wav": voice(200, 0.7, seed=2),
        "gap.wav": np.concatenate([np.zeros(32000, np.float32), voice(190, 2.2, seed=3)]),
    }
    for name, wave in extra.items():
        save_audio(root / name, wave, 16000)
        clips.append(Clip(str(root / name), "male", name, len(wave) / 16000, "extra", "test"))
    return loaded, [c for c in clips if c.split == "test"]


def test_evaluate_and_predict_give_identical_probabilities(recordings, tmp_path):
    loaded, clips = recordings
    evaluated = evaluate(loaded, clips, batch_size=16)
    cached = evaluate(loaded, clips, batch_size=16, cache_dir=str(tmp_path / "cache"))
    predicted = predict_paths(loaded, [c.path for c in clips], batch_size=16, progress=False)
    assert [p.path for p in predicted] == [c.path for c in clips]
    probs = np.array([[p.probs[x] for x in loaded.labels] for p in predicted])
    assert np.abs(evaluated.probs - probs).max() <= 1e-6
    assert np.abs(cached.probs - probs).max() <= 1e-6
    assert {p.path.rsplit("/", 1)[-1]: p.windows for p in predicted}["long.wav"] == 10


def test_the_cli_reports_the_same_probabilities(recordings, tmp_path, capsys):
    loaded, clips = recordings
    manifest = tmp_path / "m.csv"
    write_manifest(clips, manifest)
    assert (
        main(
            [
                "-q",
                "evaluate",
                loaded.path,
                "--manifest",
                str(manifest),
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            ["-q", "predict", *[c.path for c in clips], "--model", loaded.path, "--format", "json"]
        )
        == 0
    )
    predicted = {p["path"]: p["probs"] for p in json.loads(capsys.readouterr().out)}
    with open(tmp_path / "e" / "predictions.csv") as f:
        for row in csv.DictReader(f):
            for label in loaded.labels:
                assert float(row[f"p_{label}"]) == pytest.approx(
                    predicted[row["path"]][label], abs=1e-6
                )


def test_validation_measures_what_evaluate_reports(toy_manifest, tmp_path):
    config = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2})
    run = toy_run(toy_manifest, tmp_path)
    result = train(config, run, progress=False)
    loaded = load_checkpoint(save_outputs(result, tmp_path / "run")["model"])
    loaded.model.temperature = 1.0  # validation ran before the temperature was fitted
    val = [c for c in load_clips(config, run.manifest) if c.split == "val"]
    report = evaluate(loaded, val)
    best = result.best
    assert report.metrics["balanced_accuracy"] == pytest.approx(best["val_balanced_accuracy"])
    assert report.metrics["loss"] == pytest.approx(best["val_loss"], abs=1e-6)


class _Corrupt:
    """A streamed recording whose second block is unreadable (as read_blocks raises it)."""

    def __iter__(self):
        yield np.zeros(16000, np.float32)
        raise AudioError("late.wav", "corrupt (samples are NaN or infinite)")


class _LengthCounter:
    """A speech counter that calls every sample speech, reading each recording to its end."""

    def count_many(self, recordings):
        return [sum(block.size for block in blocks) / rate for blocks, rate in recordings]


def test_a_recording_that_fails_while_its_speech_is_counted_gets_its_error_alone(monkeypatch):
    reads = []
    monkeypatch.setattr(
        inference, "read_blocks", lambda *a: reads.append(a) or iter([np.ones(4000)])
    )
    batches = inference._Batches(None, 4, 2, 64, "fp32", _LengthCounter())
    batches.count(0, [np.zeros(16000, np.float32)], 16000)
    batches.count(1, inference._Blocks("long.wav", 16000), 16000)  # streamed: read on demand
    batches.count(2, _Corrupt(), 16000)
    batches.count(3, [np.zeros(8000, np.float32)], 16000)
    batches.flush()
    assert batches.speech_s == [1.0, 0.25, None, 0.5]
    assert batches.errors == {2: "corrupt (samples are NaN or infinite)"}
    assert len(reads) == 2  # counted again after the failure, reading the file from its start
