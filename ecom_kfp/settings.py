"""Every stage setting declared once, on its config dataclass (like TFX's component specs).

A stage's config field is declared with :func:`setting`, which carries the default, the help text
and, where it is not derived from the field name, the CLI flag. From that one declaration:

- :func:`add_arguments` builds the stage's ``argparse`` flags (``ecom-kfp VERB --help``);
- :func:`from_args` builds the config from parsed flags;
- :func:`component_doc` writes the ``Args:`` section that KFP turns into the component's input
  descriptions (``components/<name>/README.md``);
- ``tests/test_settings.py`` checks every KFP component's parameters and defaults against it.

Fail-fast checks of a config (DESIGN rule 7) go through :func:`require`, which raises
:class:`ConfigError` naming the flag and the value: ``--image-size=4: must be at least 8``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: ``(passed, flag, value, rule)``, e.g. ``(size >= 8, "--image-size", size, "must be at least 8")``.
Check = tuple[bool, str, object, str]

_META = "ecom_kfp.setting"


class ConfigError(ValueError):
    """A flag has a value the stage cannot run with; the message names the flag and the value."""


def require(checks: Iterable[Check], error: type[ValueError] = ConfigError) -> None:
    """Raise ``error("<flag>=<value>: <rule>")`` for the first check that did not pass.

    Args:
        checks: The config's checks, in the order they should be reported.
        error: The exception class.
    """
    for passed, flag, value, rule in checks:
        if not passed:
            raise error(f"{flag}={value!r}: {rule}")


def require_given(flags: Iterable[tuple[str, object]]) -> None:
    """Raise ``ConfigError("<flag> is required")`` for the first ``(flag, value)`` whose value is empty."""
    for flag, value in flags:
        if not value:
            raise ConfigError(f"{flag} is required")


@dataclasses.dataclass(frozen=True)
class Setting:
    """What :func:`setting` records on a field: everything the CLI and the docs need."""

    help: str
    flag: str = ""
    metavar: str | None = None
    choices: Sequence[str] | None = None
    cli: bool = True
    parse: Callable[[str], Any] | None = None


def setting(default: Any = dataclasses.MISSING, *, help: str, flag: str = "",  # noqa: A002 - argparse's word
            metavar: str | None = None, choices: Sequence[str] | None = None,
            factory: Callable[[], Any] | None = None, cli: bool = True,
            parse: Callable[[str], Any] | None = None) -> Any:
    """Declare one config field with its default, help text and CLI flag.

    Args:
        default: The default; omit it for a required setting.
        help: One sentence for ``--help``, the component's input description and the docs.
        flag: The CLI flag when it is not ``--`` + the field name with dashes (for example
            ``--products`` for ``products_uri``). A boolean that defaults to True gets
            ``--no-<name>``; one that defaults to False gets ``--<name>``.
        metavar: What ``--help`` shows as the value.
        choices: The allowed values.
        factory: A default factory (for lists), instead of ``default``.
        cli: False for fields that the CLI does not expose (filled in by code).
        parse: Turns the flag's text into the value, for types argparse cannot (e.g. a tuple).

    Returns:
        A :func:`dataclasses.field` carrying the declaration.
    """
    meta = {_META: Setting(help=help, flag=flag, metavar=metavar, choices=choices, cli=cli, parse=parse)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings_of(config_cls: type) -> list[tuple[dataclasses.Field, Setting]]:
    """The fields of ``config_cls`` declared with :func:`setting`, in declaration order."""
    return [(f, f.metadata[_META]) for f in dataclasses.fields(config_cls) if _META in f.metadata]


def default_of(field: dataclasses.Field) -> Any:
    """A field's default value (calling its factory); ``dataclasses.MISSING`` when it has none."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def flag_of(field: dataclasses.Field, decl: Setting) -> str:
    """The CLI flag of a setting (see :func:`setting`)."""
    if decl.flag:
        return decl.flag
    name = field.name.replace("_", "-")
    return f"--no-{name}" if field.default is True else f"--{name}"


def _scalar(hint: Any) -> type:
    """``int``/``float``/``str``/``bool`` of a (possibly ``list[...]``) type hint."""
    args = typing.get_args(hint)
    return args[0] if typing.get_origin(hint) is list and args else hint


def comma_separated(text: str, item: Callable[[str], Any] = str) -> list:
    """``"a, b,,c"`` -> ``[item("a"), item("b"), item("c")]``: a list setting as a flag or a pipeline
    parameter writes it."""
    return [item(part.strip()) for part in text.split(",") if part.strip()]


