"""The model registry: promotion rules, rollback, provenance, model card and the CLI around it."""

import hashlib
import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from conftest import toy_manifest_of, voice
from vgd import provenance
from vgd.adapt import adapt
from vgd.audio import save_audio
from vgd.checkpoint import load_checkpoint, save_checkpoint, torch_load, torch_save
from vgd.cli import main
from vgd.evaluate import evaluate
from vgd.manifest import read_manifest
from vgd.provenance import find_data_version, git_commit, machine, machine_name
from vgd.registry import PromotionError, Registry, RegistryError
from vgd.train import load_clips


@pytest.fixture(scope="module")
def real_metrics(toy_model):
    """What `vgd evaluate` reports for the toy model on its test split."""
    loaded = load_checkpoint(toy_model)
    clips = [c for c in load_clips(loaded.recipe, toy_manifest_of(toy_model)) if c.split == "test"]
    return evaluate(loaded, clips, batch_size=16).metrics


def make_run(toy_model, folder: Path, metrics: dict | None = None, tag: str = "") -> Path:
    """A copy of the toy checkpoint in ``folder`` (bytes differ per tag), metrics in eval/."""
    data = torch_load(toy_model)
    data["metrics"] = {**data["metrics"], "tag": tag}
    path = torch_save(data, folder / "model.pt")
    if metrics is not None:
        (folder / "eval").mkdir(parents=True, exist_ok=True)
        (folder / "eval" / "metrics.json").write_text(json.dumps(metrics))
    return path


def scored(value: float) -> dict:
    return {"accuracy": value, "balanced_accuracy": value, "labels": ["female", "male"]}


@pytest.fixture
def registry(tmp_path, toy_model):
    """An empty registry beside a copy of the manifest the toy model was trained on."""
    shutil.copy(toy_manifest_of(toy_model), tmp_path / "manifest.csv")
    return Registry(tmp_path / "models")


def promote(registry, checkpoint, manifest="manifest.csv", **kwargs):
    return registry.promote(checkpoint, workdir=registry.root.parent, manifest=manifest, **kwargs)


