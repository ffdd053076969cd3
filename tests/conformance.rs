//! The conformance corpus through the shim's `run` command, for every engine plugin
//! built here (`support::engines`): stdio, args, env, exit codes, files, clocks, random,
//! traps, entry functions, memory caps, and a long-running module stopped by signals.
//! The same definitions run for each engine; what an engine does not support is
//! decided by the capabilities it declares, never silently. Engine-specific features
//! (wasmtime's components, text format, precompilation, settings) are tested at the end.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::cases::CASES;
use support::engine::{Engine, each_engine};
use support::{Node, Ran, corpus, corpus_text, engines, path_str, wasmtime_plugin};

fn node(name: &str) -> Node {
    let node = Node::new(name);
    node.install("wasmtime", &wasmtime_plugin());
    node
}

fn run(node: &Node, args: &[&str]) -> support::Ran {
    let mut all = vec!["run", "--engine", "wasmtime"];
    all.extend_from_slice(args);
    node.run(&all)
}

/// The shared cases (`support::cases`): stdout, stderr, args, exit codes from
/// `proc_exit` and from returning, clocks, random, memory growth, traps.
#[test]
fn the_shared_cases() {
    each_engine("cases", |e| {
        for case in CASES {
            let program = corpus(case.program);
            let mut args = vec![path_str(&program)];
            args.extend_from_slice(case.args);
            let ran = e.run(&args);
            let what = format!("{} {} {:?}", e.name, case.program, case.args);
            assert_eq!(ran.code, Some(case.status), "{what}: {}", ran.stderr);
            assert_eq!(ran.stdout, case.expected_stdout(&format!("{}.wasm", case.program)), "{what}");
            if let Some(fragment) = case.stderr {
                assert!(ran.stderr.contains(fragment), "{what}: {}", ran.stderr);
            }
        }
    });
}

/// Everything after MODULE is the program's, unchanged: the shim's own options,
/// containerd's flags (which once made the binary act as a shim) and `--`.
#[test]
fn arguments_after_the_module_are_the_programs() {
    let node = node("program-args");
    let args =
        ["-e", "x", "--engine", "wasmer", "-v", "-id", "3", "-socket", "s", "-debug", "--", "--env", "A=1"];
    let module = corpus("args");
    let ran = run(&node, &[&[path_str(&module)][..], &args].concat());
    ran.assert_ok();
    let expected: String = std::iter::once("args.wasm")
        .chain(args)
        .enumerate()
        .map(|(i, a)| format!("argv[{i}]={a}\n"))
        .collect();
    assert_eq!(ran.stdout, expected);
    // More than one argv string may hold (128 KiB) in all: the engine process gets its
    // request another way.
    let many: Vec<String> = (0..2000).map(|i| format!("{i:0>100}")).collect();
    let long = run(
        &node,
        &[&[path_str(&module)][..], &many.iter().map(String::as_str).collect::<Vec<_>>()].concat(),
    );
    long.assert_ok();
    assert_eq!(long.stdout.lines().count(), 2001, "{}", long.stderr);
    assert!(
        !ran.stderr.contains("DEBUG"),
        "-debug after the module turned on the shim's debug log: {}",
        ran.stderr
    );

    // A misspelt option before the module: one line saying so, not "cannot open module".
    let ran = node.run(&["run", "--engin", "wasmtime", path_str(&module)]);
    assert_eq!(ran.code, Some(125), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("unknown option --engin") && ran.stderr.contains("before MODULE"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(ran.processes_left().is_empty(), "left: {:?}", ran.processes_left());
}

#[test]
fn env_is_only_what_is_given() {
    each_engine("env", |e| {
        let ran = e.run(&["--env", "GREETING=hi there", "--env", "EMPTY=", path_str(&corpus("env"))]);
        ran.assert_ok();
        assert_eq!(ran.stdout, "GREETING=hi there\nEMPTY=\n", "{}: only the given environment", e.name);
    });
}

#[test]
fn stdin_reaches_the_program() {
    each_engine("stdin", |e| {
        let input = b"line one\nline two\n".repeat(1000);
        let ran = e.node.run_with_stdin(&["run", "--engine", e.name, path_str(&corpus("stdin"))], &input);
        ran.assert_ok();
        assert_eq!(ran.stdout.as_bytes(), input.as_slice(), "{}", e.name);
        // Polled, /dev/null is readable (WasmEdge's epoll refused it: EPERM).
        let ran = e.run(&[path_str(&corpus("poll_stdin"))]);
        assert_eq!(
            (ran.code, ran.stdout.as_str()),
            (Some(0), "stdin readable\n"),
            "{}: {}",
            e.name,
            ran.stderr
        );
        // And stdout on /dev/null stays writable (the program checks its write).
        let (mut shim, _) = e.node.marked_shim();
        let program = corpus("poll_stdin");
        let args = ["run", "--engine", e.name, path_str(&program)];
        let status = shim.args(args).stdin(Stdio::null()).stdout(Stdio::null()).status().unwrap();
        assert_eq!(status.code(), Some(0), "{}: stdout on /dev/null", e.name);
    });
}

#[test]
fn files_in_a_preopened_directory() {
    each_engine("files", |e| {
        let data = e.node.root().join("data");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("existing.txt"), "from the host\n").unwrap();
        let dir = format!("{}:/data", data.display());
        let ran = e.run(&["--dir", &dir, path_str(&corpus("files")), "/data"]);
        ran.assert_ok();
        let mut lines: Vec<&str> = ran.stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            ["entry: existing.txt", "entry: note.txt", "read back: written by wasm"],
            "{}",
            e.name
        );
        assert_eq!(fs::read_to_string(data.join("note.txt")).unwrap(), "written by wasm\n");

        // Without the preopen the program cannot reach the directory.
        let ran = e.run(&[path_str(&corpus("files")), "/data"]);
        assert_eq!(ran.code, Some(3), "{}: {}", e.name, ran.stderr);
    });
}

