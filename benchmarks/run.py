"""Run the benchmark suite and print one table: ``python -m benchmarks.run [--quick]``.

Options:
  --quick           a smoke run (one run each, small files, no 1M-item file): under a minute
  --runs N          runs per configuration, the median is reported (default 3; --quick: 1)
  --only G [G ...]  groups to run: cycles, peers, http, http-parts, scale, page, page-traffic, testkit,
                    sizing, makespan, and on PostgreSQL pg-cycles, pg-peers, pg-http, pg-scale, pg-sizing,
                    pg-pooler, pg-makespan (default: all; the PostgreSQL ones when a server can be
                    had: LITECOORD_BENCH_POSTGRES, or a private one started for the run)
  --workdir DIR     where the SQLite files go (default: a new directory under /tmp, removed after)
  --markdown FILE   also write the results, command and machine into FILE between its
                    '<!-- results: start/end -->' markers (BENCHMARKS.md), keeping the prose around them
  --section NAME    use the markers '<!-- results NAME: start/end -->' instead (one file, several runs)

The figures depend on the disk's fsync latency (``synchronous=FULL``) and on
the core count: the machine description is printed with them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

if __package__ in (None, ""):  # run as a file: python benchmarks/run.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"  # noqa: A001

from benchmarks import (  # noqa: E402
    cycles,
    makespan,
    page,
    page_traffic,
    peers,
    pg_common,
    rest,
    rest_parts,
    scale,
    sizing,
    testkit,
)
from benchmarks.common import Results, Row, Settings, Target, load_average, log, machine  # noqa: E402

GROUPS: dict[str, Callable[[Settings, Results], None]] = {
    "cycles": cycles.run,
    "peers": peers.run,
    "http": rest.run,
    "http-parts": rest_parts.run,
    "scale": scale.run,
    "page": page.run,
    "page-traffic": page_traffic.run,
    "testkit": testkit.run,
    "sizing": sizing.run,
    "makespan": makespan.run,
}

#: Groups that run on PostgreSQL: (module, its run(settings, results, dsn)).
PG_GROUPS = ("pg-cycles", "pg-peers", "pg-http", "pg-scale", "pg-sizing", "pg-pooler", "pg-makespan")


class _Postgres:
    """The one PostgreSQL server of a run: started at the first group that needs it, stopped at the end."""

    def __init__(self, stack: contextlib.ExitStack, workdir: str) -> None:
        self.stack, self.workdir, self.dsn = stack, workdir, ""

    def group(self, name: str) -> Callable[[Settings, Results], None]:
        def run(settings: Settings, results: Results) -> None:
            import importlib

            if not self.dsn:
                self.dsn = self.stack.enter_context(pg_common.server(self.workdir))
                results.notes.append(f"PostgreSQL groups: {pg_common.server_version(self.dsn)}")
            module = importlib.import_module(f"benchmarks.{name.replace('-', '_')}")
            module.run(settings, results, self.dsn)

        return run


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit.endswith("/s"):
        return f"{value:,.0f} {unit}"
    if unit in ("us", "ms"):
        return f"{value:,.1f} {unit}"
    return f"{value:.2f} {unit}"


def _cells(row: Row) -> list[str]:
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}x {row.ratio_of}".strip()
    checks = "" if row.dup is None else f"{row.dup} / {row.lost}"
    return [row.group, row.case, row.setting, str(row.procs), _figure(row.value, row.unit), ratio, checks, row.note]


def _verdict(target: Target) -> str:
    word = {True: "yes", False: "NO", None: "n/a"}[target.met]
    return f"{word} ({target.note})" if target.note else word


def table(headers: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(headers), rule, *(fmt(line) for line in lines)])


def render(results: Results, facts: list[tuple[str, str]], command: str, elapsed: float) -> str:
    out = [f"Command: `{command}` ({elapsed:.0f} s)", ""]
    out += [f"- {k}: {v}" for k, v in facts]
    out += [
        "",
        table(
            ["group", "case", "durability", "procs", "figure", "ratio", "dup / lost", "note"],
            [_cells(r) for r in results.rows],
        ),
        "",
        table(
            ["target", "measured", "wanted", "met"],
            [[t.name, t.measured, t.wanted, _verdict(t)] for t in results.targets],
        ),
    ]
    if results.notes:
        out += ["", *(f"- {n}" for n in results.notes)]
    return "\n".join(out)


START, END = "<!-- results: start -->", "<!-- results: end -->"


def write_markdown(path: str, text: str, section: str | None = None) -> None:
    """Put ``text`` between the results markers of ``path`` (the prose around them stays), or write it anew."""
    start, end = (START, END) if section is None else (f"<!-- results {section}: start -->",
                                                       f"<!-- results {section}: end -->")  # fmt: skip
    block = f"{start}\n{text}\n{end}"
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if start in old and end in old:
        head, _, rest = old.partition(start)
        new = head + block + rest.partition(end)[2]
    elif old:
        new = old.rstrip("\n") + f"\n\n{block}\n"
    else:
        new = f"# litecoord benchmarks\n\n{block}\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--runs", type=int, default=None, help="runs per configuration (median reported)")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS) + list(PG_GROUPS), help="groups to run")
    parser.add_argument("--workdir", help="directory for the SQLite files (default: a temporary one)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the results as Markdown")
    parser.add_argument("--section", metavar="NAME", help="the results markers to write between in --markdown")
    args = parser.parse_args(argv)

    runs = args.runs or (1 if args.quick else 3)
    own_dir = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="litecoord-bench-", dir="/tmp") if own_dir else args.workdir
    os.makedirs(workdir, exist_ok=True)
    settings = Settings(quick=args.quick, runs=runs, workdir=workdir)
    results = Results()
    command = "python -m benchmarks.run" + (
        "" if argv is None and len(sys.argv) <= 1 else " " + shlex.join(sys.argv[1:] if argv is None else argv)
    )
    load_at_start = load_average()
    start = time.perf_counter()
    names = args.only or list(GROUPS) + list(PG_GROUPS)
    missing = pg_common.available()
    if missing and any(name in PG_GROUPS for name in names):
        if args.only:
            parser.error(f"the PostgreSQL groups cannot run: {missing}")
        results.notes.append(f"PostgreSQL groups skipped: {missing}")
        names = [name for name in names if name not in PG_GROUPS]
    try:
        with contextlib.ExitStack() as stack:
            postgres = _Postgres(stack, workdir)
            for name in names:
                (postgres.group(name) if name in PG_GROUPS else GROUPS[name])(settings, results)
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - start
    facts = machine(workdir, load_at_start)
    text = render(results, facts, command, elapsed)
    print(text)
    if args.markdown:
        write_markdown(args.markdown, text, args.section)
        log(f"wrote the results into {args.markdown}")
    failed_checks = [r for r in results.rows if (r.dup or 0) > 0 or (r.lost or 0) > 0]
    litecoord_failed = [r for r in failed_checks if "litecoord" in r.case]
    if litecoord_failed:
        log("litecoord handed out an item twice or lost one: see the dup / lost column")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
