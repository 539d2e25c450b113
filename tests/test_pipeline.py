"""The DVC pipeline: params.yaml validation, each stage as a function, and `dvc repro` itself."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import write_toy_corpus
from vgd.checkpoint import load_checkpoint
from vgd.config import ConfigError, TrainConfig, apply_overrides, save_config
from vgd.manifest import read_manifest
from vgd.params import load_params
from vgd.pipeline import best_epochs, stage_data, stage_evaluate, stage_retrain
from vgd.splits import check_speaker_disjoint

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_in_params_yaml_names_a_config_field():
    params = load_params(ROOT / "params.yaml")
    assert params.data.source == "synth" and params.search.name == "pipeline"
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["data", "search", "retrain", "evaluate"]
    for stage in stages.values():  # every stage names its params and depends on the code
        assert stage["params"] and "vgd" in stage["deps"]


def test_dvc_yaml_takes_every_path_from_params():
    text = (ROOT / "dvc.yaml").read_text()
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    used = set(re.findall(r"\$\{([a-z_]+\.[a-z_]+)\}", text))
    assert {"data.out", "search.results_dir", "search.name", "retrain.out", "evaluate.out"} <= used
    for key in used:  # DVC reads params.yaml itself: each key must be written there
        section, name = key.split(".")
        assert name in raw[section], f"params.yaml lacks {key}, which dvc.yaml uses"
    assert "results/" not in text and "data/pipeline" not in text  # no path typed twice


@pytest.mark.parametrize(
    ("section", "key"),
    [("data", "sorce"), ("retrain", "epoch"), ("split", "seed_"), ("search", "spaec")],
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
    with pytest.raises(ConfigError, match="trainer: unknown key"):
        load_params(path)
    path.write_text("data: {source: folder}\n")
    with pytest.raises(ConfigError, match="data.root: required"):
        load_params(path)
    path.write_text("search: {sampler: grid, name: x}\n")
    with pytest.raises(ConfigError, match="search.sampler"):
        load_params(path)
    path.write_text("search: {name: ''}\n")
    with pytest.raises(ConfigError, match="search.name: required"):
        load_params(path)


def test_the_search_reads_the_data_stages_manifest(tmp_path):
    params = load_params(ROOT / "params.yaml")
    assert params.search_config.manifest == str(params.data.manifest)
    assert params.search_config.space == params.search.space


def _params(tmp_path, manifest, **retrain):
    params = {
        "data": {"source": "csv", "root": str(manifest), "out": str(tmp_path / "data")},
        "split": {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 1},
        "search": {"name": "s", "results_dir": str(tmp_path / "search")},
        "retrain": {"out": str(tmp_path / "model"), **retrain},
        "evaluate": {"out": str(tmp_path / "model" / "eval")},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return load_params(path)


def _search_outputs(params, best_epoch):
    """What the search stage leaves for retrain: best_config.yaml and summary.json."""
    config = apply_overrides(
        TrainConfig(),
        {"model.width": 4, "model.n_blocks": 2, "window.seconds": 1.0, "optim.batch_size": 8},
    )
    out = params.search.results
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "best_config.yaml")
    summary = {"best": {"trial_id": "t1", "best_epoch": best_epoch}}
    (out / "summary.json").write_text(json.dumps(summary))
    return out / "summary.json"


def test_stages_build_retrain_on_train_and_val_then_score_the_test_split(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy", speakers=10, utterances=2, seconds=1.0)
    params = _params(tmp_path, corpus)

    data = stage_data(params, progress=False)
    clips = read_manifest(data.manifest)
    check_speaker_disjoint(clips)
    assert {c.split for c in clips} == {"train", "val", "test"} and not data.failures

    _search_outputs(params, best_epoch=2)
    paths = stage_retrain(params, progress=False)
    history = json.loads(paths["history"].read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]  # the best trial's epochs, no early stop
    assert all("val_loss" not in h for h in history)  # val was folded into training
    loaded = load_checkpoint(paths["model"])
    assert loaded.recipe.data.train_splits == ("train", "val")
    assert not (tmp_path / "model" / "state").exists()

    metrics, report = stage_evaluate(params)
    test_clips = [c for c in clips if c.split == "test"]
    assert metrics["n_clips"] == len(test_clips)
    assert json.loads(report["metrics"].read_text())["balanced_accuracy"] == pytest.approx(
        metrics["balanced_accuracy"]
    )


def test_retrain_epochs_param_overrides_the_search_and_missing_summary_is_clear(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy", speakers=8, utterances=1, seconds=1.0)
    params = _params(tmp_path, corpus, epochs=1)
    stage_data(params, progress=False)
    summary = _search_outputs(params, best_epoch=5)
    history = json.loads(stage_retrain(params, progress=False)["history"].read_text())["epochs"]
    assert len(history) == 1
    assert best_epochs(summary) == 5
    with pytest.raises(ConfigError, match="no search summary"):
        best_epochs(tmp_path / "nope.json")


# ----------------------------------------------------------------------------- dvc repro


SOURCE_DIRS = ("vgd/", "search/", "search_spaces/", "scripts/", "tests/")


def _git(repo: Path, *args: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    return subprocess.run(
        [*git, *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def _fresh_clone(dest: Path) -> Path:
    """This working tree as a clean clone: tracked files plus new, not yet committed sources.

    What a run left behind (dvc.lock, DVC's .gitignore files, results) is not copied.
    """
    tracked = _git(ROOT, "ls-files").split()
    new = [f for f in _git(ROOT, "ls-files", "-o", "--exclude-standard").split()]
    for f in tracked + [f for f in new if f.startswith(SOURCE_DIRS)]:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "clone")
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
    _git(repo, "commit", "-qam", "smoke-sized search")

    first = _dvc(repo, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    metrics = json.loads((repo / "results/pipeline/eval/metrics.json").read_text())
    assert 0 <= metrics["balanced_accuracy"] <= 1 and metrics["n_clips"] > 0
    assert load_checkpoint(repo / "results/pipeline/model.pt").labels == ("female", "male")
    _only_dvc_files_to_commit(repo)
    _no_machine_paths_in_results(repo)

    second = _dvc(repo, "repro")
    assert second.returncode == 0 and "Stage 'search' didn't change" in second.stdout
    assert "Running stage" not in second.stdout
    _a_code_change_marks_the_evaluate_stage(repo)

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


def _only_dvc_files_to_commit(repo: Path) -> None:
    """Everything the pipeline wrote is a DVC output or ignored: git sees only DVC's own files."""
    status = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    changed = {line[3:] for line in status}
    assert "dvc.lock" in changed
    assert all(p == "dvc.lock" or p.endswith(".gitignore") for p in changed), changed
    tracked = set(_git(repo, "ls-files").splitlines())
    outputs = {"results/pipeline/model.pt", "data/pipeline/manifest.csv"}
    assert not tracked & outputs  # DVC's, not git's (the shipped vgd/pretrained/model.pt is git's)


def _no_machine_paths_in_results(repo: Path) -> None:
    """The results DVC versions describe the model and the data, not where the run happened."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    outs = {o["path"] for stage in lock.values() for o in stage.get("outs", [])}
    text_files = [p for p in outs if Path(p).suffix in (".json", ".yaml", ".csv")]
    files = [repo / p for p in text_files if p.startswith("results/")]
    assert any(f.name == "best_config.yaml" for f in files) and len(files) >= 8
    for f in files:
        text = f.read_text()
        assert str(repo) not in text and "/tmp/" not in text, f


def _a_code_change_marks_the_evaluate_stage(repo: Path) -> None:
    """Stages depend on the code as folders: an edit to evaluation code invalidates evaluate."""
    code = repo / "vgd" / "evaluate.py"
    original = code.read_text()
    code.write_text(original + "\n# a change\n")
    status = _dvc(repo, "status", "dvc.yaml")  # the main job (vgd/pretrained has its own)
    assert "evaluate:" in status.stdout and "modified:" in status.stdout, status.stdout
    code.write_text(original)
    assert "up to date" in _dvc(repo, "status", "dvc.yaml").stdout


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
    # A smoke-sized model may be unsure of a clip: with no threshold it must name a gender.
    predict = [*vgd, "predict", str(clip), "--format", "json", "--min-confidence", "0"]
    predicted = subprocess.run(predict, **run)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert json.loads(predicted.stdout)[0]["label"] in ("female", "male")