#[test]
fn a_trap_is_an_error_with_its_message() {
    each_engine("trap", |e| {
        let ran = e.run(&[path_str(&corpus("trap"))]);
        ran.assert_error(134, &[&format!("{} run failed (trap)", e.name), "unreachable"]);
    });
}

#[test]
fn entry_functions() {
    each_engine("entry", |e| {
        let entry = corpus("entry");
        assert_eq!(e.run(&["--entry", "answer", path_str(&entry)]).code, Some(42), "{}", e.name);
        // A reactor's `_initialize` runs first, once (the Wasmer and WAMR plugins lost it).
        let reactor = corpus("reactor");
        for (entry, status) in [("answer", 42), ("_initialize", 0)] {
            let ran = e.run(&["--entry", entry, path_str(&reactor)]);
            assert_eq!(ran.code, Some(status), "{} --entry {entry}: {}", e.name, ran.stderr);
        }
        e.run(&["--entry", "nope", path_str(&entry)])
            .assert_error(126, &["the module exports no function `nope`"]);
        // Checked once for every engine (abi::plugin::entry): WAMR called the first with
        // a zero for its parameter and wrote three results into room for two.
        for bad in ["takes_param", "three_results"] {
            e.run(&["--entry", bad, path_str(&entry)]).assert_error(
                126,
                &[&format!("entry function `{bad}` must take no parameters and return nothing or an i32")],
            );
        }
    });
}

