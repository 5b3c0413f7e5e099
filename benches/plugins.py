#!/usr/bin/env python3
"""The same plugin in three languages, side by side (issue 20): `monthly_activity`
(transactions, debits and credits per account and month) written in Rust with the kit
(examples/plugin-monthly-activity), in Python with componentize-py
(examples/plugin-python-monthly) and in JavaScript with componentize-js
(examples/plugin-js-monthly), each run by ferry on the same demo platform.

    python3 benches/plugins.py [--scale 1] [--rounds 5] [--ferry target/release/ferry]

One warm-up run per language compiles its component into a fresh plugin cache (not
timed); then N rounds, each running the three once, in an order that rotates every round
so that no language always runs first or last on a busy machine. Per language it prints
records, rows read (the transactions before the as-of, counted in SQL), wall seconds of
`ferry run` (median and min-max), rows/s at the median, the plugin's own seconds (from
the manifest's timings) and its peak linear memory (ditto), and the component's size.
The load average is printed before and after: the figures are only comparable on a quiet
machine. Figures are printed, never asserted.

Tools, as tests/run.sh installs them: componentize-py at $FERRY_COMPONENTIZE_PY (else
target/componentize/bin/componentize-py), componentize-js under $FERRY_JS_MODULES (else
target/js). The Python and JavaScript components are built once and cached in the work
directory by the sha256 of their sources, the WIT and the tool's version.
"""

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import AS_OF, AS_OF_MICROS, ROOT, ferry_bin, platform  # noqa: E402

LANGS = ["rust", "python", "js"]
WIT = ROOT / "wit/ferry.wit"
COMPUTING = ROOT / "examples/plugin-python-monthly/wit/computing.wit"


def fail(message):
    sys.exit(f"plugins.py: {message}")


