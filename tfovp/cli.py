"""Command lines built from Config dataclasses, with the project's conventions.

Every field becomes a kebab-case flag typed from its annotation (ints stay ints, tuples
are comma-separated), with a help line (what it is, unit, allowed values) from
`setting(...)`. Flags cannot be abbreviated. A user's mistake ends with one line naming
the flag, the value and what is allowed, and exit status 2 (`ArgumentParser.error`).
Importing this module imports no TensorFlow, so `--help` answers at once.
"""

import argparse
import dataclasses
import typing


def setting(default, help, choices=None, flag=None, aliases=()):
    """A Config field with its command-line help line (what it is, unit, allowed values);
    `flag` overrides the kebab-case spelling, `aliases` adds other spellings."""
    return dataclasses.field(
        default=default, metadata={"help": help, "choices": choices, "flag": flag, "aliases": tuple(aliases)}
    )


def flag(name):
    return "--" + name.replace("_", "-")


class ArgumentParser(argparse.ArgumentParser):
    """argparse without abbreviations, whose errors are one line (exit status 2)."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _sequence(kind):
    name = {int: "integers", float: "numbers", str: "names"}[kind]

    def parse(text):
        try:
            values = tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {name}, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one value, got {text!r}")
        return values

    return parse


def _scalar(kind):
    def parse(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None

    return parse


def show(value):
    if isinstance(value, tuple):
        return ",".join(show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _add_field(parser, field, kind, preset):
    help_text = field.metadata.get("help", "").replace("{preset}", preset)
    choices = field.metadata.get("choices")
    names = [field.metadata.get("flag") or flag(field.name), *field.metadata.get("aliases", ())]
    if kind is bool:
        parser.add_argument(*names, dest=field.name, action="store_true", default=argparse.SUPPRESS, help=help_text)
        return
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        parse, metavar = _sequence(args[0]), "A,B,..."
    else:
        base = next((a for a in args if a is not type(None)), kind) if origin is not None else kind
        parse, metavar = (_scalar(base) if base in (int, float) else str), None
    shown = "" if field.default in (None, ()) else f" (default: {show(field.default)})"
    allowed = f"; each one of: {', '.join(map(str, choices))}" if choices and origin is tuple else ""
    scalar_choices = choices if origin is not tuple else None  # a tuple's entries are checked by validate()
    parser.add_argument(
        *names,
        dest=field.name,
        type=parse,
        default=argparse.SUPPRESS,
        metavar=metavar,
        choices=scalar_choices,
        help=f"{help_text}{allowed}{shown}",
    )


def add_config_flags(parser, config_cls):
    """One flag per field of `config_cls`; unset flags are absent from the parsed namespace
    (argparse.SUPPRESS), so that callers know what the user gave."""
    hints = typing.get_type_hints(config_cls)
    preset = " ".join(f"{flag(k)} {show(v)}" for k, v in getattr(config_cls, "QUICK", {}).items())
    for field in dataclasses.fields(config_cls):
        _add_field(parser, field, hints[field.name], preset)
    return parser


def config_from(config_cls, given, preset=None):
    """`config_cls` from its defaults, then `preset` for the fields not in `given`, then
    `given` (a dict of parsed flags); validated with `validate()` if it has one (which
    raises ValueError naming the flag)."""
    values = {**(preset or {}), **given}
    config = config_cls(**values)
    if hasattr(config, "validate"):
        config.validate()
    return config


def check(condition, message):
    """Raise ValueError(message) unless `condition` (for Config.validate methods)."""
    if not condition:
        raise ValueError(message)


def check_values(name, values, ok, allowed):
    """Raise ValueError naming flag `name` if any of `values` fails `ok`."""
    bad = [v for v in values if not ok(v)]
    check(not bad, f"{flag(name)} {show(tuple(values))}: {show(tuple(bad))} not allowed; expected {allowed}")