#[test]
fn memory_cap_from_settings() {
    each_engine("memory", |e| {
        let grow = corpus("grow");
        if !e.has("memory-limit") {
            let capped = e.run(&["--setting", "max_memory_bytes=1048576", path_str(&grow)]);
            capped.assert_error(125, &[&format!("invalid {} settings", e.name)]);
            return;
        }
        assert_eq!(e.run(&[path_str(&grow)]).code, Some(100), "{}: no cap: grows to 100 pages", e.name);
        let capped = e.run(&["--setting", "max_memory_bytes=1048576", path_str(&grow)]);
        assert_eq!(capped.code, Some(16), "{}: 1 MiB cap = 16 pages: {}", e.name, capped.stderr);
        // Whole pages on every engine (abi::plugin::MemoryCap): 1.5 pages allow one.
        let capped = e.run(&["--setting", "max_memory_bytes=100000", path_str(&grow)]);
        assert_eq!(capped.code, Some(1), "{}: 100000 bytes = 1 page: {}", e.name, capped.stderr);
        // Less than a page is a bad setting, said in one line (Wasmer took it as 0 pages).
        for too_small in ["0", "65535"] {
            e.run(&["--setting", &format!("max_memory_bytes={too_small}"), path_str(&grow)]).assert_error(
                125,
                &[&format!(
                    "invalid {} settings: max_memory_bytes = {too_small} is less than one WebAssembly page",
                    e.name
                )],
            );
        }
        // The config file's [engines.NAME] table is the default.
        e.node.write_config(&format!("[engines.{}]\nmax_memory_bytes = 2097152\n", e.name));
        assert_eq!(e.run(&[path_str(&grow)]).code, Some(32), "{}", e.name);
    });
}

#[test]
fn unsupported_kinds_are_refused_by_capability() {
    each_engine("kinds", |e| {
        let has = |cap: &str| e.has(cap);
        let text = e.run(&[path_str(&corpus_text("exit42"))]);
        if has("text-format") {
            assert_eq!(text.code, Some(42), "{}", e.name);
            // A syntax error is one line that says where.
            let bad = e.node.root().join("bad.wat");
            std::fs::write(&bad, "(module\n  (func (export \"_start\")\n    (i32.const)))\n").unwrap();
            let ran = e.run(&[path_str(&bad)]);
            ran.assert_error(126, &["text format: ", "at line 3, column"]);
            assert_eq!(ran.stderr.lines().count(), 1, "{}: {}", e.name, ran.stderr);
        } else {
            text.assert_error(
                126,
                &[&format!("the {} engine does not support the WebAssembly text format", e.name)],
            );
        }
        let component = e.run(&[path_str(&corpus("component"))]);
        if has("components") {
            component.assert_ok();
        } else {
            component.assert_error(126, &[&format!("the {} engine does not support components", e.name)]);
        }
    });
}

// wasmtime-specific features.

#[test]
fn text_format_and_components() {
    let node = node("wt-text");
    assert_eq!(run(&node, &[path_str(&corpus_text("exit42"))]).code, Some(42));
    run(&node, &[path_str(&corpus("component"))]).assert_ok();
    run(&node, &[path_str(&corpus_text("component"))]).assert_ok();
    run(&node, &["--entry", "x", path_str(&corpus("component"))])
        .assert_error(126, &["an entry function (`x`) applies to core modules only"]);
}

#[test]
fn bad_settings_are_refused() {
    let node = node("wt-settings");
    let hello = corpus("hello");
    run(&node, &["--setting", "opt_levle=none", path_str(&hello)])
        .assert_error(125, &["invalid wasmtime settings: unknown field `opt_levle`", "valid keys"]);
    run(&node, &["--setting", "opt_level=fastest", path_str(&hello)])
        .assert_error(125, &["invalid wasmtime settings", "fastest"]);
}

#[test]
fn precompiled_artifacts_run_and_foreign_ones_are_refused() {
    each_engine("precompile", |e| {
        let artifact = e.node.root().join("hello.cwasm");
        let out = path_str(&artifact);
        let compiled = e.node.run(&["compile", "--engine", e.name, "-o", out, path_str(&corpus("hello"))]);
        if !e.has("precompile") {
            compiled.assert_error(126, &[&format!("engine {} does not support precompilation", e.name)]);
            return;
        }
        compiled.assert_ok();
        let ran = e.run(&[out]);
        ran.assert_ok();
        assert_eq!(ran.stdout, "hello from wasm\n", "{}", e.name);

        // Built with other settings: another key, refused before the engine sees it.
        let other = e.node.root().join("hello-capped.cwasm");
        let hello = corpus("hello");
        let args = [
            "compile",
            "-e",
            e.name,
            "-s",
            "max_memory_bytes=1048576",
            "-o",
            path_str(&other),
            path_str(&hello),
        ];
        e.node.run(&args).assert_ok();
        e.run(&[path_str(&other)]).assert_error(
            126,
            &[
                &format!("{} run failed (artifact mismatch)", e.name),
                "max_memory_bytes=1048576",
                "precompile the module again",
            ],
        );

        // A truncated artifact.
        let bytes = fs::read(&artifact).unwrap();
        let cut = e.node.root().join("cut.cwasm");
        fs::write(&cut, &bytes[..40]).unwrap();
        e.run(&[path_str(&cut)]).assert_error(126, &["artifact mismatch", "truncated or corrupt"]);

        // Another engine's artifact is refused by its key, never loaded.
        let all = engines();
        if let Some((other_engine, plugin)) = all.iter().find(|(n, _)| *n != e.name) {
            e.node.install(other_engine, plugin);
            let foreign = e.node.root().join("foreign.cwasm");
            let compiled =
                e.node.run(&["compile", "-e", other_engine, "-o", path_str(&foreign), path_str(&hello)]);
            if compiled.code == Some(0) {
                e.run(&[path_str(&foreign)]).assert_error(126, &["artifact mismatch", other_engine]);
            }
        }
    });
}

