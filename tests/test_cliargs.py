"""Flags derived from config dataclasses: each field's type, default and help, typed once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from vgd.cliargs import add_fields, from_args


@dataclass(frozen=True)
class Knobs:
    name: str = "x"
    count: int = 2
    rate: float = 0.5
    fast: bool = False
    seeds: tuple[int, ...] = field(default=(), metadata={"help": "fold seeds"})
    widths: tuple[float, ...] = (1.0, 2.0)


def parse(argv: list[str]) -> Knobs:
    parser = argparse.ArgumentParser()
    add_fields(parser, Knobs)
    return from_args(Knobs, parser.parse_args(argv))


def test_each_field_is_a_flag_of_its_type_with_its_default():
    assert parse([]) == Knobs()
    got = parse(["--name", "y", "--count", "3", "--rate", "0.25", "--fast"])
    assert got == Knobs(name="y", count=3, rate=0.25, fast=True)


def test_a_tuple_field_takes_several_values_and_stays_a_tuple():
    got = parse(["--seeds", "3", "5", "--widths", "4"])
    assert got.seeds == (3, 5) and got.widths == (4.0,)
    assert isinstance(got.seeds, tuple)  # frozen configs hold tuples, not argparse's lists
    assert parse(["--seeds"]).seeds == ()
    with pytest.raises(SystemExit):
        parse(["--seeds", "three"])


def test_the_help_shows_a_tuple_default():
    parser = argparse.ArgumentParser()
    add_fields(parser, Knobs)
    assert "fold seeds (default: none)" in " ".join(parser.format_help().split())


def test_a_field_with_no_command_line_form_is_refused():
    @dataclass(frozen=True)
    class Nested:
        inner: Knobs = Knobs()

    with pytest.raises(TypeError, match="Nested.inner"):
        add_fields(argparse.ArgumentParser(), Nested)


def test_the_search_takes_its_fold_seeds_from_the_command_line():
    from search.run import build_parser, config_from_args

    args = build_parser().parse_args(["--cv", "5", "--cv-seeds", "0", "3"])
    assert config_from_args(args).cv_seeds == (0, 3)
    assert config_from_args(build_parser().parse_args([])).cv_seeds == ()
