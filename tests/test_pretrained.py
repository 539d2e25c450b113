"""The built-in real-voice model: it ships, loads safely, and its card says what it measured."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vgd import pretrained
from vgd.checkpoint import load_checkpoint
from vgd.config import TrainConfig, apply_overrides
from vgd.modelcard import builtin_model_card
from vgd.pretrained import builtin_metrics, builtin_model


def test_the_package_ships_a_model_with_its_card_and_metrics():
    path = builtin_model()
    assert path is not None and path.stat().st_size < 2_000_000
    loaded = load_checkpoint(path)  # weights_only: a checkpoint is data, never code
    assert loaded.labels == ("female", "male")
    metrics = builtin_metrics()
    assert loaded.spec.temperature == metrics["temperature"]  # fitted on the folds' test clips
    assert metrics["cv_folds"] == metrics["cv_seeds"] * metrics["cv_k"] >= 10
    assert set(metrics["corpora"]) == {"librispeech", "speechocean762"}
    assert set(metrics["cv"]["per_corpus"]) == set(metrics["corpora"])
    macro = metrics["cv"]["macro_balanced_accuracy"]
    assert 0.5 < macro["mean"] <= 1.0
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0" in card and "Interspeech 2021" in card
    assert f"| macro over corpora | {macro['mean']:.4f}" in card
    assert "| librispeech | speechocean762 |" in card  # leave one corpus out
    assert (path.parent / "recipe.yaml").is_file()
    assert (
        pretrained.NAME in pretrained.describe() and f"{macro['mean']:.3f}" in pretrained.describe()
    )


def card_metrics() -> dict:
    """What scripts/release_model.py measures, with made-up figures."""
    spread = {"mean": 0.9812, "std": 0.0123, "min": 0.9577, "max": 1.0}
    recall = {"mean": 0.975, "std": 0.02, "min": 0.94, "max": 1.0}
    risk = [
        {"threshold": t, "unknown": u, "accuracy": a, "balanced_accuracy": a}
        for t, u, a in ((0.5, 0.0, 0.97), (0.7, 0.021, 0.985))
    ]
    paired = {"base": "default", "folds": 10}
    paired["macro"] = {"default": 0.98, "pick": 0.99, "mean_diff": 0.01, "spread": 0.004}
    paired["macro"] |= {"wins": 8, "losses": 1}
    return {
        "corpora": {
            "librispeech": {"clips": 251, "speakers": {"female": 125, "male": 126}},
            "speechocean762": {"clips": 1280, "speakers": {"female": 39, "male": 25}},
        },
        "cv": {
            "per_corpus": {
                "librispeech": {
                    "balanced_accuracy": spread,
                    "recall_female": recall,
                    "recall_male": dict(recall, mean=0.99),
                }
            },
            "macro_balanced_accuracy": spread,
        },
        "cv_folds": 10,
        "cv_seeds": 2,
        "cv_k": 5,
        "cv_device": "cpu",
        "cross_corpus": [
            {"train": "speechocean762", "test": "librispeech", "runs": 2}
            | {"balanced_accuracy": 0.91, "recall_female": 0.85, "recall_male": 0.97}
            | {"unknown": 0.08}
        ],
        "default_threshold": 0.7,
        "risk_coverage": {"librispeech": risk},
        "epochs": 17,
        "temperature": 1.437,
        "calibration": {"clips": 1531, "ece_before": 0.0612, "ece_after": 0.0234},
        "recipe": {"chosen": "pick", "why": "pick beats default", "paired": {"pick": paired}},
    }


def test_the_card_reports_the_measured_figures():
    card = builtin_model_card(TrainConfig(), card_metrics())
    assert "| librispeech | 251 | 125 | 126 | LibriSpeech" in card and "CC BY 4.0" in card
    assert "| speechocean762 | 1280 | 39 | 25 |" in card and "Zhang et al." in card
    assert "| librispeech | 0.9812 | 0.0123 | 0.9577 | 0.9750 | 0.9900 | 0.0150 |" in card
    assert "| macro over corpora | 0.9812 | 0.0123 | 0.9577 |" in card
    assert "| speechocean762 | librispeech | 2 | 0.9100 | 0.8500 | 0.9700 | 0.080 |" in card
    assert "| librispeech | 0.7 (default) | 0.021 | 0.9850 | 0.9850 |" in card
    assert "| librispeech | 0.5 (forced choice) | 0.000 | 0.9700 |" in card
    assert "| macro | 0.9800 | 0.9900 | +0.0100 | 0.0040 | 8 | 1 |" in card
    assert "**Shipped: pick.**" in card and "(17)" in card and "(1.437)" in card
    assert "10 speaker-disjoint folds" in card and "2 fold seeds × 5 folds" in card
    assert "1531 out-of-fold" in card and "0.0612 at T = 1" in card
    assert "compared on" not in card  # no schedule recorded: no line about one


def test_the_card_names_the_compared_schedule_and_drops_a_table_of_zeros():
    metrics = card_metrics()
    metrics["recipe"] = {"chosen": "default", "why": "the pick is the default", "paired": {}}
    metrics["recipe"]["schedule"] = {"epochs": 40, "crops_per_clip": 0}
    card = builtin_model_card(TrainConfig(), metrics)
    assert "compared on 40 epochs of every window of each clip" in card
    assert "| macro | 0.9800" not in card and "**Shipped: default.**" in card
    assert "\n\n\n" not in card  # no blank line left where the table was
    assert "the search ranked" not in card  # the search's schedule not recorded: not claimed


@pytest.mark.parametrize(
    "search, says",
    [
        ({"epochs": 40, "crops_per_clip": 0}, "the search ranked its trials on the same schedule."),
        (
            {"epochs": 20, "crops_per_clip": 1},
            "the search ranked its trials on 20 epochs of 1 crop(s) of each clip, the schedule",
        ),
    ],
)
def test_the_card_says_which_schedule_the_search_ranked_on(search, says):
    metrics = card_metrics()
    metrics["recipe"] = {"chosen": "default", "why": "the pick is the default", "paired": {}}
    metrics["recipe"]["schedule"] = {"epochs": 40, "crops_per_clip": 0, "search": search}
    text = builtin_model_card(TrainConfig(), metrics)
    assert says in " ".join(text.split())
    prose = [line for line in text.splitlines() if not line.startswith("|")]  # tables run wide
    assert max(map(len, prose)) <= 100, max(prose, key=len)


def test_the_card_says_which_epoch_the_folds_and_the_final_fit_keep():
    best = builtin_model_card(TrainConfig(), card_metrics())
    assert "median best epoch (17)" in best and "picks its epoch on one" in best
    last = builtin_model_card(
        apply_overrides(TrainConfig(), {"optim.select": "last"}), card_metrics()
    )
    assert "for 17 epochs, as each fold did, and keeps the last." in last
    assert "each keeps its last epoch" in last
    assert "median best epoch" not in last and "picks its epoch" not in last


def synthetic_metrics() -> dict:
    """scripts/release_model.py's synthetic-voice measurement, with made-up figures."""
    draws = [
        {"seed": 7, "clips": 400, "balanced_accuracy": 0.865, "recall_female": 0.92}
        | {"recall_male": 0.81, "roc_auc": 0.9354, "unknown": 0.1325},
        {"seed": 19, "clips": 400, "balanced_accuracy": 0.93, "recall_female": 0.925}
        | {"recall_male": 0.935, "roc_auc": 0.979, "unknown": 0.09},
    ]
    summary = {
        k: {"mean": (draws[0][k] + draws[1][k]) / 2, "std": 0.046}
        for k in ("balanced_accuracy", "recall_female", "recall_male", "roc_auc", "unknown")
    }
    synth = {"speakers": 100, "utterances": 4, "threshold": 0.7, "draws": draws}
    return {"synthetic": synth | {"summary": summary}}


