"""A guest's arguments, as the scenario schema sees them: derived from the guest program's own parser.

The programs (guest/*.py) are the one source of truth: each option's `type=` function carries its schema
(`{"type": "int", "minimum": 1, "maximum": 65535}`...), choices and flags are argparse's own. This module
turns a program's parser into a strict pydantic model, so that `args: {port: 70000, never-read: "false"}`
is refused at `guests[0].args.port` and `.never-read` with what is allowed, before anything runs.
Placeholders: a HOST:PORT argument may be `{h1}:9000`; a clock time may be `{t0+0.5}`.
"""
import argparse
from functools import lru_cache
from typing import Annotated, Literal, Optional, Union

from pydantic import AliasChoices, ConfigDict, Field, StringConstraints, create_model

T0_PATTERN = r"^\{t0(\+\d{1,3}(\.\d{1,6})?)?\}$"
T0 = Annotated[str, StringConstraints(pattern=T0_PATTERN)]
# What each pattern means, from the type's own doc, for messages ("expected an address and port...").
PATTERN_DOCS = {T0_PATTERN: "{t0} or {t0+SECONDS}, e.g. {t0+0.5}"}


def _field_type(action):
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return bool
    if action.choices:
        return Literal[tuple(action.choices)]
    schema = getattr(action.type, "schema", None) or {}
    kind = schema.get("type", "str")
    if kind in ("int", "float"):
        number = Annotated[int if kind == "int" else float,
                           Field(ge=schema.get("minimum"), le=schema.get("maximum"))]
        return Union[number, T0] if schema.get("placeholder") == "t0" else number
    pattern = f"^(?:{schema['pattern']})$" if schema.get("pattern") else None
    if pattern:
        PATTERN_DOCS[pattern] = (action.type.__doc__ or "").strip() or schema["pattern"]
    return Annotated[str, StringConstraints(pattern=pattern, max_length=schema.get("max_length", 200))]


@lru_cache(maxsize=None)
def args_model(program, parser_factory):
    """A strict pydantic model of PROGRAM's arguments in the mapping form ({port: 9000, never-read: true})."""
    fields = {}
    for action in parser_factory()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = [s.lstrip("-") for s in action.option_strings] or [action.dest]
        required = not action.option_strings and action.nargs is None
        fields[action.dest] = (Optional[_field_type(action)] if not required else _field_type(action),
                               Field(... if required else None, validation_alias=AliasChoices(*names),
                                     description=action.help))
    config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, hide_input_in_errors=True)
    return create_model(f"{program.title()}Args", __config__=config, **fields)


def flag_names(program, parser_factory):
    """Every name a mapping may use for PROGRAM (for 'did you mean')."""
    names = []
    for action in parser_factory()._actions:
        if not isinstance(action, argparse._HelpAction):
            names += [s.lstrip("-") for s in action.option_strings] or [action.dest]
    return names
