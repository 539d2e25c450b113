"""scripts/paired_rounds.py: one recipe of two comparisons, paired by fold."""

from __future__ import annotations

import json

import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("paired_rounds")


def pooled(recipe: str, seed: int, fold: int, ls: float, so: float) -> dict:
    per_corpus = {
        "librispeech": {"balanced_accuracy": ls},
        "speechocean762": {"balanced_accuracy": so},
    }
    return {
        "recipe": recipe,
        "kind": "pooled",
        "seed": seed,
        "fold": fold,
        "per_corpus": per_corpus,
        "macro_balanced_accuracy": (ls + so) / 2,
    }


def loco(recipe: str, seed: int, train: str, test: str, score: float) -> dict:
    return {
        "recipe": recipe,
        "kind": "loco",
        "seed": seed,
        "fold": 0,
        "train": train,
        "per_corpus": {test: {"balanced_accuracy": score}},
    }


def write(path, runs):
    path.write_text(json.dumps({"runs": runs}))
    return path


def test_the_later_round_is_paired_with_the_earlier_on_the_folds_both_ran(script, tmp_path, capsys):
    before = write(
        tmp_path / "a.json",
        [
            pooled("default", 1, 0, 0.75, 0.80),
            pooled("default", 1, 1, 0.75, 0.90),
            pooled("default", 1, 2, 0.50, 0.50),  # a fold the later round did not run
            pooled("pick", 1, 0, 0.10, 0.10),  # another recipe: not paired
            loco("default", 1, "librispeech", "speechocean762", 0.80),
            loco("default", 2, "librispeech", "speechocean762", 0.70),
        ],
    )
    after = write(
        tmp_path / "b.json",
        [
            pooled("default", 1, 0, 1.0, 0.80),
            pooled("default", 1, 1, 0.5, 0.90),
            loco("default", 1, "librispeech", "speechocean762", 0.90),
        ],
    )
    assert script.main([str(before), str(after), "--names", "r3", "r4"]) == 0
    out = capsys.readouterr().out
    assert "paired by fold (2 pooled folds): r4 − r3" in out
    ls = next(line for line in out.splitlines() if line.startswith("librispeech "))
    assert ls.split() == ["librispeech", "0.7500", "0.7500", "+0.0000", "0.3536", "1", "1"]
    so = next(line for line in out.splitlines() if line.startswith("speechocean762 "))
    assert so.split()[1:4] == ["0.8500", "0.8500", "+0.0000"]
    direction = next(line for line in out.splitlines() if line.startswith("librispeech → "))
    # paired by seed: only seed 1 ran in both rounds, +0.10 (a win)
    assert direction.split()[-6:] == ["0.7500", "(0.7000)", "0.9000", "(0.9000)", "+0.1000", "1/0"]


def test_a_recipe_with_a_third_corpus_is_paired_on_the_corpora_both_scored(
    script, tmp_path, capsys
):
    before = write(
        tmp_path / "a.json",
        [
            pooled("default", 1, 0, 0.80, 0.90),
            pooled("default", 1, 1, 0.90, 0.90),
            loco("default", 1, "speechocean762", "librispeech", 0.80),
            loco("default", 2, "speechocean762", "librispeech", 0.90),
        ],
    )
    third = {"synth": {"balanced_accuracy": 0.0}}  # would drag the macro down if it counted
    runs = [pooled("with_synth", 1, k, 0.90, 0.80) for k in (0, 1)]
    for r in runs:
        r["per_corpus"] |= third
        r["macro_balanced_accuracy"] = (0.90 + 0.80 + 0.0) / 3
    after = write(
        tmp_path / "b.json",
        [
            *runs,
            loco("with_synth", 1, "speechocean762+synth", "librispeech", 0.85),
            loco("with_synth", 2, "speechocean762+synth", "librispeech", 0.92),
            loco("with_synth", 1, "librispeech+speechocean762", "synth", 0.95),
        ],
    )
    argv = [str(before), str(after), "--recipe", "default", "with_synth"]
    assert script.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    macro = next(line for line in lines if line.startswith("macro "))
    # the macro over librispeech and speechocean762 only: 0.85 and 0.875 before, 0.85 after
    assert macro.split()[1:4] == ["0.8750", "0.8500", "-0.0250"]
    assert not any(line.startswith("synth ") for line in lines)
    assert "not paired (one round scored them): synth; macro over the rest" in lines
    ls = next(line for line in lines if line.startswith("speechocean762 | speechocean762+synth → "))
    # paired by seed on the corpus left out: +0.05 and +0.02
    assert ls.split()[-6:] == ["0.8500", "(0.8000)", "0.8850", "(0.8500)", "+0.0350", "2/0"]
    synth = next(line for line in lines if line.startswith("librispeech+speechocean762 → synth"))
    assert synth.split()[-3:] == ["-", "0.9500", "(0.9500)"]


def test_a_round_without_pooled_runs_pairs_only_its_leave_one_out(script, tmp_path, capsys):
    before = write(
        tmp_path / "a.json",
        [pooled("default", 1, 0, 0.9, 0.9), loco("default", 1, "ls", "so", 0.80)],
    )
    after = write(tmp_path / "b.json", [loco("small", 1, "ls+synth", "so", 0.85)])
    assert script.main([str(before), str(after), "--recipe", "default", "small"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("paired by fold") for line in lines)
    (line,) = [s for s in lines if s.startswith("ls | ls+synth → so")]
    assert line.split()[-2:] == ["+0.0500", "1/0"]


def test_rounds_that_share_no_corpus_are_a_one_line_error(script, tmp_path, capsys):
    before = write(tmp_path / "a.json", [pooled("default", 1, 0, 0.9, 0.9)])
    other = pooled("default", 1, 0, 0.9, 0.9)
    other["per_corpus"] = {"synth": {"balanced_accuracy": 0.9}}
    after = write(tmp_path / "b.json", [other])
    assert script.main([str(before), str(after)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paired_rounds: error: no corpus scored by both rounds")


def test_more_than_two_recipes_is_a_usage_error(script, tmp_path):
    before = write(tmp_path / "a.json", [pooled("default", 1, 0, 0.9, 0.9)])
    with pytest.raises(SystemExit) as stop:
        script.main([str(before), str(before), "--recipe", "a", "b", "c"])
    assert stop.value.code == 2


def test_a_round_can_be_several_reports(script, tmp_path, capsys):
    before = write(tmp_path / "a.json", [loco("default", 1, "ls", "so", 0.80)])
    more_before = write(tmp_path / "a2.json", [loco("default", 3, "ls", "so", 0.90)])
    after = write(tmp_path / "b.json", [loco("default", 1, "ls", "so", 0.70)])
    more_after = write(tmp_path / "b2.json", [loco("default", 3, "ls", "so", 0.95)])
    argv = [f"{before},{more_before}", f"{after},{more_after}"]
    assert script.main(argv) == 0
    (line,) = [s for s in capsys.readouterr().out.splitlines() if s.startswith("ls → so")]
    # seed 1: -0.10, seed 3: +0.05
    assert line.split()[3:] == ["0.8500", "(0.8000)", "0.8250", "(0.7000)", "-0.0250", "1/1"]


def test_a_recipe_missing_from_a_round_is_a_one_line_error(script, tmp_path, capsys):
    before = write(tmp_path / "a.json", [pooled("default", 1, 0, 0.9, 0.9)])
    after = write(tmp_path / "b.json", [pooled("pick", 1, 0, 0.9, 0.9)])
    assert script.main([str(before), str(after)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"paired_rounds: error: {after}: no runs of recipe 'default'"