def _list_parser(item: type, flag: str) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return comma_separated(text, item)
        except ValueError as err:
            raise argparse.ArgumentTypeError(
                f"{flag} takes comma-separated {item.__name__} values, got {text!r}") from err
    return parse


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` whose ValueError argparse reports with its own message (not "invalid value")."""
    def checked(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    return checked


def add_arguments(parser: argparse.ArgumentParser, config_cls: type, *, skip: Iterable[str] = ()) -> None:
    """Add one flag per CLI setting of ``config_cls`` (and of nested setting dataclasses).

    Args:
        parser: The verb's parser.
        config_cls: A dataclass whose fields are declared with :func:`setting`.
        skip: Field names the verb handles itself.
    """
    hints = typing.get_type_hints(config_cls)
    skipped = set(skip)
    for field, decl in settings_of(config_cls):
        if not decl.cli or field.name in skipped:
            continue
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            add_arguments(parser, hint, skip=skipped)
            continue
        flag, default = flag_of(field, decl), default_of(field)
        kwargs: dict[str, Any] = {"dest": field.name, "help": decl.help}
        if hint is bool:
            kwargs["action"] = "store_false" if default is True else "store_true"
            if default is True:
                kwargs["help"] += " (on by default; this flag turns it off)"
        else:
            if decl.parse is not None:
                kwargs["type"] = _argparse_type(decl.parse)
                kwargs["metavar"] = decl.metavar
            elif typing.get_origin(hint) is list:
                kwargs["type"] = _list_parser(_scalar(hint), flag)
                kwargs["metavar"] = decl.metavar or f"{_scalar(hint).__name__.upper()},..."
            else:
                kwargs["type"] = hint
                kwargs["metavar"] = decl.metavar
            if default is dataclasses.MISSING:
                kwargs["required"] = True
            else:
                kwargs["default"] = default
                shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
                if shown not in ("", None, []):
                    kwargs["help"] += f" (default: {shown})"
            if decl.choices:
                kwargs["choices"] = list(decl.choices)
        parser.add_argument(flag, **kwargs)


def from_args(config_cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build ``config_cls`` from parsed flags; ``overrides`` win over flags.

    Nested setting dataclasses are built from the same flat namespace.
    """
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for field, decl in settings_of(config_cls):
        if field.name in overrides:
            values[field.name] = overrides[field.name]
        elif dataclasses.is_dataclass(hints[field.name]):
            values[field.name] = from_args(hints[field.name], args)
        elif decl.cli and hasattr(args, field.name):
            values[field.name] = getattr(args, field.name)
    values.update({k: v for k, v in overrides.items() if k not in values})
    return config_cls(**values)


def component_doc(config_cls: type, summary: str, returns: dict[str, str] | None = None,
                  **artifacts: str) -> Callable[[Callable], Callable]:
    """Decorator that writes a KFP component's docstring from its config's settings.

    KFP reads input descriptions from the function's ``Args:`` section; writing it here keeps the
    help text in one place. Parameters that are artifacts, or not config fields, are described by
    ``artifacts`` (name -> description). ``returns`` describes outputs in a ``Returns:`` section:
    named return values and ``Output[...]`` parameters, whose descriptions KFP reads only there.
    """
    returns = returns or {}

    def decorate(func: Callable) -> Callable:
        helps = {f.name: decl.help for f, decl in _all_settings(config_cls)}
        inputs, outputs = ["Args:"], ["Returns:"]
        for name, hint in typing.get_type_hints(func, include_extras=True).items():
            if name == "return" or name in returns:
                continue
            text = artifacts.get(name) or helps.get(name)
            if text is None:
                raise TypeError(f"{func.__name__}: parameter {name!r} is neither a setting of "
                                f"{config_cls.__name__} nor described")
            # KFP takes output artifact descriptions from a Returns: section, inputs from Args:.
            (outputs if _is_output(hint) else inputs).append(f"    {name}: {text}")
        outputs += [f"    {name}: {text}" for name, text in returns.items()]
        func.__doc__ = "\n".join([summary, "", *inputs, *([""] + outputs if len(outputs) > 1 else [])])
        return func
    return decorate


def _is_output(hint: Any) -> bool:
    """Whether a component parameter is ``Output[...]`` (told by name: settings must not import kfp)."""
    return any(getattr(extra, "__name__", "") == "OutputAnnotation" for extra in typing.get_args(hint)[1:])


def _all_settings(config_cls: type) -> list[tuple[dataclasses.Field, Setting]]:
    """Settings of ``config_cls`` with nested setting dataclasses flattened."""
    hints = typing.get_type_hints(config_cls)
    out = []
    for field, decl in settings_of(config_cls):
        if dataclasses.is_dataclass(hints[field.name]):
            out.extend(_all_settings(hints[field.name]))
        else:
            out.append((field, decl))
    return out


def flat_defaults(config_cls: type) -> dict[str, Any]:
    """Field name -> default of every setting, nested setting dataclasses flattened."""
    return {f.name: default_of(f) for f, _ in _all_settings(config_cls)}
