"""Import time: ``import civic311`` against ``import httpx``, each in fresh interpreters.

The commands run in turn, interleaved, each in a new process: chiefly
``python -c pass`` (the interpreter alone), ``python -c "import httpx"`` and
``python -c "import civic311"``, each also with click/rich/pygments hidden (as when civic311 is
installed without its [cli] extra: httpx then skips its own command line). Wall-clock medians
over the runs give the whole-process time of each; the goals compare civic311's whole process
with httpx's (<= 1.4x, issue 13), with and without them, and the import alone (process minus
bare interpreter) is shown beside it. For scale: the declared dependencies imported together,
and the first use (import, then build a client), where what civic311 loads lazily is paid.

Bytecode: this environment may set PYTHONDONTWRITEBYTECODE, which leaves an editable install of
civic311 without .pyc files (compiled from source on every start) while httpx's wheel has them.
That is not what users see, so the timed runs use a private PYTHONPYCACHEPREFIX, warmed first,
for every module alike. One extra figure shows the start-up without any bytecode cache.

``python -X importtime`` then lists the modules civic311 imports that httpx does not, by their
own time (median over runs), grouped by top-level package.

    .venv/bin/python bench/import_time.py [--quick] [--repeats N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from _common import banner, median, paired_ratio, parse_args, result

GOAL = 1.4
#: No single interpreter start may take longer than this.
TIMEOUT = 30.0
BUDGET = 90.0

#: httpx imports its command line (click, rich, pygments) whenever they are installed, and
#: civic311's [cli] extra installs them. Users of the library alone do not have them: this
#: prefix hides them (``import click`` raises ImportError, as when absent).
NO_CLI = "import sys\nfor name in ('click', 'rich', 'pygments'):\n    sys.modules[name] = None\n"

#: The runtime dependencies civic311 declares beside httpx, imported alone: what importing
#: all of them eagerly would cost, for scale (civic311 itself loads only attrs at import).
DEPS = "import httpx, attrs, cattrs, tenacity, defusedxml.ElementTree"

#: First use: a client built, as a program does right after the import. httpx's client builds
#: its transport (httpcore, and trio when installed); civic311's builds its httpx client too.
FIRST_USE_HTTPX = "import httpx\nhttpx.Client(base_url='https://city.example/open311/v2')"
FIRST_USE_CIVIC311 = "import civic311\ncivic311.Client('https://city.example/open311/v2')"

COMMANDS = {
    "bare interpreter": "pass",
    "import httpx": "import httpx",
    "import civic311": "import civic311",
    "no cli: httpx": NO_CLI + "import httpx",
    "no cli: civic311": NO_CLI + "import civic311",
    "deps alone": DEPS,
    "no cli: deps alone": NO_CLI + DEPS,
    "first use: httpx": FIRST_USE_HTTPX,
    "first use: civic311": FIRST_USE_CIVIC311,
}


def environment(prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = prefix
    return env


def run(code: str, env: dict[str, str], *flags: str) -> tuple[float, str]:
    """Seconds one fresh ``python -c code`` takes, and its stderr."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"python -c {code!r} failed:\n{done.stderr}")
    return took, done.stderr


