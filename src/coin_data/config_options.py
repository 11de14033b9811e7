"""Click options generated from config dataclass fields: a default and its help text live in the dataclass.

``coin-data``'s commands declare each setting as ``config_option(SomeConfig, "field")``; the option's
default, help text and (unless overridden) type are read from that field, so the CLI can never restate a
default by hand and drift from the Python API.

Example:
    >>> import click
    >>> from coin_data.negatives.search import MineConfig
    >>> @click.command()
    ... @config_option(MineConfig, "top_k", type=click.IntRange(min=1))
    ... def command(top_k): ...
    >>> [p.default for p in command.params]
    [10]
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

# Annotation text (modules use `from __future__ import annotations`) -> click type of a single value.
_SCALAR_TYPES = {"int": int, "float": float, "str": str}


def config_field(config_cls: type, name: str) -> dataclasses.Field:
    """The dataclass field ``name`` of ``config_cls``; a KeyError names the class when it does not exist."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if name not in fields:
        raise KeyError(f"{config_cls.__name__} has no field {name!r}")
    return fields[name]


def field_default(field: dataclasses.Field) -> Any:
    """The value a fresh instance gets for ``field`` (its default, or its default_factory's result)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def field_help(field: dataclasses.Field) -> str:
    """The field's help string (``metadata={"help": ...}``); every field a CLI shows must have one."""
    text = field.metadata.get("help")
    if not text:
        raise ValueError(f"field {field.name!r} has no help string (metadata={{'help': ...}})")
    return text


def _click_type(field: dataclasses.Field) -> Any:
    """A click type from the field's annotation text: 'int | None' -> int; unknown shapes -> str."""
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "str")
    first = annotation.split("|")[0].strip()
    return _SCALAR_TYPES.get(first, str)


def _as_option_default(value: Any, multiple: bool) -> Any:
    """Tuples become the comma-separated text the CLI takes (or stay a tuple for a repeatable option)."""
    if isinstance(value, tuple) and not multiple:
        return ",".join(str(v) for v in value) or None
    if isinstance(value, (tuple, dict)) and not value:
        return None  # an empty collection means "not given"
    return value


def config_option(config_cls: type, name: str, *param_decls: str, tag: str = "", help: str | None = None,
                  **click_kwargs: Any) -> Callable:
    """A ``click.option`` for field ``name`` of ``config_cls`` (default and help taken from the field).

    Args:
        config_cls: the config dataclass that owns the setting.
        name: its field name.
        *param_decls: option names (default ``--field-name``); add the parameter name when it differs.
        tag: prefix for the help, e.g. ``"[openai]"`` for options that only one backend reads.
        help: replaces the field's help (only where the option means something narrower than the field).
        **click_kwargs: passed to ``click.option`` (``type=click.IntRange(min=1)``, ``hidden=True`` ...).

    Returns:
        The click decorator. A ``bool`` field becomes a flag; ``show_default`` is on.
    """
    field = config_field(config_cls, name)
    text = help or field_help(field)
    decls = param_decls or (f"--{name.replace('_', '-')}",)
    multiple = click_kwargs.get("multiple", False)
    default = _as_option_default(field_default(field), multiple)
    if field.type in ("bool", bool) and "is_flag" not in click_kwargs:
        click_kwargs["is_flag"] = True
    elif "type" not in click_kwargs and not click_kwargs.get("is_flag"):
        click_kwargs["type"] = _click_type(field)
    click_kwargs.setdefault("default", default)
    click_kwargs.setdefault("show_default", click_kwargs["default"] is not None and click_kwargs["default"] is not False)
    return click.option(*decls, help=f"{tag} {text}".strip(), **click_kwargs)


def shared_option(configs: dict[str, type], name: str, *param_decls: str, **click_kwargs: Any) -> Callable:
    """An option read by several configs (e.g. one per backend) that is *unset* unless given.

    Its click default is ``None`` so a command can tell which options were given; the help shows each
    config's own default, tagged with the configs that read it. The help text is the first config's.

    Args:
        configs: label -> config class, e.g. ``{"openai": OpenAIOptions, "hf": HFOptions}``.
        name: the field name they share.

    Example:
        >>> from coin_data.paraphrase.hf import HFOptions
        >>> from coin_data.paraphrase.openai_backend import OpenAIOptions
        >>> option = shared_option({"openai": OpenAIOptions, "hf": HFOptions}, "temperature")
        >>> "[default: 0.7]" in click.command()(option(lambda temperature: 0)).params[0].help  # the same for both
        True
    """
    fields = {label: config_field(cls, name) for label, cls in configs.items()}
    defaults = {label: field_default(f) for label, f in fields.items()}
    shown = {label: value for label, value in defaults.items() if value is not None}
    if len(set(map(repr, shown.values()))) == 1:
        default_text = f" [default: {next(iter(shown.values()))}]"
    else:
        default_text = f" [default: {', '.join(f'{label} {value}' for label, value in shown.items())}]" if shown else ""
    first = next(iter(fields.values()))
    text = f"[{', '.join(configs)}] {field_help(first)}{default_text}"
    decls = param_decls or (f"--{name.replace('_', '-')}",)
    click_kwargs.setdefault("type", _click_type(first))
    return click.option(*decls, default=None, help=text, **click_kwargs)


class SeveralValues(click.Option):
    """A repeatable option that also takes several values after one flag.

    ``--data-files a.jsonl b.jsonl`` is what the shell makes of an unquoted ``--data-files '*.jsonl'``;
    plain click would stop at ``b.jsonl`` with "unexpected extra argument". Values are taken up to the
    next word that starts with ``-``.

    Example:
        >>> @click.command()
        ... @click.option("--files", cls=SeveralValues, multiple=True)
        ... def command(files): print(files)
        >>> command(["--files", "a", "b", "--files", "c"], standalone_mode=False)
        ('a', 'b', 'c')
    """

    def add_to_parser(self, parser, ctx) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is not None:
                option.process = self._greedy(option.process, parser._opt_prefixes)

    @staticmethod
    def _greedy(process: Callable, prefixes: set[str]) -> Callable:
        """Wrap a parser option's ``process`` so that it also consumes the following plain words."""

        def take_all(value, state) -> None:
            process(value, state)
            while state.rargs and state.rargs[0][:1] not in prefixes:
                process(state.rargs.pop(0), state)

        return take_all
