"""Configs are closed, typed and validated once; overrides address fields by dotted path."""

import pytest
import yaml

from vgd.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    field_paths,
    from_dict,
    load_config,
    parse_override,
    save_config,
    to_dict,
)


def test_round_trip_through_yaml(tmp_path):
    config = apply_overrides(TrainConfig(), {"optim.lr": 1e-4, "model.n_blocks": 3})
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


def test_unknown_key_is_rejected_with_its_path():
    with pytest.raises(ConfigError, match=r"optim\.learning_rate: unknown key"):
        from_dict(TrainConfig, {"optim": {"learning_rate": 0.1}})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.width: expected an integer"):
        from_dict(TrainConfig, {"model": {"width": "wide"}})
    with pytest.raises(ConfigError, match=r"optim\.lr: expected a number"):
        from_dict(TrainConfig, {"optim": {"lr": True}})


def test_out_of_range_value_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.dropout"):
        apply_overrides(TrainConfig(), {"model.dropout": 1.5})
    with pytest.raises(ConfigError, match=r"features\.normalize"):
        apply_overrides(TrainConfig(), {"features.normalize": "loud"})
    with pytest.raises(ConfigError, match=r"optim\.ema_decay"):
        apply_overrides(TrainConfig(), {"optim.ema_decay": 1.0})


def test_cross_field_check_f_max_against_sample_rate():
    with pytest.raises(ConfigError, match=r"features\.f_max"):
        apply_overrides(TrainConfig(), {"audio.sample_rate": 8000})


def test_override_of_unknown_path_is_rejected():
    with pytest.raises(ConfigError, match=r"optim\.nope: names no config field"):
        apply_overrides(TrainConfig(), {"optim.nope": 1})


def test_integral_floats_become_ints_and_lists_become_tuples():
    c = from_dict(TrainConfig, {"optim": {"batch_size": 64.0}, "data": {"labels": ["a", "b"]}})
    assert c.optim.batch_size == 64 and isinstance(c.optim.batch_size, int)
    assert c.data.labels == ("a", "b")


def test_field_paths_cover_every_leaf():
    paths = set(field_paths())
    assert {"optim.lr", "model.width", "features.n_mels", "seed", "augment.noise_snr_db"} <= paths
    assert "optim" not in paths


def test_parse_override_uses_yaml_values():
    assert apply_overrides(TrainConfig(), dict([parse_override("optim.lr=1e-3")])).optim.lr == 1e-3
    assert parse_override("data.train_splits=[train, val]") == (
        "data.train_splits",
        ["train", "val"],
    )
    with pytest.raises(ConfigError):
        parse_override("no-equals-sign")


def test_bad_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"optim": {"lrr": 1}}))
    with pytest.raises(ConfigError, match=r"typo.yaml: optim\.lrr: unknown key"):
        load_config(tmp_path / "typo.yaml")


def test_derived_window_values():
    f = TrainConfig().features
    assert f.win_length(16000) == round(16000 * f.win_ms / 1000)
    assert f.n_fft(16000) >= f.win_length(16000)
    assert f.n_fft(16000) & (f.n_fft(16000) - 1) == 0


def test_to_dict_is_plain():
    d = to_dict(TrainConfig())
    assert isinstance(d["data"]["labels"], list)
    yaml.safe_dump(d)  # raises on anything YAML cannot hold
