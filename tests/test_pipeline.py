"""The DVC pipeline: params.yaml validation, each stage as a function, and `dvc repro` itself."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import write_toy_corpus
from search.config import SearchConfig
from vgd.checkpoint import load_checkpoint
from vgd.config import ConfigError, TrainConfig, apply_overrides, from_dict, save_config
from vgd.manifest import read_manifest
from vgd.pipeline import best_epochs, load_params, stage_data, stage_evaluate, stage_retrain
from vgd.splits import check_speaker_disjoint

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_in_params_yaml_names_a_config_field():
    params = load_params(ROOT / "params.yaml")
    search = from_dict(SearchConfig, params.search, "search.")
    assert params.data.source == "synth" and search.name == "pipeline"
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["data", "search", "retrain", "evaluate"]
    for stage in stages.values():  # every stage names its params and the code it runs
        code = [d for d in stage["deps"] if d.endswith(".py") or d == "search"]
        assert stage["params"] and code


@pytest.mark.parametrize(
    ("section", "key"), [("data", "sorce"), ("retrain", "epoch"), ("split", "seed_")]
)
def test_a_misspelt_param_is_rejected_naming_it(tmp_path, section, key):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw[section][key] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: unknown key"):
        load_params(tmp_path / "params.yaml")


def test_unknown_section_and_bad_values_are_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("trainer: {}\n")
    with pytest.raises(ConfigError, match="unknown section 'trainer'"):
        load_params(path)
    path.write_text("data: {source: folder}\n")
    with pytest.raises(ConfigError, match="data.root: required"):
        load_params(path)


def _params(tmp_path, manifest, **retrain):
    params = {
        "data": {"source": "csv", "root": str(manifest), "out": str(tmp_path / "data")},
        "split": {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 1},
        "retrain": {"out": str(tmp_path / "model"), **retrain},
        "evaluate": {"out": str(tmp_path / "model" / "eval")},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return load_params(path)


def _search_outputs(tmp_path, best_epoch):
    config = apply_overrides(
        TrainConfig(),
        {"model.width": 4, "model.n_blocks": 2, "data.crop_s": 1.0, "optim.batch_size": 8},
    )
    save_config(config, tmp_path / "best_config.yaml")
    summary = {"best": {"trial_id": "t1", "best_epoch": best_epoch}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path / "best_config.yaml", tmp_path / "summary.json"


def test_stages_build_retrain_on_train_and_val_then_score_the_test_split(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy", speakers=10, utterances=2, seconds=1.0)
    params = _params(tmp_path, corpus)

    data = stage_data(params, progress=False)
    clips = read_manifest(data.manifest)
    check_speaker_disjoint(clips)
    assert {c.split for c in clips} == {"train", "val", "test"} and not data.failures

    best_config, summary = _search_outputs(tmp_path, best_epoch=2)
    paths = stage_retrain(params, best_config, summary, progress=False)
    history = json.loads(paths["history"].read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]  # the best trial's epochs, no early stop
    assert all("val_loss" not in h for h in history)  # val was folded into training
    loaded = load_checkpoint(paths["model"])
    assert loaded.config.data.train_splits == ("train", "val")
    assert not (tmp_path / "model" / "state").exists()

    metrics, report = stage_evaluate(params, paths["model"])
    test_clips = [c for c in clips if c.split == "test"]
    assert metrics["n_clips"] == len(test_clips)
    assert json.loads(report["metrics"].read_text())["balanced_accuracy"] == pytest.approx(
        metrics["balanced_accuracy"]
    )


def test_retrain_epochs_param_overrides_the_search_and_missing_summary_is_clear(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy", speakers=8, utterances=1, seconds=1.0)
    params = _params(tmp_path, corpus, epochs=1)
    stage_data(params, progress=False)
    best_config, summary = _search_outputs(tmp_path, best_epoch=5)
    history = json.loads(stage_retrain(params, best_config, summary, False)["history"].read_text())[
        "epochs"
    ]
    assert len(history) == 1
    assert best_epochs(summary) == 5
    with pytest.raises(ConfigError, match="no search summary"):
        best_epochs(tmp_path / "nope.json")


# ----------------------------------------------------------------------------- dvc repro


def _fresh_clone(dest: Path) -> Path:
    """The tracked files of this working tree, as a new git repository (a clean clone)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=dest, check=True)
    return dest


def _dvc(repo: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.slow
def test_dvc_repro_runs_the_pipeline_then_has_nothing_to_do(tmp_path):
    repo = _fresh_clone(tmp_path / "clone")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["search"]["space"] = "smoke"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    first = _dvc(repo, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    metrics = json.loads((repo / "results/pipeline/eval/metrics.json").read_text())
    assert 0 <= metrics["balanced_accuracy"] <= 1 and metrics["n_clips"] > 0
    assert load_checkpoint(repo / "results/pipeline/model.pt").labels == ("female", "male")
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True).stdout
    assert "model.pt" not in tracked and "manifest.csv" not in tracked  # DVC's, not git's

    second = _dvc(repo, "repro")
    assert second.returncode == 0 and "Stage 'search' didn't change" in second.stdout
    assert "Running stage" not in second.stdout

    params["evaluate"]["batch_size"] = 32  # only evaluate depends on it
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = _dvc(repo, "repro")
    assert third.returncode == 0, third.stderr[-3000:]
    assert "Running stage 'evaluate'" in third.stdout
    assert "Running stage 'search'" not in third.stdout
    again = json.loads((repo / "results/pipeline/eval/metrics.json").read_text())
    assert again["balanced_accuracy"] == metrics["balanced_accuracy"]

    shown = _dvc(repo, "metrics", "show")
    assert shown.returncode == 0 and "balanced_accuracy" in shown.stdout

    exp = _dvc(repo, "exp", "run", "-S", "evaluate.batch_size=16")
    assert exp.returncode == 0, exp.stderr[-3000:]
    assert "Running stage 'evaluate'" in exp.stdout and "Running stage 'search'" not in exp.stdout

    _push_then_pull(repo, tmp_path / "remote")
    _promote_then_predict(repo)


def _push_then_pull(repo: Path, remote: Path) -> None:
    """A local DVC remote round-trips the model and the data."""
    model = repo / "results/pipeline/model.pt"
    before = model.read_bytes()
    assert _dvc(repo, "remote", "add", "-d", "local", str(remote)).returncode == 0
    pushed = _dvc(repo, "push")
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data" / "pipeline")
    model.unlink()
    pulled = _dvc(repo, "pull")
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert model.read_bytes() == before and (repo / "data/pipeline/manifest.csv").exists()


def _promote_then_predict(repo: Path) -> None:
    """The pipeline's model becomes the default for `vgd predict`."""
    vgd = [sys.executable, "-m", "vgd.cli"]
    run = {"cwd": repo, "capture_output": True, "text": True}
    promoted = subprocess.run([*vgd, "promote"], **run)
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    card = (repo / "models/v0001/MODEL_CARD.md").read_text()
    assert "recall" in card.lower() and "children" in card.lower()
    clip = next((repo / "data/pipeline/synth/female").rglob("*.flac"))
    predicted = subprocess.run([*vgd, "predict", str(clip), "--format", "json"], **run)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert json.loads(predicted.stdout)[0]["label"] in ("female", "male")
