"""The small constrained types every schema shares (names, times, sizes, sysctls). Pure.

A name that becomes part of a path, a process argument or a kernel object is checked here first, so that
nothing a file says can climb out of `--out`, reach a shell or name someone else's interface.
"""
from typing import Annotated, List, Union

from pydantic import AfterValidator, Field, StringConstraints

from . import sysctl as sysctls
from .errors import SysctlError

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
# A scenario, exercise or guest name: lowercase letters, digits and dashes (it names folders under --out).
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=40)]
# A host or switch of the topology (as the topology names it: h1, server, s1, c12).
NodeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=10)]
Seconds = Annotated[float, Field(ge=0, le=600)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\n\r]*$")]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Port = Annotated[int, Field(ge=1, le=65535)]
Bytes = Annotated[int, Field(ge=1, le=64 << 20)]


def _key(value):
    try:
        sysctls.check_per_host(value)
    except SysctlError as e:
        raise ValueError(str(e).split(": ", 1)[-1]) from None
    return value


def _value(value):
    if isinstance(value, str) and not value.strip():
        raise ValueError("expected a value")
    return value


SysctlKey = Annotated[str, StringConstraints(max_length=80), AfterValidator(_key)]
SysctlValue = Annotated[Union[Annotated[int, Field(ge=-(2 ** 63), lt=2 ** 63)],
                              Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_ .:,-]{1,120}$")]],
                        AfterValidator(_value)]

# Two nodes, e.g. [h1, s1] (a list: strict mode takes no YAML list as a tuple).
NodePair = Annotated[List[NodeName], Field(min_length=2, max_length=2)]
