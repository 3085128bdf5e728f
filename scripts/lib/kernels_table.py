"""Markdown tables for docs/platforms.md from two `tcplab run --out DIR` folders (one per kernel).

    python3 scripts/lib/kernels_table.py LABEL_A=results/here LABEL_B=results/vm-all/results

Prints the verdict table (one row per scenario) and the figures table (one row per check: what each kernel
observed; failed checks in bold). Reads only results.json files; writes nothing.
"""
import json
import sys
from pathlib import Path


def load(folder):
    out = {}
    for f in sorted(Path(folder).glob("*/results.json")):
        out[f.parent.name] = json.loads(f.read_text())
    return out


def fmt(value):
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(result):
    if result is None:
        return "not run"
    checks = result.get("expectations") or []
    status = result["status"]
    if status == "SKIP":
        return f"SKIP ({result.get('skipped', '')})"
    if status == "ERROR":
        return f"ERROR ({result.get('error', '')})"
    unjudged = sum(1 for c in checks if c.get("skipped"))
    judged = len(checks) - unjudged
    return f"{status} {sum(c['passed'] for c in checks)}/{judged}" + (f" ({unjudged} not judged)" if unjudged else "")


def main(argv):
    runs = [(label, load(folder)) for label, folder in (a.split("=", 1) for a in argv)]
    names = sorted(set().union(*(set(r) for _, r in runs)))
    header = " | ".join(label for label, _ in runs)
    print(f"| scenario | {header} |")
    print("|---|" + "---|" * len(runs))
    for name in names:
        print(f"| `{name}` | " + " | ".join(verdict(r.get(name)) for _, r in runs) + " |")
    print()
    print(f"| scenario | check | {header} |")
    print("|---|---|" + "---|" * len(runs))
    for name in names:
        checks = {}
        for i, (_, r) in enumerate(runs):
            for c in (r.get(name) or {}).get("expectations") or []:
                checks.setdefault(c["check"], [None] * len(runs))[i] = c
        for text, per_run in checks.items():
            cells = []
            for c in per_run:
                if c is None:
                    cells.append("")
                elif c.get("skipped"):
                    cells.append("not judged" + (" (`since`)" if "older than" in c["skipped"] else ""))
                else:
                    cells.append(fmt(c["observed"]) if c["passed"] else f"**{fmt(c['observed'])} FAIL**")
            print(f"| `{name}` | `{text}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