def test_promote_writes_version_card_and_provenance(toy_model, real_metrics, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run", real_metrics)
    v = promote(registry, ckpt)
    assert v.name == "v0001" and registry.current() == registry.root / "v0001" / "model.pt"
    files = {p.name for p in (registry.root / "v0001").iterdir()}
    assert files == {"model.pt", "metrics.json", "MODEL_CARD.md", "info.json"}
    index = json.loads((registry.root / "registry.json").read_text())
    assert index["current"] == "v0001" and index["history"] == ["v0001"]
    info = index["versions"]["v0001"]
    assert info["score"] == pytest.approx(real_metrics["balanced_accuracy"])
    manifest = tmp_path / "manifest.csv"
    assert info["data_version"] == hashlib.md5(manifest.read_bytes()).hexdigest()
    assert info["data_version_source"] == "file md5" and info["git_commit"] == "unknown"
    # the registry's copy is the same checkpoint and opens without unpickling code
    assert registry.current().read_bytes() == ckpt.read_bytes()
    assert "state_dict" in torch.load(registry.current(), weights_only=True)
    assert load_checkpoint(registry.current()).labels == ("female", "male")

    card = (registry.root / "v0001" / "MODEL_CARD.md").read_text()
    for heading in ("## Data", "## Metrics", "## Config", "## Intended use", "## Limits"):
        assert heading in card
    female = real_metrics["per_class"]["female"]["recall"]
    assert re.search(rf"\| female \| [\d.]+ \| {female:.4f} \|", card)  # per-gender recall
    assert "speaker-level accuracy" in card and "Children's voices" in card
    assert "neither female nor male" in card and "Recording conditions" in card
    assert "| test (test) | male |" in card and "| toy |" in card  # data per part and corpus
    assert f"Manifest `{tmp_path / 'manifest.csv'}`" in card and info["data_version"] in card
    assert "Synthetic training data" not in card  # only for the synth corpus
    assert "adapted" not in card  # only for a model vgd adapt fitted a bias to


def test_the_card_of_an_adapted_model_says_so(toy_model, real_metrics, registry, tmp_path):
    loaded = load_checkpoint(toy_model)
    fitted = adapt(loaded, read_manifest(toy_manifest_of(toy_model)))
    ckpt = save_checkpoint(
        tmp_path / "run" / "model.pt", loaded.model, loaded.recipe, loaded.metrics
    )
    (tmp_path / "run" / "eval").mkdir()
    (tmp_path / "run" / "eval" / "metrics.json").write_text(json.dumps(real_metrics))
    promote(registry, ckpt)
    card = (registry.root / "v0001" / "MODEL_CARD.md").read_text()
    row = (
        f"| adapted (vgd adapt) | `bias {fitted.bias:+.2f} on male, fitted on 72 clips of 6 female"
    )
    assert row + " and 6 male speakers` |" in card


def test_refuses_without_metrics(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run")
    with pytest.raises(PromotionError, match="no evaluation metrics"):
        promote(registry, ckpt)
    with pytest.raises(PromotionError, match="no evaluation metrics"):
        promote(registry, ckpt, force=True)  # nothing to record a score from
    assert not (registry.root / "registry.json").exists() and registry.current() is None


def test_refuses_a_missing_or_null_metric(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run", {"accuracy": 0.9, "roc_auc": None})
    with pytest.raises(PromotionError, match="no metric 'balanced_accuracy'.*accuracy"):
        promote(registry, ckpt)
    with pytest.raises(PromotionError, match="'roc_auc' is None"):
        promote(registry, ckpt, metric="roc_auc")
    assert promote(registry, ckpt, metric="accuracy").score == 0.9


def test_refuses_metrics_of_another_label_order(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run", {**scored(0.9), "labels": ["male", "female"]})
    with pytest.raises(PromotionError, match="labels"):
        promote(registry, ckpt)


def test_worse_is_refused_unless_forced_and_better_is_accepted(toy_model, registry, tmp_path):
    promote(registry, make_run(toy_model, tmp_path / "a", scored(0.8), "a"))
    worse = make_run(toy_model, tmp_path / "b", scored(0.7), "b")
    with pytest.raises(PromotionError, match=r"0\.7000 is worse than current v0001's 0\.8000"):
        promote(registry, worse)
    assert registry.current_version().name == "v0001" and not (registry.root / "v0002").exists()
    forced = promote(registry, worse, force=True)
    assert forced.name == "v0002" and forced.info["forced"]
    assert "promoted with --force" in (forced.path / "MODEL_CARD.md").read_text()
    better = promote(registry, make_run(toy_model, tmp_path / "c", scored(0.75), "c"))
    assert better.name == "v0003" and registry.current() == better.model
    with pytest.raises(PromotionError, match="already the current model"):
        promote(registry, tmp_path / "c" / "model.pt")


def test_metrics_given_explicitly_and_beside_the_checkpoint(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run")
    (tmp_path / "m.json").write_text(json.dumps(scored(0.6)))
    assert promote(registry, ckpt, metrics_path=tmp_path / "m.json").score == 0.6
    ckpt = make_run(toy_model, tmp_path / "run2", tag="2")
    (tmp_path / "run2" / "metrics.json").write_text(json.dumps(scored(0.65)))
    assert promote(registry, ckpt).info["source_metrics"] == str(tmp_path / "run2/metrics.json")


def test_rollback_restores_the_previous_version(toy_model, registry, tmp_path):
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback()
    promote(registry, make_run(toy_model, tmp_path / "a", scored(0.8), "a"))
    with pytest.raises(RegistryError, match="only v0001"):
        registry.rollback()
    promote(registry, make_run(toy_model, tmp_path / "b", scored(0.9), "b"))
    restored = registry.rollback()
    assert restored.name == "v0001" and registry.current() == registry.root / "v0001/model.pt"
    assert registry.versions()[1].info["rolled_back"]  # kept on disk, marked
    with pytest.raises(RegistryError):
        registry.rollback()
    # the next promotion compares with the restored version and takes a fresh number
    assert promote(registry, make_run(toy_model, tmp_path / "c", scored(0.85), "c")).name == "v0003"


def test_interrupted_promotion_leaves_the_registry_as_it_was(
    toy_model, registry, tmp_path, monkeypatch
):
    promote(registry, make_run(toy_model, tmp_path / "a", scored(0.8), "a"))
    before = (registry.root / "registry.json").read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("vgd.registry.model_card", crash)
    ckpt = make_run(toy_model, tmp_path / "b", scored(0.9), "b")
    with pytest.raises(KeyboardInterrupt):
        promote(registry, ckpt)
    assert (registry.root / "registry.json").read_bytes() == before
    assert sorted(p.name for p in registry.root.iterdir()) == ["registry.json", "v0001"]
    monkeypatch.undo()
    (registry.root / "v0002").mkdir()  # as if killed between the rename and the index write
    assert promote(registry, ckpt).name == "v0003"


class _Exploit:
    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if unpickled


@pytest.mark.parametrize("kind", ["random bytes", "pickle with code", "foreign tensor dict"])
def test_refuses_files_that_are_not_vgd_checkpoints(kind, registry, tmp_path):
    bad = tmp_path / "run" / "model.pt"
    bad.parent.mkdir()
    marker = tmp_path / "code-ran"
    if kind == "random bytes":
        bad.write_bytes(bytes(range(256)) * 8)
    elif kind == "pickle with code":
        obj = _Exploit()
        obj.marker = str(marker)
        torch.save({"format": "vgd-checkpoint/1", "payload": obj}, bad)
    else:
        torch.save({"weight": torch.zeros(3)}, bad)
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(scored(0.99)))
    with pytest.raises(PromotionError, match="refused: .*model.pt"):
        promote(registry, bad)
    assert not marker.exists() and registry.current() is None


def test_data_version_from_dvc_lock_or_file_md5(tmp_path):
    manifest = tmp_path / "data" / "pipeline" / "manifest.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("path,label,speaker\na.wav,female,s1\n")
    md5 = hashlib.md5(manifest.read_bytes()).hexdigest()
    assert find_data_version(manifest, tmp_path) == (md5, "file md5")

    def lock(outs, where=tmp_path):
        stages = {"data": {"cmd": "vgd data", "outs": outs}, "train": {"deps": []}}
        (where / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))

    lock([{"path": "data/pipeline/manifest.csv", "hash": "md5", "md5": md5, "size": 33}])
    assert find_data_version(manifest, tmp_path) == (md5, "dvc.lock")
    lock([{"path": "data/pipeline/manifest.csv", "md5": "0" * 32}])
    assert find_data_version(manifest, tmp_path) == (md5, "file md5 (dvc.lock out of date)")
    lock([{"path": "data/pipeline", "md5": "abc123.dir", "nfiles": 3}])
    assert find_data_version(manifest, tmp_path) == ("abc123.dir", "dvc.lock (data/pipeline)")
    # from a subfolder of the repository, the lock at its root (beside .dvc/) is found
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "sub").mkdir()
    assert find_data_version(manifest, tmp_path / "sub")[0] == "abc123.dir"


def test_promotion_records_the_dvc_hash(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run", scored(0.9))
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.parent.mkdir()
    shutil.copy(tmp_path / "manifest.csv", manifest)
    md5 = hashlib.md5(manifest.read_bytes()).hexdigest()
    outs = [{"path": "data/manifest.csv", "md5": md5}]
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {"data": {"outs": outs}}}))
    v = promote(registry, ckpt, manifest="data/manifest.csv")  # relative to the workdir
    assert (v.info["data_version"], v.info["data_version_source"]) == (md5, "dvc.lock")


