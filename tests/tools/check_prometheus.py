#!/usr/bin/env python3
"""check_prometheus: validates `nflowctl stats --prometheus` output with a real parser.

    check_prometheus.py STATS_RENDER

Renders a populated report with stats_render, parses it with prometheus_client's text parser
(and `promtool check metrics` when installed), and checks that every declared statistics field
appears once, with its type and value. It then breaks the exposition in the ways a formatter
could and makes sure each break is caught, so the check cannot pass vacuously.
Exit 0: valid; 1: invalid; 77: no parser available (skip).
"""
import os
import re
import shutil
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client is installed for the system interpreter, which a
    # python3 first in PATH (pyenv, a venv) may not be.
    if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: python3-prometheus-client is not installed")
    sys.exit(77)


def expectations(render):
    out = subprocess.run([render, "expect"], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        name, typ, label, value, number = line.split("\t")
        labels = {} if label == "-" else {label: value.replace("\\n", "\n")}
        rows.append((name, typ, labels, float(number)))
    return rows


def raw_errors(text):
    """What the Python parser forgives: counter names, HELP/TYPE placement, a final newline."""
    errors = []
    if not text.endswith("\n"):
        errors.append("no final newline")
    typed, current = {}, None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            if name in typed:
                errors.append(f"second TYPE for {name}")
            typed[name] = typ
            current = name
            if typ == "counter" and not name.endswith("_total"):
                errors.append(f"counter {name} lacks _total")
        elif line.startswith("# HELP "):
            continue
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if not name or name.group(0) != current:
                errors.append(f"sample outside its family: {line!r}")
    return errors


def promtool_errors(text):
    if not shutil.which("promtool"):
        return []
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    return [] if r.returncode == 0 else [f"promtool: {r.stdout}{r.stderr}".strip()]


def errors_of(text, expected):
    errors = raw_errors(text) + promtool_errors(text)
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError, and others on odd input
        return errors + [f"parser: {e!r}"]
    by_name = {}
    for f in families:
        if f.name in by_name:
            errors.append(f"family {f.name} twice")
        by_name[f.name] = f
        if f.type not in ("counter", "gauge"):
            errors.append(f"{f.name}: type {f.type}")
        if not f.documentation:
            errors.append(f"{f.name}: no HELP")
    for name, typ, labels, value in expected:
        family = by_name.get(name[: -len("_total")] if typ == "counter" else name)
        if family is None:
            errors.append(f"missing {name}")
            continue
        if family.type != typ:
            errors.append(f"{name}: {family.type}, want {typ}")
        got = [s.value for s in family.samples if s.name == name and s.labels == labels]
        if got != [value]:
            errors.append(f"{name}{labels}: {got}, want [{value}]")
    return errors


def breaks(text):
    """The exposition broken as a formatter bug would; every one must be caught."""
    lines = text.splitlines(keepends=True)
    first_type = next(i for i, l in enumerate(lines) if l.startswith("# TYPE nflowd_parse"))
    counter = re.search(r"^# TYPE (\S+)_total counter$", text, re.M).group(1)
    sample = next(l for l in lines if l.startswith("nflowd_export_flows_total"))
    yield "a TYPE line dropped", "".join(lines[:first_type] + lines[first_type + 1:])
    yield "a value changed", text.replace(sample, sample.rstrip("\n") + "1\n")
    yield "label escaping lost", text.replace('we\\"ird', 'we"ird')
    yield "line feed in a label unescaped", text.replace("dest\\nx", "dest\nx")
    yield "counter without _total", text.replace(counter + "_total", counter)
    yield "a family repeated", text + "".join(lines[first_type - 1:first_type + 2])
    yield "a family missing", "".join(l for l in lines if "nflowd_nflog_lost" not in l)
    yield "samples interleaved", text.replace(sample, "") + sample


def main():
    render = sys.argv[1]
    expected = expectations(render)
    text = subprocess.run([render, "prometheus"], check=True, capture_output=True,
                          text=True).stdout
    errors = errors_of(text, expected)
    for e in errors:
        print("FAIL:", e)
    if errors:
        print(text)
        return 1
    print(f"ok: {len(expected)} declared samples, promtool "
          f"{'passed' if shutil.which('promtool') else 'not installed'}")
    missed = [what for what, broken in breaks(text) if not errors_of(broken, expected)]
    for what in missed:
        print("FAIL: the check did not notice", what)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