def parse_importtime(text: str) -> dict[str, tuple[int, int]]:
    """``-X importtime`` output → {module: (self us, cumulative us)}."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        out[name.strip()] = (int(own), int(cumulative))
    return out


def added_modules(env: dict[str, str], runs: int) -> None:
    """Print the modules civic311 adds beyond httpx, by median own time."""
    own: dict[str, list[int]] = defaultdict(list)
    cumulative: dict[str, list[int]] = defaultdict(list)
    baseline: set[str] = set()
    for _ in range(runs):
        _, text = run("import httpx", env, "-X", "importtime")
        baseline |= set(parse_importtime(text))
        _, text = run("import civic311", env, "-X", "importtime")
        for name, (self_us, cum_us) in parse_importtime(text).items():
            own[name].append(self_us)
            cumulative[name].append(cum_us)
    extra = {name: median(own[name]) for name in own if name not in baseline}
    total = sum(extra.values())
    print(f"\n-- modules civic311 imports beyond httpx: {len(extra)}, {total / 1e3:.1f}ms own time")
    print("   (median of -X importtime over the runs; own time, then cumulative)")
    for name, us in sorted(extra.items(), key=lambda kv: -kv[1])[:20]:
        print(f"   {us / 1e3:>7.2f}ms {median(cumulative[name]) / 1e3:>8.2f}ms  {name}")
    packages: dict[str, float] = defaultdict(float)
    for name, us in extra.items():
        top = name.split(".")[0]
        packages[top if top != "civic311" else name.rsplit(".", 1)[0]] += us
    print("\n   by package (own time summed):")
    for name, us in sorted(packages.items(), key=lambda kv: -kv[1])[:12]:
        print(f"   {us / 1e3:>7.2f}ms  {name}")
    ours = {name: us for name, us in extra.items() if name.split(".")[0] == "civic311"}
    print(f"\n   civic311's own modules ({len(ours)}), biggest first (own time):")
    for name, us in sorted(ours.items(), key=lambda kv: -kv[1])[:10]:
        print(f"   {us / 1e3:>7.2f}ms  {name}")
    result("import_time.added_modules_ms", total / 1e3, "ms", None)
    result("import_time.civic311_modules_ms", sum(ours.values()) / 1e3, "ms", None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    runs = args.repeats or (10 if args.quick else 20)
    banner(f"import time: fresh interpreters, {runs} runs of each command, interleaved")
    with tempfile.TemporaryDirectory(prefix="civic311-pyc-") as prefix:
        env = environment(prefix)
        for code in COMMANDS.values():  # warm the bytecode cache (twice: write, then verify)
            run(code, env)
            run(code, env)
        commands = dict(COMMANDS)
        samples: dict[str, list[float]] = {label: [] for label in commands}
        deadline = time.monotonic() + BUDGET
        labels = list(commands)
        for index in range(runs):
            shift = index % len(labels)
            for label in labels[shift:] + labels[:shift]:
                samples[label].append(run(commands[label], env)[0])
            if time.monotonic() > deadline and index >= 9:
                print(f"   (time budget reached after {index + 1} runs)")
                break

        print(f"\n   {'command':<34}{'median':>10}  spread")
        for label, values in samples.items():
            print(
                f"   {label:<34}{median(values) * 1e3:>8.1f}ms  "
                f"min {min(values) * 1e3:.1f} / max {max(values) * 1e3:.1f} ms, n={len(values)}"
            )
        bare = median(samples["bare interpreter"])
        ours, theirs = median(samples["import civic311"]), median(samples["import httpx"])
        print(
            f"\n   import alone (process minus bare interpreter): civic311 "
            f"{(ours - bare) * 1e3:.1f}ms, httpx {(theirs - bare) * 1e3:.1f}ms"
        )
        # The goals use paired ratios (the median of each round's ratio): on a shared machine a
        # burst of load hits both commands of a round alike, which a ratio of medians does not
        # cancel.
        met = result(
            "import_time.process_vs_httpx",
            paired_ratio(samples["import civic311"], samples["import httpx"]),
            "x",
            GOAL,
        )
        result("import_time.import_only_vs_httpx", (ours - bare) / (theirs - bare), "x", None)
        result("import_time.civic311_process_ms", ours * 1e3, "ms", None)
        bare_ours, bare_theirs = (
            median(samples["no cli: civic311"]),
            median(samples["no cli: httpx"]),
        )
        print(
            "\n   without click/rich/pygments installed (httpx then skips its CLI; users of the "
            f"library alone):\n   civic311 {bare_ours * 1e3:.1f}ms, httpx {bare_theirs * 1e3:.1f}ms"
        )
        met_no_cli = result(
            "import_time.process_vs_httpx_no_cli",
            paired_ratio(samples["no cli: civic311"], samples["no cli: httpx"]),
            "x",
            GOAL,
        )
        met = met and met_no_cli
        deps, deps_bare = median(samples["deps alone"]), median(samples["no cli: deps alone"])
        print(
            f"\n   httpx + attrs + cattrs + tenacity + defusedxml imported together: "
            f"{deps * 1e3:.1f}ms ({deps_bare * 1e3:.1f}ms without click/rich)"
        )
        result(
            "import_time.deps_alone_vs_httpx",
            paired_ratio(samples["deps alone"], samples["import httpx"]),
            "x",
            None,
        )
        result(
            "import_time.deps_alone_vs_httpx_no_cli",
            paired_ratio(samples["no cli: deps alone"], samples["no cli: httpx"]),
            "x",
            None,
        )
        first_ours, first_theirs = (
            median(samples["first use: civic311"]),
            median(samples["first use: httpx"]),
        )
        print(
            "\n   first use (import, then build a client: what loads lazily is paid here): "
            f"civic311 {first_ours * 1e3:.1f}ms, httpx {first_theirs * 1e3:.1f}ms"
        )
        result(
            "import_time.first_client_vs_httpx",
            paired_ratio(samples["first use: civic311"], samples["first use: httpx"]),
            "x",
            None,
        )

        added_modules(env, 5 if args.quick else 9)

    cold_env = dict(os.environ)
    cold_env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="civic311-nopyc-") as empty:
        cold_env["PYTHONPYCACHEPREFIX"] = empty  # an empty cache that is never written
        cold = median([run("import civic311", cold_env)[0] for _ in range(3)])
    print(f"\n   without any bytecode cache (all compiled): import civic311 {cold * 1e3:.0f}ms")
    if not met:
        print(f"\nMISSED: civic311 takes over {GOAL}x httpx's start-up; see the modules above.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