#[test]
fn components_precompile_with_wasmtime() {
    let node = node("wt-precompile-component");
    let component = node.root().join("component.cwasm");
    node.run(&["compile", "-e", "wasmtime", "-o", path_str(&component), path_str(&corpus("component"))])
        .assert_ok();
    run(&node, &[path_str(&component)]).assert_ok();
}

/// Starts `loop.wasm` with `run` and waits until it prints `started`: the command, its
/// run marker, and its engine process.
fn start_loop(e: &Engine) -> (std::process::Child, String, i32) {
    let (mut cmd, marker) = e.node.marked_shim();
    let mut child = cmd
        .args(["run", "--engine", e.name, path_str(&corpus("loop"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    let engine_pid = children_of(child.id() as i32);
    assert_eq!(engine_pid.len(), 1, "one engine process");
    (child, marker, engine_pid[0])
}

fn children_of(pid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    pids
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // A zombie still has /proc/<pid>; its state line says Z until it is reaped.
    while Instant::now() < deadline {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(stat) if stat.split_whitespace().nth(2) == Some("Z") => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("engine process {pid} is still running");
}

#[test]
fn a_long_running_module_stops_on_sigterm_and_sigint() {
    each_engine("sigterm", |e| {
        for (signal, status) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
            let (child, _, engine) = start_loop(e);
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, signal) };
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(status),
                "{}: {}",
                e.name,
                String::from_utf8_lossy(&out.stderr)
            );
            wait_gone(engine);
        }
    });
}

#[test]
fn sigkill_leaves_no_engine_process_behind() {
    each_engine("sigkill", |e| {
        let (mut child, marker, engine) = start_loop(e);
        child.kill().unwrap();
        // First: an engine process left would hold the output pipes open.
        wait_gone(engine);
        let ran = Ran::marked(child.wait_with_output().unwrap(), marker);
        assert_eq!(ran.processes_left(), Vec::new(), "{}: processes left after run was killed", e.name);

        // Killing the engine process itself is reported as such.
        let (child, marker, engine) = start_loop(e);
        // SAFETY: plain kill(2) on our grandchild.
        unsafe { libc::kill(engine, libc::SIGKILL) };
        let ran = Ran::marked(child.wait_with_output().unwrap(), marker);
        let expected = format!("the {} engine process crashed: killed by signal SIGKILL (9)", e.name);
        ran.assert_error(137, &[&expected]);
    });
}

#[test]
fn engines_describes_the_wasmtime_plugin() {
    let node = node("wt-engines");
    let ran = node.run(&["engines", "--json"]);
    ran.assert_ok();
    let listing: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let plugin = &listing["plugins"][0];
    assert_eq!(plugin["engine"], "wasmtime");
    assert_eq!(plugin["status"], "ok");
    assert!(plugin["engine_version"].as_str().unwrap().starts_with("48."), "{plugin}");
    assert_eq!(
        plugin["capabilities"],
        serde_json::json!([
            "wasi-p1",
            "components",
            "precompile",
            "text-format",
            "memory-limit",
            "http-serve"
        ])
    );
}

/// The README's proposal table, row by row, on every engine built here: a `yes` runs the
/// corpus module for the proposal (`tests/corpus/proposals/`, each checks its result and
/// traps if wrong); a `no` is refused with one line naming the engine and the proposal.
#[test]
fn proposals_run_or_are_refused_by_name() {
    let (header, rows) = readme_table("<!-- engine-proposals -->");
    assert!(rows.len() >= 13, "the proposal table has {} rows", rows.len());
    each_engine("proposals", |e| {
        let column =
            header.iter().position(|h| h == e.name).unwrap_or_else(|| panic!("no {} column", e.name));
        for row in &rows {
            let (module, proposal) = row[0].split_once(": ").expect("`module`: proposal");
            let module = corpus(&format!("proposals/{}", module.trim_matches('`')));
            let ran = e.run(&[path_str(&module)]);
            let what = format!("{} / {proposal}", e.name);
            assert_ne!(
                row[column], "not checked",
                "{what}: the engine is built here: fill in its README cell"
            );
            if row[column] == "yes" {
                assert_eq!(ran.code, Some(0), "{what}: README says yes: {}", ran.stderr);
            } else {
                assert_eq!(ran.code, Some(126), "{what}: README says {:?}: {}", row[column], ran.stderr);
                let named = format!("engine {} does not support the {proposal} proposal", e.name);
                assert!(ran.stderr.contains(&named), "{what}: {}", ran.stderr);
                assert_eq!(ran.stderr.trim_end().lines().count(), 1, "{what}: {}", ran.stderr);
                assert!(ran.processes_left().is_empty(), "{what}: left: {:?}", ran.processes_left());
            }
        }
    });
}

/// The header and rows of the README table after `marker`.
fn readme_table(marker: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let readme = fs::read_to_string(support::repo_root().join("README.md")).unwrap();
    let table =
        readme.split(marker).nth(1).unwrap_or_else(|| panic!("README lacks the table after {marker}"));
    let mut rows: Vec<Vec<String>> = table
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("| ---"))
        .map(|l| l.trim_matches('|').split('|').map(|cell| cell.trim().to_string()).collect())
        .collect();
    let header = rows.remove(0);
    (header, rows)
}

