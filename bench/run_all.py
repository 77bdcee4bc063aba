"""Run every benchmark script in bench/ and write bench/RESULTS.md.

Every ``bench/*.py`` runs, one after another (never in parallel: they time things), except this
file and helpers whose names start with ``_``; scripts added later are picked up by name. Each
runs in a fresh interpreter from the repository root, with a time limit, and its output is kept
whole in its own section of RESULTS.md.

Scripts report goals with lines of this form on standard output (see ``bench/_common.py``):

    RESULT <name> <value> [<goal>] <met|missed|info>

The goal is one token (``<=5.00x``, ``goal<=5``, ``goal=0``) or ``-``; the summary table at the
top of RESULTS.md collects every such line. A script that exits non-zero or times out is listed
as failed, and this script then exits 1.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
#: Kept by hand: what dominates each figure, read off the scripts' profiles and stage tables.
#: Copied into RESULTS.md under the summary, so the numbers and their reading stay together.
NOTES = BENCH / "NOTES.md"
PACKAGES = (
    "civic311",
    "httpx",
    "httpcore",
    "attrs",
    "cattrs",
    "tenacity",
    "defusedxml",
    "xmltodict",
)
STATUSES = ("met", "missed", "info")


@dataclass
class Result:
    name: str
    value: str
    goal: str
    status: str


@dataclass
class Run:
    script: str
    command: list[str]
    seconds: float = 0.0
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    results: list[Result] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.returncode != 0


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(
        p
        for p in BENCH.glob("*.py")
        if p.name != Path(__file__).name and not p.name.startswith("_")
    )
    if only:
        found = [p for p in found if p.stem in only or p.name in only]
    return found


def parse_results(text: str) -> list[Result]:
    """Every ``RESULT`` line of *text* (tolerant: the status is the last word when it is one of
    met, missed, info; the goal is whatever stands between the value and the status)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "RESULT":
            continue
        status = words[-1] if words[-1] in STATUSES and len(words) >= 4 else "?"
        middle = words[3:-1] if status != "?" else words[3:]
        out.append(Result(words[1], words[2], " ".join(middle) or "-", status))
    return out


def run_script(path: Path, quick: bool, timeout: float) -> Run:
    command = [sys.executable, str(path.relative_to(ROOT))]
    if quick and "--quick" in path.read_text(encoding="utf-8"):
        command.append("--quick")
    run = Run(path.name, command)
    print(f"-> {' '.join(command[1:])}", flush=True)
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        run.returncode, run.stdout, run.stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        run.returncode = None
        run.stdout = _text(exc.stdout)
        run.stderr = _text(exc.stderr) + f"\n[run_all] timed out after {timeout:.0f}s\n"
    run.seconds = time.monotonic() - start
    run.results = parse_results(run.stdout)
    state = "ok" if not run.failed else f"FAILED (exit {run.returncode})"
    print(f"   {state} in {run.seconds:.1f}s, {len(run.results)} RESULT lines", flush=True)
    return run


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- the machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


def machine() -> list[str]:
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        f"- CPU: {cpu_model()}",
        f"- Cores: {os.cpu_count()} logical",
        f"- Memory: {memory()}",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.executable})",
        "- Packages: " + ", ".join(f"{p} {version(p)}" for p in PACKAGES),
        f"- Commit: {git_state()}",
        f"- Load average at start (1/5/15 min): {load}",
    ]


# --- the report -------------------------------------------------------------------------------


def report(runs: list[Run], started: dt.datetime, quick: bool, header: list[str]) -> str:
    out = [
        "# civic311 benchmark results",
        "",
        f"Generated by `bench/run_all.py{' --quick' if quick else ''}` on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')}. Ratios compare civic311 with a baseline "
        "measured in the same run (medians of repeated, interleaved runs); the ratio is the "
        "figure that counts, not absolute time. Shared machine: other work running at the same "
        "time moves absolute figures more than ratios.",
        "",
        "## Machine",
        "",
        *header,
        "",
        "## Summary",
        "",
        "| script | result | value | goal | status |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        for r in run.results:
            status = {"met": "met", "missed": "**missed**", "info": "-"}.get(r.status, r.status)
            goal = r.goal.replace("|", "\\|")
            out.append(f"| {run.script} | `{r.name}` | {r.value} | {goal} | {status} |")
        if run.failed:
            out.append(f"| {run.script} | (script) | exit {run.returncode} | exit 0 | **failed** |")
    met = sum(r.status == "met" for run in runs for r in run.results)
    missed = sum(r.status == "missed" for run in runs for r in run.results)
    failed = [run.script for run in runs if run.failed]
    out += [
        "",
        f"Goals met: {met}; missed: {missed}; scripts failed: {len(failed)}"
        + (f" ({', '.join(failed)})" if failed else "")
        + ".",
        "",
        "| script | seconds | exit |",
        "|---|---|---|",
        *[f"| {run.script} | {run.seconds:.1f} | {run.returncode} |" for run in runs],
        "",
    ]
    if NOTES.exists():
        out += [NOTES.read_text(encoding="utf-8").rstrip(), ""]
    for run in runs:
        out += [
            f"## {run.script}",
            "",
            f"`{' '.join(['python', *run.command[1:]])}` - {run.seconds:.1f}s, exit "
            f"{run.returncode}",
            "",
            "```text",
            run.stdout.rstrip() or "(no output)",
            "```",
            "",
        ]
        if run.stderr.strip():
            out += ["Standard error:", "", "```text", run.stderr.rstrip(), "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--only", nargs="*", help="run only these scripts (by name)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per script (default 300)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the report")
    args = parser.parse_args(argv)

    started = dt.datetime.now(dt.timezone.utc)
    header = machine()
    todo = scripts(args.only)
    print(f"running {len(todo)} benchmark scripts: {', '.join(p.name for p in todo)}")
    runs = [run_script(path, args.quick, args.timeout) for path in todo]
    args.output.write_text(report(runs, started, args.quick, header), encoding="utf-8")

    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown}")
    for run in runs:
        for r in run.results:
            if r.status in ("met", "missed"):
                print(f"  {r.status:<7} {r.name} {r.value} (goal {r.goal})")
        if run.failed:
            print(f"  FAILED  {run.script} (exit {run.returncode})")
    return 1 if any(run.failed for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
