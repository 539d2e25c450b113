"""Where a search keeps its trials and how it ships its audio, checked without starting Ray."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_toy_corpus
from search import shipping
from search.run import main
from search.storage import trial_storage
from vgd.checkpoint import load_checkpoint
from vgd.config import AudioConfig, ConfigError
from vgd.dataset import make_reader
from vgd.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]


def test_a_corpus_larger_than_the_object_store_share_is_refused_with_both_sizes(
    tmp_path, monkeypatch
):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=4, utterances=2)
    clips = read_manifest(manifest)  # 8 clips of 1.5 s: 8 * 24,000 samples * 4 bytes
    monkeypatch.setattr(shipping, "object_store_budget", lambda: (100_000, 200_000))
    with pytest.raises(ConfigError) as e:
        shipping.ship(clips, make_reader(AudioConfig()))
    message = str(e.value)
    assert re.search(r"audio is 0\.7 MiB, .*: 0\.1 MiB \(50% of the smallest node's", message)
    assert "store of 0.2 MiB" in message
    assert "--object-store-memory" in message and "--trial-data paths" in message


def test_a_storage_uri_pyarrow_cannot_open_is_a_one_line_error(tmp_path, capsys):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=4, utterances=2)
    argv = ["--manifest", str(manifest), "--results-dir", str(tmp_path / "results")]
    assert main([*argv, "--storage-path", "nosuch://bucket/vgd"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("search: error: --storage-path nosuch://bucket/vgd: pyarrow cannot")
    assert "\n" not in err


def test_a_file_uri_storage_is_listed_copied_and_removed_through_pyarrow(tmp_path):
    remote, local = tmp_path / "bucket", tmp_path / "results" / "ray"
    (remote / "tune" / "trial_1").mkdir(parents=True)
    (remote / "tune" / "trial_1" / "result.json").write_text("{}\n")
    storage = trial_storage(f"file://{remote}", local)
    assert storage.uri and storage.exists("tune") and not storage.exists("other")
    assert storage.restore_path("tune") == f"file://{remote}/tune"
    assert storage.tune_kwargs(cluster=True) == {"storage_path": f"file://{remote}"}
    storage.fetch("tune")
    assert (local / "tune" / "trial_1" / "result.json").read_text() == "{}\n"
    storage.remove("tune")
    assert not (remote / "tune").exists() and not (local / "tune").exists()


def test_a_path_storage_is_the_driver_folder_and_needs_no_copy(tmp_path):
    storage = trial_storage(str(tmp_path / "ray"), tmp_path / "unused")
    assert storage.uri == "" and storage.local == tmp_path / "ray"
    assert storage.tune_kwargs(cluster=False) == {"storage_path": str(tmp_path / "ray")}
    storage.fetch("tune")  # nothing to copy
    assert not (tmp_path / "ray").exists()


@pytest.mark.slow
def test_a_search_with_file_uri_storage_brings_every_result_to_the_driver(tmp_path, capsys):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=12, utterances=4)
    bucket, results = tmp_path / "bucket", tmp_path / "results"
    argv = ["--space", "smoke", "--manifest", str(manifest), "--results-dir", str(results)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--storage-path", f"file://{bucket}"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "search" / "run.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = results / "smoke"
    assert len(list((bucket / "tune").rglob("checkpoint_*/state.pt"))) == 4  # written there
    assert len(list((out / "ray").rglob("events.out.tfevents.*"))) == 4  # and copied back
    assert load_checkpoint(out / "best_model.pt").recipe is not None
    assert (out / "trials.csv").read_text().count("\n") == 5
    assert main(argv) == 2  # the same name again: refused, naming the URI
    assert (
        f"file://{bucket}/tune: a search named 'smoke' is already here" in capsys.readouterr().err
    )


def test_the_search_trains_its_trials_in_the_layout_and_precision_it_is_given(tmp_path):
    from search.harness import base_config, prepare_data
    from vgd.params import SearchConfig

    corpus = write_toy_corpus(tmp_path / "corpus", speakers=12, utterances=1)
    cfg = SearchConfig(
        manifest=str(corpus),
        results_dir=str(tmp_path / "results"),
        cache_dir="",
        trial_data="paths",
        memory_format="channels_last",
        precision="bf16",
    )
    _, base = base_config(cfg, cfg.space)
    run = prepare_data(base, cfg).run
    assert (run.memory_format, run.precision) == ("channels_last", "bf16")
    with pytest.raises(ConfigError, match="search.memory_format"):
        SearchConfig(memory_format="nhwc")
    with pytest.raises(ConfigError, match="search.precision: must be one of auto, fp32"):
        SearchConfig(precision="half")
