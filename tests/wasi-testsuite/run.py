#!/usr/bin/env python3
"""Runs the official WASI test suite's preview-1 tests through `containerd-shim-wasm-v1 run`,
one engine plugin at a time, and prints the pass counts per engine and language.

The suite is not vendored (no registry ships it): fetch it by hand, then
    git clone -b prod/testsuite-base https://github.com/WebAssembly/wasi-testsuite SUITE
    make wasi-testsuite WASI_TESTSUITE=SUITE     (or: run.py --suite SUITE ...)

Each test is `<name>.wasm` with an optional `<name>.json` beside it, read as the suite's own
runner reads it: `args`, `env`, `root` (a directory, copied to a fresh temporary directory
and preopened as guest `/`), `exit_code` (default 0), and `stdout` / `stderr` (compared as a
prefix of the stream). Standard input is an empty pipe.

With --p3, the Rust `wasm32-wasip3` tests instead (WASI 0.3 components), whose specs are a
list of operations: those made of `run` (args, env), `write` to stdin, `read` from stdout
or stderr (compared as a prefix, in the order written) and `wait` (exit code) run the same
way, fed their whole stdin at once; the others (HTTP servers and requests, sockets, `kill`,
a served `world`) are listed as not run.

Exit status: 0 when every test passed on every engine run, 1 otherwise.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

LANGS = ["c", "rust", "assemblyscript"]
SPEC_KEYS = {"args", "env", "root", "exit_code", "stdout", "stderr"}
P3_OPERATIONS = {"run", "wait", "read", "write"}


def p3_spec(spec):
    """A wasip3 spec as a preview-1 one (plus `stdin`), or None with the reason it is not run."""
    operations = spec.get("operations", [{"type": "run"}, {"type": "wait"}])
    others = sorted({o["type"] for o in operations} - P3_OPERATIONS)
    if others or "world" in spec:
        return None, f"needs {', '.join(others) or 'a served world ' + spec['world']}"
    run = next((o for o in operations if o["type"] == "run"), {})
    wait = next((o for o in operations if o["type"] == "wait"), {})
    out = {"args": run.get("args", []), "env": run.get("env", {}), "exit_code": wait.get("exit_code", 0)}
    if spec.get("root"):
        out["root"] = spec["root"]
    for stream in ("stdout", "stderr"):
        reads = [o["payload"] for o in operations if o["type"] == "read" and o.get("id") == stream]
        if reads:
            out[stream] = "".join(reads)
    out["stdin"] = "".join(o["payload"] for o in operations if o["type"] == "write" and o.get("id") == "stdin")
    return out, None


def install_plugins(plugin_dir: Path, engines, engine_dir: Path) -> Path:
    """Copies the plugins into a directory the shim trusts and returns a shim config naming it."""
    for engine in engines:
        src = plugin_dir / f"libengine_{engine}.so"
        if not src.is_file():
            sys.exit(f"plugin not built: {src} (make plugin-{engine})")
        shutil.copy(src, engine_dir / f"{engine}.so")
        os.chmod(engine_dir / f"{engine}.so", 0o755)
    config = engine_dir / "shim.toml"
    config.write_text(f'engine_dirs = ["{engine_dir}"]\n')
    return config


def load_p3_tests(suite: Path, pattern):
    tests, not_run = [], []
    for spec_path in sorted((suite / "tests" / "rust" / "testsuite" / "wasm32-wasip3").glob("*.json")):
        # manifest.json describes the directory; it is not a test.
        if spec_path.stem == "manifest" or (pattern and pattern not in spec_path.stem):
            continue
        spec, reason = p3_spec(json.loads(spec_path.read_text()))
        if spec is None:
            not_run.append(f"{spec_path.stem}: {reason}")
        else:
            tests.append(("rust", spec_path.with_suffix(".wasm"), spec))
    return tests, not_run


def load_tests(suite: Path, langs, pattern):
    tests = []
    for lang in langs:
        for wasm in sorted((suite / "tests" / lang / "testsuite" / "wasm32-wasip1").glob("*.wasm")):
            if pattern and pattern not in wasm.stem:
                continue
            spec_path = wasm.with_suffix(".json")
            spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
            if set(spec) - SPEC_KEYS:
                print(f"WARNING {lang}/{wasm.stem}: keys not understood: {sorted(set(spec) - SPEC_KEYS)}")
            tests.append((lang, wasm, spec))
    return tests


def first_line(text: str) -> str:
    """The first non-empty line of stderr; for a Rust panic, its location and message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if "panicked at" in lines[0] and len(lines) > 1:
        where = lines[0].split("panicked at", 1)[1].strip().rstrip(":")
        return f"panic {where}: {lines[1]}"[:300]
    return lines[0][:300]