def cached(work, lang, inputs, build):
    """The component built by `build(out)`, cached by the sha256 of `inputs` (bytes)."""
    h = hashlib.sha256()
    for data in inputs:
        h.update(data)
    wasm = work / "components" / f"monthly_activity-{lang}-{h.hexdigest()[:16]}.wasm"
    if not wasm.is_file():
        wasm.parent.mkdir(parents=True, exist_ok=True)
        partial = wasm.with_suffix(f".{os.getpid()}.partial")
        started = time.perf_counter()
        build(partial)
        partial.rename(wasm)
        print(f"built the {lang} component in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return wasm


def rust_component(_work):
    wasm = ROOT / "target/wasm-plugins/wasm32-wasip2/release/ferry_example_monthly_activity.wasm"
    if not wasm.is_file():
        fail(f"{wasm} is missing: ferry's build (cargo build) builds the example plugins there")
    return wasm


def python_component(work):
    tool = Path(os.environ.get("FERRY_COMPONENTIZE_PY") or ROOT / "target/componentize/bin/componentize-py")
    if not tool.is_file():
        fail(f"componentize-py is missing at {tool}: run tests/run.sh, or pip install -r tests/py/componentize.txt")
    version = subprocess.run([tool, "--version"], capture_output=True, check=True).stdout
    example = ROOT / "examples/plugin-python-monthly"

    def build(out):
        wit = work / "wit-py"
        wit.mkdir(parents=True, exist_ok=True)
        (wit / "ferry.wit").write_text(WIT.read_text() + COMPUTING.read_text())
        cmd = [tool, "-d", wit, "-w", "computing-plugin", "componentize", "app", "-p", example, "-o", out]
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        shutil.rmtree(wit, ignore_errors=True)
        if done.returncode != 0:
            fail(f"componentize-py failed:\n{done.stdout}{done.stderr}")

    return cached(work, "python", [version, (example / "app.py").read_bytes(), WIT.read_bytes(), COMPUTING.read_bytes()], build)


def js_component(work):
    modules = Path(os.environ.get("FERRY_JS_MODULES") or ROOT / "target/js")
    package = modules / "node_modules/@bytecodealliance/componentize-js/package.json"
    if not package.is_file():
        fail(f"componentize-js is missing under {modules}: run tests/run.sh, or npm install --ignore-scripts there")
    example = ROOT / "examples/plugin-js-monthly"

    def build(out):
        # The script resolves componentize-js from where it sits: beside node_modules.
        script = modules / f"build-bench-{os.getpid()}.mjs"
        shutil.copy(example / "build.mjs", script)
        try:
            env = {**os.environ, "FERRY_JS_EXAMPLE": str(example)}
            done = subprocess.run(["node", script, out.with_suffix(".wasm")], capture_output=True, text=True, env=env)
        finally:
            script.unlink()
        if done.returncode != 0:
            fail(f"componentize-js failed:\n{done.stdout}{done.stderr}")
        out.with_suffix(".wasm").rename(out)
        shutil.rmtree(out.parent / "wit", ignore_errors=True)

    inputs = [package.read_bytes(), (example / "app.js").read_bytes(), (example / "build.mjs").read_bytes(), WIT.read_bytes(), COMPUTING.read_bytes()]
    return cached(work, "js", inputs, build)


def job_file(work, dir, lang, wasm):
    job, out = work / f"job-{lang}.toml", work / f"out-{lang}"
    job.write_text(
        f'[snapshot]\nname = "plugins-{lang}"\nas_of = "{AS_OF}"\n[source]\nsqlite = "{dir}/platform.db"\n'
        f'[output]\ndir = "{out}"\nformat = "avro"\ngzip = false\narchive = "none"\n\n'
        f'[[resource]]\nname = "monthly_activity"\nplugin = "{wasm}"\nmonths = "all"\n'
    )
    return job, out


def run_once(ferry, job, out, cache):
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([str(ferry), "run", "--progress", "none", str(job)], capture_output=True, text=True, env={**os.environ, "FERRY_CACHE_DIR": str(cache)})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        fail(f"ferry run {job} failed:\n{done.stderr}")
    snap = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    r = json.loads((snap / "manifest.json").read_text())["resources"][0]
    t = r["timings"]
    return {"wall": wall, "records": r["records"], "plugin": t["plugin_seconds"], "memory": t.get("plugin_memory_bytes")}


def load():
    return Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3


def report(results, rows, sizes):
    print(f"\nmonthly_activity over {rows:,} transactions (rows read); wall = `ferry run`, plugin = the manifest's plugin_seconds")
    print(f"| {'plugin':<8} | {'records':>8} | {'rows read':>10} | {'wall s median':>13} | {'wall s min-max':>14} | {'rows/s':>10} | {'plugin s':>8} | {'peak memory':>11} | {'component':>9} |")
    print("|" + "|".join("-" * 10 if i == 0 else "-" * (w - 1) + ":" for i, w in enumerate([10, 10, 12, 15, 16, 12, 10, 13, 11])) + "|")
    for lang in LANGS:
        runs = results[lang]
        walls = [r["wall"] for r in runs]
        median = statistics.median(walls)
        plugin = statistics.median(r["plugin"] for r in runs)
        records = {r["records"] for r in runs}
        memory = max((r["memory"] or 0) for r in runs) / 2**20
        spread = f"{min(walls):.2f}-{max(walls):.2f}"
        print(
            f"| {lang:<8} | {','.join(map(str, records)):>8} | {rows:>10,} | {median:>13.2f} | {spread:>14} | {rows / median:>10,.0f} "
            f"| {plugin:>8.2f} | {memory:>7.1f} MiB | {sizes[lang] / 2**20:>5.1f} MiB |"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="demo platform scale (1 = about 100k transactions)")
    ap.add_argument("--rounds", type=int, default=5, help="timed runs per language, alternated")
    ap.add_argument("--ferry", type=Path, help="the ferry binary (default: cargo build --release)")
    ap.add_argument("--work", type=Path, default=ROOT / "target/bench-plugins", help="platform, components and outputs")
    args = ap.parse_args()
    if args.rounds < 1:
        fail(f"--rounds {args.rounds}: use 1 or more")
    ferry = args.ferry.resolve() if args.ferry else ferry_bin()
    if not ferry.is_file():
        fail(f"no ferry binary at {ferry}: build it with `cargo build --release`")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    scale = int(args.scale) if args.scale == int(args.scale) else args.scale
    dir = platform(ferry, work, scale)
    components = {"rust": rust_component(work), "python": python_component(work), "js": js_component(work)}
    sizes = {lang: wasm.stat().st_size for lang, wasm in components.items()}
    jobs = {lang: job_file(work, dir, lang, wasm) for lang, wasm in components.items()}
    with sqlite3.connect(dir / "platform.db") as db:
        rows = db.execute("SELECT count(*) FROM transactions WHERE transacted_at < ?", (AS_OF_MICROS,)).fetchone()[0]

    cache = work / "plugin-cache"
    shutil.rmtree(cache, ignore_errors=True)
    print(f"load average before: {' '.join(load())} (1, 5, 15 min; {os.cpu_count()} cores)", file=sys.stderr)
    for lang in LANGS:
        warm = run_once(ferry, *jobs[lang], cache)
        print(f"warm-up {lang}: {warm['wall']:.2f}s (compiles the component into the cache)", file=sys.stderr)
    results = {lang: [] for lang in LANGS}
    for round in range(args.rounds):
        order = LANGS[round % 3 :] + LANGS[: round % 3]
        for lang in order:
            results[lang].append(run_once(ferry, *jobs[lang], cache))
        print(f"round {round + 1}/{args.rounds}: " + ", ".join(f"{lang} {results[lang][-1]['wall']:.2f}s" for lang in order), file=sys.stderr)
    report(results, rows, sizes)
    print(f"\nscale {scale}, {args.rounds} rounds; load average after: {' '.join(load())} (1, 5, 15 min; {os.cpu_count()} cores)")
    # The compiled components (~70 MB) and the outputs; the platform and the built
    # components stay for the next run.
    shutil.rmtree(cache, ignore_errors=True)
    for lang in LANGS:
        shutil.rmtree(jobs[lang][1], ignore_errors=True)


if __name__ == "__main__":
    main()
