"""Every import in lab/ and guest/ names a module that exists, including those deferred inside functions
(the CLI imports its heavy parts lazily, so a wrong one would only fail when a user typed that command)."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path):
    """(line, absolute module name) for every `from ... import` and `import` inside the project's packages."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = package.split(".")
            if node.level - 1 >= len(parts):
                yield node.lineno, None
                continue
            base = ".".join(parts[:len(parts) - (node.level - 1)])
            target = f"{base}.{node.module}" if node.module else base
            yield node.lineno, target
            if not node.module:
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("lab", "guest"):
            yield node.lineno, node.module


def _exists(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_project_import_names_a_module_or_a_name_in_one():
    bad = []
    for path in sorted([*ROOT.glob("lab/**/*.py"), *ROOT.glob("guest/**/*.py")]):
        for line, target in _imports(path):
            if target is None:
                bad.append(f"{path.relative_to(ROOT)}:{line}: relative import beyond the top-level package")
            elif not _exists(target) and not _exists(target.rpartition(".")[0]):
                bad.append(f"{path.relative_to(ROOT)}:{line}: no module {target}")
    assert not bad, "\n".join(bad)


def test_bench_reaches_its_sections():
    # The bench command imports its sections when run; an unknown section is refused after that import.
    out = subprocess.run([sys.executable, "-m", "lab.cli", "bench", "--only", "nosuch"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown bench section nosuch" in out.stderr, out.stderr[-2000:]
