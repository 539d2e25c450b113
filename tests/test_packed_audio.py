"""The corpus a search packs once and hands its trials: training from it needs no file, and gives
the same model as training from the files."""

import shutil

import numpy as np
import pytest

from conftest import toy_config, toy_run, write_toy_corpus
from vgd.audio import AudioError
from vgd.crossval import cross_validate
from vgd.dataset import make_reader
from vgd.packed_audio import TooLarge, pack_audio
from vgd.train import load_clips, train


@pytest.fixture
def packed(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=8, utterances=2)
    config = toy_config(manifest, tmp_path, **{"optim.epochs": 2})
    run = toy_run(manifest, tmp_path)
    clips = load_clips(config, str(manifest))
    audio, failed = pack_audio(clips, make_reader(config.audio, run.cache_dir))
    return config, run, audio, failed


def test_training_from_packed_audio_needs_no_file_and_matches_the_files(packed, tmp_path):
    config, run, audio, failed = packed
    assert not failed and len(audio.clips) == 16
    from_files = train(config, run, progress=False)
    shutil.rmtree(tmp_path / "toy")  # the audio files and the manifest
    shutil.rmtree(tmp_path / "cache")
    no_paths = type(run)(manifest="(shipped)", cache_dir="")
    shipped = train(config, no_paths, list(audio.clips), progress=False, reader=audio.read)
    losses = [h["train_loss"] for h in from_files.history]
    assert [h["train_loss"] for h in shipped.history] == losses
    assert shipped.best["val_loss"] == from_files.best["val_loss"]
    assert not (tmp_path / "toy").exists() and not (tmp_path / "cache").exists()


def test_cross_validation_folds_read_the_packed_audio(packed, tmp_path):
    config, run, audio, _ = packed
    shutil.rmtree(tmp_path / "toy")
    no_paths = type(run)(manifest="(shipped)", cache_dir="")
    result = cross_validate(config, no_paths, 2, list(audio.clips), reader=audio.read)
    assert result.folds == 2 and len(result.history) == 2


def test_reads_are_views_of_one_read_only_array(packed):
    _, _, audio, _ = packed
    wave = audio.read(audio.clips[3].path)
    assert wave.base is audio.data or np.shares_memory(wave, audio.data)
    assert not wave.flags.writeable
    assert audio.nbytes >= audio.data.nbytes == 4 * int(audio.lengths.sum())
    with pytest.raises(AudioError, match="not in the audio the search packed"):
        audio.read("/elsewhere/x.wav")


def test_a_corpus_over_budget_names_its_size_and_the_budget(packed, tmp_path):
    config, run, audio, _ = packed
    reader = make_reader(config.audio, run.cache_dir)
    with pytest.raises(TooLarge) as e:
        pack_audio(list(audio.clips), reader, budget=audio.data.nbytes // 3)
    assert e.value.nbytes == audio.data.nbytes and e.value.budget == audio.data.nbytes // 3
    assert "MiB exceeds the budget of" in str(e.value)


def test_unreadable_clips_are_left_out_with_their_reason(packed):
    config, run, audio, _ = packed
    reader = make_reader(config.audio, run.cache_dir)
    bad = type(audio.clips[0])("/no/such.wav", "male", "ghost", 1.0, "toy", "train")
    packed2, failed = pack_audio([*audio.clips[:2], bad], reader)
    assert len(packed2.clips) == 2 and len(failed) == 1 and "/no/such.wav" in failed[0]
