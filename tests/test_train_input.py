"""Training input: the packed corpus when it fits (shared via the cache), else the DataLoader."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import toy_config, toy_run, write_toy_corpus
from vgd import train_input
from vgd.batches import DeviceBatcher
from vgd.dataset import make_reader
from vgd.manifest import read_manifest
from vgd.train import load_clips, train
from vgd.train_input import LoaderBatches, training_batches

CPU = torch.device("cpu")


def _source(manifest, tmp_path, **run):
    config = toy_config(manifest, tmp_path)
    run = toy_run(manifest, tmp_path, **run)
    clips = [c for c in load_clips(config, run.manifest) if c.split == "train"]
    reader = make_reader(config.audio, run.cache_dir)
    return training_batches(config, run, clips, reader, CPU)[0], clips


def test_auto_packs_a_corpus_that_fits_and_loads_one_that_does_not(
    toy_manifest, tmp_path, monkeypatch
):
    packed, clips = _source(toy_manifest, tmp_path)
    assert isinstance(packed, DeviceBatcher) and len(packed.corpus) == len(clips)
    monkeypatch.setattr(train_input, "memory_budget", lambda device: 1000)  # bytes: nothing fits
    assert isinstance(_source(toy_manifest, tmp_path)[0], LoaderBatches)
    forced, _ = _source(toy_manifest, tmp_path, train_input="device")
    assert isinstance(forced, DeviceBatcher) and forced.corpus.data.dtype == torch.int16


def test_the_batches_do_not_depend_on_how_much_memory_is_free(toy_manifest, tmp_path, monkeypatch):
    monkeypatch.setattr(train_input, "memory_budget", lambda device: 1 << 40)
    roomy, clips = _source(toy_manifest, tmp_path / "roomy")
    need = roomy.corpus.data.numel() * 2  # just room for int16
    monkeypatch.setattr(train_input, "memory_budget", lambda device: need)
    tight, _ = _source(toy_manifest, tmp_path / "tight")
    for (a, ya), (b, yb) in zip(roomy.epoch(0), tight.epoch(0), strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)


def test_available_memory_reads_memavailable_and_falls_back_to_free_pages(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 2048 kB\nMemFree: 100 kB\nMemAvailable: 1500 kB\n")
    assert train_input.available_memory(meminfo) == 1500 * 1024
    pages = {"SC_AVPHYS_PAGES": 3, "SC_PAGE_SIZE": 4096}  # fixed: the real count moves meanwhile
    monkeypatch.setattr(train_input.os, "sysconf", pages.__getitem__)
    assert train_input.available_memory(tmp_path / "absent") == 3 * 4096


def _source_with(manifest, tmp_path, reader_calls: list):
    config = toy_config(manifest, tmp_path)
    run = toy_run(manifest, tmp_path)
    clips = [c for c in load_clips(config, run.manifest) if c.split == "train"]
    reader = make_reader(config.audio, run.cache_dir)

    def counting(path):
        reader_calls.append(path)
        return reader(path)

    return training_batches(config, run, clips, counting, CPU)[0], clips


def test_the_packed_corpus_is_written_once_into_the_cache_and_mapped(toy_manifest, tmp_path):
    calls: list = []
    first, clips = _source_with(toy_manifest, tmp_path, calls)
    assert len(calls) == len(clips)  # the first trial decodes every clip
    folder = tmp_path / "cache" / "packed"
    files = [f for f in folder.glob("*.npy") if not f.name.endswith(".lengths.npy")]
    assert len(files) == 1 and len(list(folder.glob("*.lengths.npy"))) == 1
    inode = files[0].stat().st_ino  # a rewrite renames a new file into place
    calls.clear()
    second, _ = _source_with(toy_manifest, tmp_path, calls)  # another trial of the same search
    assert calls == []  # it maps the packed file and reads the lengths: no clip is opened
    assert files[0].stat().st_ino == inode
    assert torch.equal(first.corpus.data, second.corpus.data)
    assert torch.equal(first.corpus.offsets, second.corpus.offsets)
    assert torch.equal(first.corpus.lengths, second.corpus.lengths)
    assert torch.equal(second.corpus.data, torch.from_numpy(np.load(files[0])))


def test_an_edited_clip_is_decoded_again_not_taken_from_the_saved_lengths(toy_manifest, tmp_path):
    calls: list = []
    first, clips = _source_with(toy_manifest, tmp_path, calls)
    edited = Path(clips[0].path)
    wave, rate = sf.read(edited, dtype="float32")
    sf.write(edited, np.concatenate([wave, wave]), rate)  # twice as long
    calls.clear()
    second, _ = _source_with(toy_manifest, tmp_path, calls)
    assert len(calls) == len(clips)  # another set of cache entries: decoded afresh
    assert int(second.corpus.lengths[0]) == 2 * int(first.corpus.lengths[0])


def test_both_paths_give_batches_of_the_same_shape_and_labels(toy_manifest, tmp_path):
    packed, clips = _source(toy_manifest, tmp_path, train_input="device")
    loader, _ = _source(toy_manifest, tmp_path, train_input="loader")
    assert len(packed) == len(loader) and packed.num_batches == loader.num_batches
    (a, la), (b, lb) = next(iter(packed.epoch(1))), next(iter(loader.epoch(1)))
    assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
    assert set(la.tolist()) <= {0, 1} and set(lb.tolist()) <= {0, 1}
    labels = {c.label for c in read_manifest(toy_manifest)}
    assert labels == {"female", "male"}


@pytest.mark.parametrize("mode", ["device", "loader"])
def test_both_paths_learn_the_toy_voices(tmp_path, mode):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=12, utterances=8)
    config = toy_config(manifest, tmp_path, **{"optim.epochs": 6})
    result = train(config, toy_run(manifest, tmp_path, train_input=mode), progress=False)
    assert result.best["val_balanced_accuracy"] == 1.0
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_the_least_recently_used_packed_corpora_are_evicted_beyond_the_limit(tmp_path):
    folder = tmp_path / "packed"
    folder.mkdir()
    paths = []
    for i, name in enumerate(["old", "used", "new"]):
        path = folder / f"{name}.npy"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1000 + i, 1000 + i))
        paths.append(path)
    (folder / "old.lengths.npy").write_bytes(b"x" * 1000)  # small, never evicted
    os.utime(paths[1], (5000, 5000))  # "used" was read after "new" was written
    removed = train_input.evict_packed(folder, limit=2000, keep=paths[2])
    assert removed == [paths[0]]
    assert not paths[0].exists() and paths[1].exists() and paths[2].exists()
    assert train_input.evict_packed(folder, limit=500, keep=paths[2]) == [paths[1]]
    assert paths[2].exists() and (folder / "old.lengths.npy").exists()


def test_a_run_packs_again_when_its_corpus_was_evicted(toy_manifest, tmp_path):
    config = toy_config(toy_manifest, tmp_path)
    run = toy_run(toy_manifest, tmp_path, packed_cache_gb=1e-9)  # keep only the newest
    clips = [c for c in load_clips(config, run.manifest) if c.split == "train"]
    reader = make_reader(config.audio, run.cache_dir)
    first = training_batches(config, run, clips[:-1], reader, CPU)[0]
    second = training_batches(config, run, clips, reader, CPU)[0]
    packed = [f for f in (tmp_path / "cache" / "packed").glob("*.npy") if "lengths" not in f.name]
    assert len(packed) == 1  # the first run's corpus was evicted for the second's
    again = training_batches(config, run, clips[:-1], reader, CPU)[0]
    assert torch.equal(first.corpus.data, again.corpus.data)
    assert len(second.corpus) == len(clips)
