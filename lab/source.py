"""Reading a file someone else wrote: bytes -> plain data plus the line of every key. Pure.

Every YAML file tcplab reads (scenarios, exercises, a student's answer) may be hostile: it is read as root,
often over a whole class's submissions. So before any schema looks at it:
- at most MAX_BYTES, decoded as UTF-8 (anything else is an error naming the byte offset);
- anchors and aliases are refused (alias expansion is exponential: 8 levels in 400 bytes never finish);
- nesting is bounded (MAX_DEPTH) while the event stream is read, before anything recursive runs;
- keys are text and appear once (YAML lets the last of two equal keys win silently);
- only YAML's own scalar types are constructed (safe loader; tags such as !!python/object are refused).
The result is plain dicts, lists and scalars, and {path tuple: line} for error messages.
"""
import yaml

from .errors import ScenarioError

MAX_BYTES = 1 << 20
MAX_DEPTH = 24
MAX_NODES = 200_000
# Explicit tags a file may carry: YAML's own plain types (anything else names a constructor: refused).
PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}

try:   # libyaml's parser is ~10x faster; both give the same events
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover (PyYAML built without libyaml)
    _Loader = yaml.SafeLoader


def decode(raw, path):
    """Bytes -> text, or a ScenarioError that says where the file stops being UTF-8."""
    if len(raw) > MAX_BYTES:
        raise ScenarioError(path, 0, None, f"the file is {len(raw):,} bytes; at most {MAX_BYTES:,} are read")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ScenarioError(path, line, None, f"not UTF-8 text (byte {e.start}: {e.reason}); save the file as UTF-8")


def read_file(path, shown=None):
    """A file's text, bounded and decoded; errors name SHOWN (the path as the user wrote it)."""
    shown = shown or str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ScenarioError(shown, 0, None, f"cannot read it: {e.strerror}") from None
    return decode(raw, shown)


def _yaml_error(e, path, text=""):
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = mark.line + 1 if mark else 0
    if isinstance(e, yaml.reader.ReaderError):   # a character YAML refuses: the error has only its offset
        line = text[:e.position].count("\n") + 1
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if isinstance(e, yaml.reader.ReaderError):
        code = e.character if isinstance(e.character, int) else ord(e.character)
        problem = f"the character U+{code:04X} is not allowed (control characters cannot appear in YAML)"
    if "mapping values are not allowed" in problem:
        problem += " (is there a ': ' inside unquoted text? put that text in quotes)"
    return ScenarioError(path, line, None, f"not valid YAML: {problem}")


def _check_events(text, path):
    """Walk the event stream (no recursion, no expansion): refuse anchors, aliases, deep nesting."""
    depth = nodes = documents = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ScenarioError(path, line, None, "anchors and aliases (&name, *name) are not allowed in tcplab "
                                "files: write the value out")
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in PLAIN_TAGS and not (tag == "!" and isinstance(event, yaml.ScalarEvent)):
            raise ScenarioError(path, line, None, f"YAML tags such as {tag} are not allowed in tcplab files")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ScenarioError(path, line, None, f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise ScenarioError(path, line, None, "one YAML document per file (found a second '---')")
        nodes += 1
        if nodes > MAX_NODES:
            raise ScenarioError(path, line, None, f"more than {MAX_NODES:,} YAML nodes")


class _Builder:
    """Composed nodes -> plain data, recording each path's line; iterative depth is bounded above."""

    def __init__(self, path):
        self.path = path
        self.lines = {}
        self.constructor = yaml.constructor.SafeConstructor()

    def scalar(self, node, where=()):
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise ScenarioError(self.path, node.start_mark.line + 1, None,
                                f"a value YAML cannot read safely: {getattr(e, 'problem', e)}") from None
        except ValueError:   # Python refuses to convert an integer of more than 4300 digits
            raise ScenarioError(self.path, node.start_mark.line + 1, _dotted(where) or None,
                                f"a number of {len(str(node.value)):,} characters ({str(node.value)[:12]}...): "
                                "no setting takes a number that long") from None

    def build(self, node, where=(), line=None):
        self.lines[where] = line or node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ScenarioError(self.path, key_line, _dotted(where) or None, "a key must be text, not a list or mapping")
                key = self.scalar(key_node)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ScenarioError(self.path, key_line, _dotted(where) or None, "merge keys (<<) are not allowed")
                if not isinstance(key, str):
                    raise ScenarioError(self.path, key_line, _dotted(where) or None,
                                        f"the key {key!r} must be text (quote it: '{key}')")
                if key in out:
                    raise ScenarioError(self.path, key_line, _dotted(where + (key,)),
                                        f"written twice (first on line {self.lines[where + (key,)]})")
                out[key] = self.build(value_node, where + (key,), key_line)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, where + (i,)) for i, v in enumerate(node.value)]
        return self.scalar(node, where)


def load_yaml(text, path):
    """YAML text -> (data, {path tuple: line}). Raises ScenarioError with the line for anything refused."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ScenarioError(path, 0, None, f"the text is over {MAX_BYTES:,} bytes")
    try:
        _check_events(text, path)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise _yaml_error(e, path, text) from None
    except RecursionError:   # pragma: no cover (depth is bounded above; a belt for a parser change)
        raise ScenarioError(path, 0, None, f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    if node is None:
        return None, {(): 1}
    builder = _Builder(path)
    data = builder.build(node)
    return data, builder.lines


def _dotted(where):
    """('guests', 1, 'args', 'port') -> 'guests[1].args.port' (how errors name a key)."""
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


dotted = _dotted


def line_of(lines, where):
    """The line of WHERE, or of its nearest ancestor that has one."""
    where = tuple(where)
    while where and where not in lines:
        where = where[:-1]
    return lines.get(where, 0)
