"""Search spaces: typed, conditional, validated against the config; every shipped space loads."""

import ast
from pathlib import Path

import optuna
import pytest
import yaml

from search.space import SPACES_DIR, available_spaces, load_space, trial_overrides
from vgd.config import ConfigError, TrainConfig, apply_overrides

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_shipped_spaces_load_and_cover_the_issue():
    assert {"smoke", "narrow", "wide"} <= set(available_spaces())
    for name in available_spaces():
        space = load_space(name)
        assert space.params and space.metric and space.num_samples >= 1
    wide = {p.path for p in load_space("wide").params}
    for path in [
        "model.n_blocks",
        "model.width",
        "model.kernel_size",
        "model.dropout",
        "model.pooling",
        "features.n_mels",
        "features.win_ms",
        "features.hop_ms",
        "features.normalize",
        "optim.lr",
        "optim.weight_decay",
        "optim.batch_size",
        "optim.epochs",
        "optim.patience",
        "augment.noise_prob",
    ]:
        assert path in wide, path
    assert (
        load_space("wide")
        .params[[p.path for p in load_space("wide").params].index("optim.lr")]
        .kind
        == "loguniform"
    )
    assert any(p.when for p in load_space("wide").params)


def test_space_by_path(tmp_path):
    path = write(tmp_path, {"parameters": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}})
    assert load_space(str(path)).name == "s"


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {"parameters": {"optim.lrr": {"uniform": [0.1, 0.2]}}},
            "parameters.optim.lrr: names no config field",
        ),
        (
            {"parameters": {"optim.lr": {"uniform": [0.2, 0.1]}}},
            "optim.lr.uniform: low must be below high",
        ),
        ({"parameters": {"optim.lr": {"loguniform": [0, 0.1]}}}, "a log scale needs low > 0"),
        (
            {"parameters": {"optim.lr": {"uniform": [1e-3, 1e-2], "loguniform": [1e-3, 1e-2]}}},
            "exactly one",
        ),
        ({"parameters": {"optim.lr": {"gaussian": [1, 2]}}}, "optim.lr.gaussian: unknown key"),
        ({"parameters": {"model.width": {"int": [4, 8.5]}}}, "bounds must be integers"),
        ({"parameters": {"model.pooling": {"categorical": []}}}, "non-empty list"),
        (
            {"parameters": {"model.pooling": {"categorical": ["avg", "median"]}}},
            "value 'median' is invalid",
        ),
        ({"parameters": {"model.dropout": {"uniform": [0.0, 1.5]}}}, "value 1.5 is invalid"),
        ({"metric": "accuracy", "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}}}, "metric"),
        (
            {
                "metric": "val_loss",
                "mode": "max",
                "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}},
            },
            "mode",
        ),
        (
            {"budget": {"trials": 3}, "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}}},
            "budget.trials: unknown key",
        ),
        (
            {"base": {"optim.nope": 1}, "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}}},
            "base.optim.nope",
        ),
        (
            {
                "parameters": {
                    "augment.freq_mask_width": {"int": [4, 8], "when": {"augment.freq_masks": [1]}}
                }
            },
            "must name a parameter listed before it",
        ),
        ({"parameters": {"optim.lr": {"uniform": [0.1, 0.2]}}}, "lies outside the space"),
        ({"parameters": {}}, "at least one parameter"),
        (
            {"colour": "red", "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}}},
            "colour: unknown key",
        ),
    ],
)
def test_malformed_spaces_are_rejected_naming_the_key(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_space(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_space_lists_the_available_ones():
    with pytest.raises(ConfigError, match="no such search space.*smoke"):
        load_space("nonexistent")


def test_conditional_parameters_appear_only_when_their_condition_holds(tmp_path):
    path = write(
        tmp_path,
        {
            "parameters": {
                "augment.freq_masks": {"int": [0, 2]},
                "augment.freq_mask_width": {"int": [4, 16], "when": {"augment.freq_masks": [1, 2]}},
            }
        },
    )
    space = load_space(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        space.sample(trial)
        has_width = "augment.freq_mask_width" in trial.params
        assert has_width == (trial.params["augment.freq_masks"] > 0)
        seen.add(has_width)
        study.tell(trial, 0.5)
    assert seen == {True, False}


def test_default_point_is_the_base_config(tmp_path):
    path = write(
        tmp_path,
        {
            "base": {"optim.lr": 2e-3},
            "parameters": {
                "optim.lr": {"loguniform": [1e-4, 1e-2]},
                "model.width": {"categorical": [8, 12, 16]},
                "augment.time_masks": {"int": [0, 2]},
                "augment.time_mask_width": {
                    "int": [10, 40],
                    "when": {"augment.time_masks": [1, 2]},
                },
            },
        },
    )
    space = load_space(path)
    base = space.base_config(TrainConfig())
    point = space.default_point(base)
    assert point["optim.lr"] == 2e-3 and point["model.width"] == TrainConfig().model.width
    assert point["augment.time_mask_width"] == TrainConfig().augment.time_mask_width
    assert apply_overrides(base, trial_overrides(space, point)) == base


def test_sampled_values_build_valid_configs():
    space = load_space("wide")
    base = space.base_config(TrainConfig())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        space.sample(trial)
        apply_overrides(base, trial_overrides(space, trial.params))  # raises if invalid
        study.tell(trial, 0.0)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_ray_and_optuna_are_imported_only_under_search():
    for path in (ROOT / "vgd").rglob("*.py"):
        assert not {"ray", "optuna"} & _imports(path), path


def test_spaces_dir_is_the_projects():
    assert SPACES_DIR == ROOT / "search_spaces"


def test_top_k_table_shows_each_corpus_with_its_spread():
    from search.results import top_k_table
    from search.space import load_space
    from search.trials import TrialRow

    space = load_space("two_corpus")
    metrics = {
        "val_macro_balanced_accuracy_std": 0.02,
        "val_balanced_accuracy@librispeech": 0.9667,
        "val_balanced_accuracy@librispeech_std": 0.0312,
        "val_balanced_accuracy@speechocean762": 0.976,
    }
    params = {"optim.lr": 0.001234567, "features.f_max": 5813.27, "features.n_mels": 53}
    row = TrialRow("abc", "completed", params, 0.97, metrics=metrics, epochs=20)
    table = top_k_table([row], space, 5)
    assert "optim.lr=0.00123, features.f_max=5813, features.n_mels=53" in table  # not 5.81e+03
    assert "0.9700 ± 0.0200" in table
    assert "librispeech: 0.9667 ± 0.0312" in table
    assert "speechocean762: 0.9760\n" in table + "\n"


@pytest.mark.parametrize("margin", [-0.01, 1.0, "0.01", True])
def test_a_scheduler_margin_outside_0_to_1_is_refused(tmp_path, margin):
    path = write(
        tmp_path,
        {"scheduler": {"margin": margin}, "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}}},
    )
    with pytest.raises(ConfigError, match=r"scheduler.margin: expected a number in \[0, 1\)"):
        load_space(path)


def test_a_last_epochs_metric_ranks_where_the_trial_ended(tmp_path):
    data = {"scheduler": {"margin": 0.01}, "parameters": {"optim.lr": {"uniform": [1e-3, 1e-2]}}}
    space = load_space(write(tmp_path, {"metric": "last3_val_balanced_accuracy", **data}))
    assert (space.margin, space.mode, space.ranks_last_epoch) == (0.01, "max", True)
    plain = load_space(write(tmp_path, {"metric": "best_val_balanced_accuracy", **data}, "p.yaml"))
    assert not plain.ranks_last_epoch
    assert load_space("smoke").margin == 0.0  # Ray's ASHA unless a space asks for more