def test_the_card_reports_the_synthetic_voices_it_was_scored_on():
    metrics = card_metrics() | {"elsewhere": synthetic_metrics()}
    card = builtin_model_card(TrainConfig(), metrics)
    assert "## Elsewhere: synthetic voices" in card
    assert "2 seeded draws of 100 speakers × 4 clips" in card
    assert "| 7 | 400 | 0.8650 | 0.9200 | 0.8100 | 0.9354 | 0.133 |" in card
    assert "| mean ± std | | 0.8975 ± 0.0460 | 0.9225 | 0.8725 | 0.9572 | 0.111 |" in card
    limits = " ".join(card.split("## Limits")[1].split("## Recipe")[0].split())
    assert (
        "Synthetic voices are outside it too; on the built-in ones (above) it scores 0.8975 ±"
        in limits
    )
    assert "0.0460 balanced accuracy, against 0.9812 on unheard speakers" in limits
    prose = [line for line in card.splitlines() if not line.startswith("|")]
    assert max(map(len, prose)) <= 100, max(prose, key=len)
    unmeasured = builtin_model_card(TrainConfig(), card_metrics())
    assert "Elsewhere" not in unmeasured
    assert (
        "recordings and synthetic voices are outside its data, and its accuracy there is not"
        in (" ".join(unmeasured.split()))
    )


def test_a_checkout_without_the_model_says_none(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "MODEL_DIR", tmp_path)
    assert builtin_model() is None and builtin_metrics() == {}
    (tmp_path / "metrics.json").write_text(json.dumps({"cv": {}}))
    assert "CV" not in pretrained.describe()


def test_the_shipped_files_are_the_ones_the_pipeline_wrote():
    shipped = Path(__file__).resolve().parents[1] / "results/release/shipped.json"
    recorded = json.loads(shipped.read_text())
    assert set(recorded) == {"model.pt", "recipe.yaml", "metrics.json", "MODEL_CARD.md"}
    for name, digest in recorded.items():
        assert hashlib.sha256((pretrained.MODEL_DIR / name).read_bytes()).hexdigest() == digest


def test_the_card_credits_a_speaker_encoder_only_when_the_model_has_one():
    plain = builtin_model_card(TrainConfig(), card_metrics())
    assert "speaker encoder" not in plain and "Resemblyzer" not in plain
    with_encoder = builtin_model_card(
        apply_overrides(TrainConfig(), {"model.encoder": "ge2e"}), card_metrics()
    )
    assert "GE2E encoder of Resemblyzer 0.1.4" in with_encoder
    assert "SPEAKER_ENCODER_LICENSE" in with_encoder
    prose = [line for line in with_encoder.splitlines() if not line.startswith("|")]
    assert max(map(len, prose)) <= 100, max(prose, key=len)