/// The README's engine × feature table agrees with what each built plugin declares; the
/// tests above check that every declared capability works and every other one is refused
/// with a clear error.
#[test]
fn the_readme_engine_table_matches_the_plugins() {
    let readme = fs::read_to_string(support::repo_root().join("README.md")).unwrap();
    let table =
        readme.split("<!-- engine-features -->").nth(1).expect("README lacks the engine-features table");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .take_while(|l| l.starts_with('|') || l.trim().is_empty())
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let header = &rows[0];
    for (name, plugin) in engines() {
        let column = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} column"));
        let node = Node::new(&format!("readme-{name}"));
        node.install(name, &plugin);
        let declared = Engine { name, node }.capabilities();
        let mut rows_seen = Vec::new();
        for row in &rows[1..] {
            let Some(capability) = row[0].strip_prefix('`').and_then(|c| c.split('`').next()) else {
                continue;
            };
            let says_yes = row[column].starts_with("yes");
            let declares = declared.iter().any(|c| c == capability);
            assert_eq!(says_yes, declares, "README says {:?} for {name} / {capability}", row[column]);
            rows_seen.push(capability);
        }
        for capability in &declared {
            assert!(rows_seen.contains(&capability.as_str()), "README has no row for {capability}");
        }
    }
}

/// A WASI 0.3 command (component-model async; wasmtime 48 runs them, experimental, as its
/// CLI does) runs through the wasmtime plugin: its `run` returns `err`, so the status is 1.
#[test]
fn a_wasi_0_3_command_runs_on_wasmtime() {
    let node = node("p3");
    let component = support::wasi_components::p3_command();
    let ran = node.run(&["run", "--engine", "wasmtime", path_str(&component)]);
    assert_eq!(ran.code, Some(1), "stdout: {}\nstderr: {}", ran.stdout, ran.stderr);
    assert_eq!(ran.stderr, "", "nothing but the status");
}
