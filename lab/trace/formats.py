"""Tracepoint format files (tracefs `events/GROUP/NAME/format`) -> fields and symbol tables. Pure: text in, data out.

The kernel's drop reasons are an enum that new kernels extend in the middle, so a number means different
reasons on different kernels; names are never hard-coded here: the kfree_skb format's
`__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, ...)` is the table, read on the kernel that runs.
"""
import re
from dataclasses import dataclass, field

_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
                    r"\s*signed:(?P<signed>\d);")
_PAIR = re.compile(r'\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"([^"]*)"\s*\}')


class FormatError(ValueError):
    """A format file that does not read as one (the message says which part)."""


@dataclass
class Format:
    name: str
    id: int
    fields: dict = field(default_factory=dict)     # field name -> (C type, offset, size, signed)
    print_fmt: str = ""

    def has(self, name):
        return name in self.fields


def parse_format(text):
    """One tracepoint format file -> Format. Raises FormatError when the name, ID or print fmt is missing."""
    name = ident = None
    fields, print_fmt = {}, ""
    for line in text.splitlines():
        if line.startswith("name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("ID:"):
            ident = int(line.split(":", 1)[1])
        elif line.startswith("print fmt:"):
            print_fmt = line.split(":", 1)[1].strip()
        else:
            m = _FIELD.match(line)
            if m:
                decl = m["decl"].strip()
                # "__u8 saddr[28]" -> saddr; "const void * skaddr" -> skaddr
                fname = re.split(r"[\s*]+", decl.split("[")[0].strip())[-1]
                ctype = decl[: decl.rfind(fname)].strip()
                fields[fname] = (ctype, int(m["offset"]), int(m["size"]), m["signed"] == "1")
    if name is None or ident is None or not print_fmt:
        raise FormatError("a tracepoint format file needs 'name:', 'ID:' and 'print fmt:' lines")
    return Format(name, ident, fields, print_fmt)


def symbol_table(print_fmt, field_name):
    """The numeric table of `__print_symbolic(REC->FIELD, {N, "NAME"}, ...)` in a print fmt: {N: NAME}.

    Entries written with a symbol instead of a number (`{ TCP_ESTABLISHED, "..." }`) are left out: the
    format file does not say their values. Raises FormatError when FIELD has no numeric table."""
    start = print_fmt.find(f"__print_symbolic(REC->{field_name},")
    if start < 0:
        raise FormatError(f"no __print_symbolic table for REC->{field_name} in this print fmt")
    depth, end = 0, len(print_fmt)
    for i in range(start + len("__print_symbolic"), len(print_fmt)):
        depth += {"(": 1, ")": -1}.get(print_fmt[i], 0)
        if depth == 0:
            end = i
            break
    table = {int(n, 0): name for n, name in _PAIR.findall(print_fmt[start:end])}
    if not table:
        raise FormatError(f"the __print_symbolic table for REC->{field_name} has no numeric entries")
    return table


def parse_many(text):
    """Format files concatenated, each after a line "=== GROUP/NAME" -> {"GROUP:NAME": Format}."""
    found = {}
    for part in text.split("=== ")[1:]:
        name, _, body = part.partition("\n")
        found[name.strip().replace("/", ":")] = parse_format(body)
    return found
