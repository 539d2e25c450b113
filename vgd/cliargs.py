"""Command-line flags derived from a config dataclass, so each setting is typed once.

``add_fields(parser, RunConfig)`` adds ``--device``, ``--cache-dir`` ... with the field's type,
default and help (``field(metadata={"help": ...})``); ``from_args(RunConfig, args)`` builds the
frozen config back from the parsed namespace, validated by its own ``__post_init__``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Container
from typing import Any, TypeVar

T = TypeVar("T")


def flag(name: str) -> str:
    """The command-line spelling of a field: ``cache_dir`` → ``--cache-dir``."""
    return "--" + name.replace("_", "-")


def add_fields(parser: argparse.ArgumentParser | Any, cls: type, skip: Container[str] = ()) -> None:
    """Add one flag per field of ``cls`` (scalars, and tuples of them as several values),
    defaulting to the field's default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        item = _tuple_item(kind)
        if kind not in (str, int, float, bool) and item is None:
            raise TypeError(f"{cls.__name__}.{f.name}: {kind!r} has no command-line form")
        help_text = f.metadata.get("help", "")
        if kind is bool:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag(f.name), action=action, default=f.default, help=help_text)
        elif item is not None:
            default = " ".join(map(str, f.default)) or "none"
            shown = f"{help_text} (default: {default})" if help_text else None
            parser.add_argument(flag(f.name), type=item, nargs="*", default=f.default, help=shown)
        else:
            shown = f"{help_text} (default: {f.default!r})" if help_text else None
            parser.add_argument(flag(f.name), type=kind, default=f.default, help=shown)


def _tuple_item(kind: Any) -> type | None:
    """``int`` for ``tuple[int, ...]`` (likewise str, float); None for any other type."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0] if args[0] in (str, int, float) else None
    return None


def from_args(cls: type[T], args: argparse.Namespace, **fixed: Any) -> T:
    """The config ``cls`` from the parsed flags of :func:`add_fields`; ``fixed`` fields win."""
    values = {
        f.name: _plain(getattr(args, f.name))
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if hasattr(args, f.name)
    }
    return cls(**{**values, **fixed})


def _plain(value: Any) -> Any:
    """argparse's list of several values as the tuple a frozen config holds."""
    return tuple(value) if isinstance(value, list) else value