def run_one(shim, engine, wasm: Path, spec, timeout, env):
    with tempfile.TemporaryDirectory(prefix="wasi-testsuite-") as tmp:
        argv = [shim, "run", "--engine", engine]
        for key, value in spec.get("env", {}).items():
            argv += ["--env", f"{key}={value}"]
        if spec.get("root"):
            root = Path(tmp) / Path(spec["root"]).name
            shutil.copytree(wasm.parent / spec["root"], root, symlinks=True)
            argv += ["--dir", f"{root}:/"]
        # Everything after the module goes to the program.
        argv += [str(wasm)] + list(spec.get("args", []))
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(input=spec.get("stdin", "").encode(), timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = "timeout"
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    problems = []
    if code != spec.get("exit_code", 0):
        problems.append(f"exit expected {spec.get('exit_code', 0)} got {code}")
    for stream, got in (("stdout", out), ("stderr", err)):
        want = spec.get(stream)
        if want is not None and got[:len(want)] != want:
            problems.append(f"{stream} expected {want!r} got {got[:len(want) + 40]!r}")
    return problems, err


def main():
    target = Path(os.environ.get("TARGET_DIR", Path(__file__).resolve().parents[2] / "target"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", required=True, type=Path, help="a checkout of wasi-testsuite, prod/testsuite-base")
    ap.add_argument("--engine", action="append", help="an engine to run (default: every plugin built)")
    ap.add_argument("--lang", action="append", choices=LANGS, help="only these languages' tests")
    ap.add_argument("-k", dest="pattern", help="only tests whose name contains this")
    ap.add_argument("--shim", default=str(target / "release" / "containerd-shim-wasm-v1"))
    ap.add_argument("--plugins", type=Path, default=target / "release", help="where libengine_*.so are")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per test")
    ap.add_argument("--p3", action="store_true", help="the Rust wasm32-wasip3 tests (WASI 0.3) instead")
    a = ap.parse_args()
    if not (a.suite / "tests").is_dir():
        sys.exit(f"{a.suite} is not a wasi-testsuite checkout (no tests/ in it); see --help")
    engines = a.engine or sorted(p.name[len("libengine_"):-3] for p in a.plugins.glob("libengine_*.so"))
    if not engines:
        sys.exit(f"no engine plugin in {a.plugins}: run make plugins")
    langs = ["rust"] if a.p3 else a.lang or LANGS
    if a.p3:
        tests, not_run = load_p3_tests(a.suite, a.pattern)
        for line in not_run:
            print(f"NOT RUN {line}")
    else:
        tests = load_tests(a.suite, langs, a.pattern)

    summary = {}
    with tempfile.TemporaryDirectory(prefix="wasi-testsuite-engines-") as engine_dir:
        config = install_plugins(a.plugins, engines, Path(engine_dir))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CONTAINERD_SHIM_WASM_CONFIG": str(config),
               "RUST_LOG": "error"}
        for engine in engines:
            counts = defaultdict(lambda: [0, 0])  # language -> [passed, run]
            for lang, wasm, spec in tests:
                problems, err = run_one(a.shim, engine, wasm, spec, a.timeout, env)
                counts[lang][1] += 1
                if problems:
                    print(f"FAIL {engine} {lang}/{wasm.stem}: {'; '.join(problems)} | {first_line(err)}", flush=True)
                else:
                    counts[lang][0] += 1
            summary[engine] = counts

    print(f"\n{'engine':10} {'total':>7} " + " ".join(f"{lang:>15}" for lang in langs))
    for engine, counts in summary.items():
        passed, run = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
        print(f"{engine:10} {f'{passed}/{run}':>7} " + " ".join(f"{f'{counts[l][0]}/{counts[l][1]}':>15}" for l in langs))
    return 0 if all(c[0] == c[1] for counts in summary.values() for c in counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