def test_missing_manifest_is_refused(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run", scored(0.9))
    with pytest.raises(PromotionError, match="no such manifest.*--manifest"):
        promote(registry, ckpt, manifest=tmp_path / "gone.csv")


def test_git_commit(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    assert re.fullmatch(r"[0-9a-f]{40}", git_commit(tmp_path))
    (tmp_path / "outputs").mkdir()  # what a run writes beside the code, untracked
    (tmp_path / "outputs" / "metrics.json").write_text("{}")
    assert re.fullmatch(r"[0-9a-f]{40}", git_commit(tmp_path))
    (tmp_path / "a.txt").write_text("b")
    assert re.fullmatch(r"[0-9a-f]{40}-dirty", git_commit(tmp_path))


def test_corrupt_registry_is_reported(registry):
    registry.root.mkdir()
    (registry.root / "registry.json").write_text("{not json")
    with pytest.raises(RegistryError, match="registry.json: not a vgd model registry"):
        registry.current()


# ----------------------------------------------------------------------------- CLI


def run(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_promote_models_and_predict_with_the_promoted_model(
    toy_model, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VGD_MODELS", str(tmp_path / "reg"))
    save_audio(tmp_path / "in" / "low.wav", voice(95, 3.0, seed=5), 16000)
    # Nothing promoted: the built-in real-voice model answers, and says so on stderr.
    # (--no-vad: the toy voice is a harmonic tone, which the VAD rightly calls nonspeech)
    code, out, err = run(capsys, "predict", tmp_path / "in", "--format", "json", "--no-vad")
    assert code == 0 and "using the built-in model builtin:real-voices" in err
    row = json.loads(out)[0]
    assert row["label"] in ("female", "male", "unknown") and set(row["probs"]) == {"female", "male"}
    code, out, _ = run(capsys, "models")
    assert code == 0 and "no models" in out and "* built-in  builtin:real-voices" in out
    with monkeypatch.context() as m:
        m.setattr("vgd.pretrained.MODEL_DIR", tmp_path / "nothing")
        code, _, err = run(capsys, "predict", tmp_path / "in")
        assert code == 2 and "no built-in model in this checkout; pass --model" in err

    m = ["--manifest", toy_manifest_of(toy_model)]
    code, out, _ = run(capsys, "promote", make_run(toy_model, tmp_path / "a", scored(0.8), "a"), *m)
    assert code == 0 and "as v0001" in out and (tmp_path / "reg/v0001/MODEL_CARD.md").exists()
    code, _, err = run(capsys, "promote", make_run(toy_model, tmp_path / "b", scored(0.7), "b"), *m)
    assert code == 2 and "worse than current v0001" in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "promote", tmp_path / "b" / "model.pt", "--force", *m)
    assert code == 0 and "as v0002" in out
    code, out, _ = run(capsys, "models")
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith("  v0001") and lines[2].startswith("* v0002")
    assert "balanced_accuracy 0.7000" in lines[2] and lines[3].startswith("  built-in")

    code, out, _ = run(capsys, "predict", tmp_path / "in", "--format", "json", "--no-vad")
    assert code == 0 and json.loads(out)[0]["label"] == "male"
    code, out, _ = run(capsys, "promote", "--rollback")
    assert code == 0 and "current model is v0001" in out
    code, out, _ = run(capsys, "models", "--registry", tmp_path / "reg")
    assert "* v0001" in out and "(rolled back)" in out


def test_cli_promote_failures_are_one_line(toy_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reg = tmp_path / "reg"
    code, _, err = run(capsys, "promote", "--registry", reg)  # no pipeline output here
    assert code == 2 and "results/pipeline/model.pt: no pipeline output" in err
    ckpt = make_run(toy_model, tmp_path / "a")
    code, _, err = run(capsys, "promote", ckpt, "--registry", reg)
    assert code == 2 and "no evaluation metrics" in err and len(err.splitlines()) == 1
    scored_run = make_run(toy_model, tmp_path / "b", scored(0.8))
    code, _, err = run(capsys, "promote", scored_run, "--registry", reg)  # no --manifest
    assert code == 2 and "pass it with --manifest" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "promote", "--rollback", "--registry", reg)
    assert code == 2 and "no previous version" in err
    code, _, err = run(capsys, "promote", ckpt, "--rollback", "--registry", reg)
    assert code == 2 and "--rollback takes no checkpoint" in err


def test_cli_promotes_the_pipeline_output_by_default(toy_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(toy_model, tmp_path / "results" / "pipeline", scored(0.9))  # metrics in eval/
    (tmp_path / "data" / "pipeline").mkdir(parents=True)
    shutil.copy(toy_manifest_of(toy_model), tmp_path / "data" / "pipeline" / "manifest.csv")
    code, out, _ = run(capsys, "promote")
    assert code == 0 and (tmp_path / "models" / "v0001" / "model.pt").exists()


def test_a_manifest_is_required_since_checkpoints_hold_no_paths(toy_model, registry, tmp_path):
    ckpt = make_run(toy_model, tmp_path / "run", scored(0.8))
    with pytest.raises(PromotionError, match="--manifest"):
        promote(registry, ckpt, manifest=None)


def test_the_machine_names_its_cpu_and_torch_even_without_proc_cpuinfo(monkeypatch, tmp_path):
    here = machine()
    assert here["torch"] == torch.__version__ and all(here.values())
    assert machine_name(here).endswith(f"({here['capability']}, torch {torch.__version__})")
    monkeypatch.setattr(provenance, "Path", lambda _: tmp_path / "no-cpuinfo")
    assert machine()["cpu"] == (platform.processor() or platform.machine() or "unknown")
