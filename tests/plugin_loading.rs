//! Plugin loading through the shim binary: a plugin written in C runs through the host,
//! and every kind of bad plugin is refused with its own one-line error, without taking
//! down the process that asked.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;

use support::{Node, c_plugin, panic_plugin, path_str};

#[test]
fn a_plugin_written_in_c_runs_through_the_host() {
    let node = Node::new("c-plugin");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    let dir = format!("{}:/data", node.root().display());
    let ran = node.run(&[
        "run",
        "--engine",
        "echo",
        "--env",
        "EXIT_CODE=7",
        "--env",
        "A=b c",
        "--dir",
        &dir,
        &module,
        "x",
        "y z",
    ]);
    assert_eq!(ran.code, Some(7), "{}", ran.stderr);
    assert_eq!(ran.stdout, "args:m.wasm x y z\nenv:EXIT_CODE=7\nenv:A=b c\ndir:/data\ncwd:\n");
}

/// `run`'s own options, each wrong in its own way: one line, status 125, nothing run.
#[test]
fn bad_run_options_are_one_line_each() {
    let node = Node::new("run-options");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    for (args, expected) in [
        (vec!["--env", "NOEQUALS"], r#"--env "NOEQUALS" is not KEY=VALUE"#),
        (vec!["--env", "=value"], r#"--env "=value" is not KEY=VALUE"#),
        (vec!["--setting", "opt_level"], r#"--setting "opt_level" is not KEY=VALUE"#),
        (
            vec!["--dir", "/nonexistent/dir"],
            r#"--dir "/nonexistent/dir": /nonexistent/dir is not a directory"#,
        ),
    ] {
        let mut all = vec!["run", "--engine", "echo"];
        all.extend(args);
        all.push(&module);
        let ran = node.run(&all);
        ran.assert_error(125, &[expected]);
        assert!(ran.stdout.is_empty(), "{all:?} ran the program: {}", ran.stdout);
    }
}

#[test]
fn plugin_errors_come_back_as_one_line() {
    let node = Node::new("c-plugin-error");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    let ran = node.run(&["run", "--engine", "echo", "--setting", "x=1", &module]);
    ran.assert_error(125, &["echo engine_new failed (invalid argument): the echo engine takes no settings"]);
}

#[test]
fn plugin_logs_reach_the_shim_log() {
    let node = Node::new("c-plugin-log");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    let out =
        node.shim().env("RUST_LOG", "warn").args(["run", "--engine", "echo", &module]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("echo plugin says hello to the log")).expect(&stderr);
    assert!(line.contains("WARN") && line.contains("engine=\"echo\""), "{line}");
}

#[test]
fn something_that_is_not_wasm_is_refused() {
    let node = Node::new("not-wasm");
    node.install("echo", &c_plugin("echo"));
    let script = node.root().join("script.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let ran = node.run(&["run", "--engine", "echo", path_str(&script)]);
    ran.assert_error(
        126,
        &["script.sh is not a WebAssembly module, component or text file that the echo engine can run"],
    );
    let ran = node.run(&["run", "--engine", "echo", "/nonexistent/m.wasm"]);
    ran.assert_error(126, &["cannot open module /nonexistent/m.wasm"]);
}

/// Installs every kind of broken plugin in one directory.
fn node_with_bad_plugins() -> Node {
    let node = Node::new("bad-plugins");
    node.install("wrong_major", &c_plugin("wrong_major"));
    node.install("truncated", &c_plugin("truncated"));
    node.install("missing_entry", &c_plugin("missing_entry"));
    node.install("other", &c_plugin("echo"));
    let writable = node.install("writable", &c_plugin("echo"));
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o666)).unwrap();
    fs::write(node.engines().join("x.so"), "this is not an ELF file\n").unwrap();
    fs::set_permissions(node.engines().join("x.so"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(node.engines().join("Bad Name.so"), "").unwrap();
    node
}

/// What each broken plugin must be refused for.
const REFUSALS: [(&str, &[&str]); 6] = [
    (
        "wrong_major",
        &["speaks engine ABI 2.0, but this shim speaks 1.2", "install a build of the plugin for ABI 1.x"],
    ),
    (
        "truncated",
        &["its function table is 24 bytes but engine ABI 1.x needs at least 128", "rebuild the plugin"],
    ),
    (
        "missing_entry",
        &[
            "is not a containerd-shim-wasm engine plugin",
            "does not export the entry symbol `shim_wasm_plugin_entry`",
        ],
    ),
    ("other", &["reports engine name \"echo\", not \"other\"", "rename the file to echo.so"]),
    ("writable", &["is writable by group or others (mode 0666)", "chmod go-w"]),
    ("x", &["cannot load engine plugin", "x.so: file too short", "shared library built for this machine"]),
];

#[test]
fn every_bad_plugin_is_refused_with_its_own_error() {
    let node = node_with_bad_plugins();
    let ran = node.run(&["engines", "--json"]);
    ran.assert_ok();
    let listing: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let plugins = listing["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), REFUSALS.len() + 1, "{:#}", listing);
    for (name, fragments) in REFUSALS {
        let file = path_str(&node.engines().join(format!("{name}.so"))).to_string();
        let entry = plugins.iter().find(|p| p["file"] == file.as_str()).expect(name);
        assert_eq!(entry["status"], "refused", "{name}: {entry}");
        let reason = entry["reason"].as_str().unwrap();
        for fragment in fragments {
            assert!(reason.contains(fragment), "{name}: {reason:?} lacks {fragment:?}");
        }
        assert!(reason.contains(&file) || name == "x", "{name}: the reason names the file: {reason}");
    }
    let bad_name = plugins.iter().find(|p| p["file"].as_str().unwrap().ends_with("Bad Name.so")).unwrap();
    assert!(bad_name["reason"].as_str().unwrap().contains("not <engine>.so with a plain engine name"));
    // No probe of a refused plugin is left.
    assert!(ran.processes_left().is_empty(), "left: {:?}", ran.processes_left());
}

#[test]
fn running_a_bad_plugin_gives_the_same_error() {
    let node = node_with_bad_plugins();
    let module = node.empty_module();
    for (name, fragments) in REFUSALS {
        let ran = node.run(&["run", "--engine", name, &module]);
        ran.assert_error(125, fragments);
    }
}

#[test]
fn a_crash_inside_run_ends_only_the_engine_process() {
    let node = Node::new("crash");
    node.install("crash", &c_plugin("crash"));
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    let ran = node.run(&["run", "--engine", "crash", &module]);
    ran.assert_error(139, &["the crash engine process crashed: killed by signal SIGSEGV (11)", "crash.so"]);
    // The process that lists plugins loads each in its own engine process: all listed.
    let ran = node.run(&["engines", "--json"]);
    ran.assert_ok();
    let listing: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let statuses: Vec<_> =
        listing["plugins"].as_array().unwrap().iter().map(|p| p["status"].clone()).collect();
    assert_eq!(statuses, ["ok", "ok"]);
}

#[test]
fn a_panic_inside_run_is_caught_at_the_boundary() {
    let node = Node::new("panic");
    node.install("panicky", &panic_plugin());
    let module = node.empty_module();
    let ran = node.run(&["run", "--engine", "panicky", &module]);
    ran.assert_error(125, &["panicky run failed (plugin panicked): the panicky plugin panicked in run: the panicky engine always panics in run"]);
}

#[test]
fn engine_names_are_never_paths() {
    let node = Node::new("names");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    for name in ["../engines/echo", "/bin/sh", "echo.so", "Echo"] {
        let ran = node.run(&["run", "--engine", name, &module]);
        ran.assert_error(125, &["invalid engine name", "never paths"]);
    }
    node.write_config("default_engine = '../echo'\n");
    let ran = node.run(&["run", &module]);
    ran.assert_error(125, &["invalid shim config file", "invalid engine name"]);
}

#[test]
fn a_missing_engine_names_the_directories_and_the_plugins_present() {
    let node = Node::new("missing");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    let ran = node.run(&["run", "--engine", "wamr", &module]);
    let dirs = node.engines().display().to_string();
    ran.assert_error(
        125,
        &["engine \"wamr\" is not installed: no wamr.so in", &dirs, "plugins present: echo"],
    );
    let ran = node.run(&["run", &module]);
    ran.assert_error(125, &["no engine chosen: pass --engine NAME or set default_engine"]);
    node.write_config("default_engine = 'echo'\n");
    node.run(&["run", &module]).assert_ok();
}

#[test]
fn plugins_load_only_from_configured_directories() {
    let node = Node::new("outside");
    let elsewhere = support::scratch("elsewhere");
    let plugin = elsewhere.path().join("echo.so");
    fs::copy(c_plugin("echo"), &plugin).unwrap();
    let ran = node.run(&["__engine-probe", path_str(&plugin)]);
    assert_eq!(ran.code, Some(1));
    assert!(ran.stdout.contains("is not in a configured engine directory"), "{}", ran.stdout);
    assert!(ran.processes_left().is_empty(), "left: {:?}", ran.processes_left());
}

#[test]
fn an_untrusted_engine_directory_is_not_used() {
    let node = Node::new("untrusted-dir");
    node.install("echo", &c_plugin("echo"));
    let module = node.empty_module();
    fs::set_permissions(node.engines(), fs::Permissions::from_mode(0o777)).unwrap();
    let ran = node.run(&["run", "--engine", "echo", &module]);
    ran.assert_error(
        125,
        &["refusing plugin", "its directory is not trusted", "writable by group or others"],
    );
    let ran = node.run(&["engines"]);
    ran.assert_ok();
    assert!(ran.stdout.contains("not trusted"), "{}", ran.stdout);
}

#[test]
fn bad_config_files_are_refused() {
    let node = Node::new("bad-config");
    fs::write(node.config(), "engine_dirs = ['relative']\n").unwrap();
    node.run(&["engines"]).assert_error(125, &["invalid shim config file", "not an absolute path"]);
    fs::remove_file(node.config()).unwrap();
    node.run(&["engines"])
        .assert_error(125, &["cannot read the shim config file", "CONTAINERD_SHIM_WASM_CONFIG"]);
    // A link to /dev/zero is read no further than its kind (it would never end).
    std::os::unix::fs::symlink("/dev/zero", node.config()).unwrap();
    node.run(&["engines"]).assert_error(125, &["cannot read the shim config file", "not a regular file"]);
}

#[test]
fn engines_lists_versions_abi_and_capabilities() {
    let node = Node::new("list");
    node.install("echo", &c_plugin("echo"));
    let ran = node.run(&["engines", "--json"]);
    ran.assert_ok();
    let listing: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let echo = &listing["plugins"][0];
    assert_eq!(echo["status"], "ok");
    assert_eq!(echo["engine"], "echo");
    assert_eq!(echo["engine_version"], "1.2.3");
    assert_eq!(echo["plugin_version"], "0.0.1");
    assert_eq!(echo["abi"], shim_wasm_abi::ABI_VERSION.to_string());
    assert_eq!(echo["capabilities"], serde_json::json!(["wasi-p1"]));
    let ran = node.run(&["engines"]);
    let row = ran.stdout.lines().find(|l| l.starts_with("echo ")).expect(&ran.stdout);
    assert!(row.contains("ok") && row.contains("1.2.3") && row.contains("wasi-p1"), "{row}");
}

#[test]
fn version_names_the_revision_and_the_abi() {
    let node = Node::new("version");
    let ran = node.run(&["--version"]);
    ran.assert_ok();
    assert!(ran.stdout.starts_with(&format!("containerd-shim-wasm-v1 {} (git ", env!("CARGO_PKG_VERSION"))));
    assert!(ran.stdout.contains(&format!("engine ABI {}", shim_wasm_abi::ABI_VERSION)), "{}", ran.stdout);
    // A reader that is gone (`--version | head -1`): ended by SIGPIPE, as coreutils are;
    // no panic, no backtrace.
    for args in [&["--version"][..], &["engines"], &[]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = node.shim().args(args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            (out.status.signal(), stderr.as_ref()),
            (Some(libc::SIGPIPE), ""),
            "{args:?} into a closed pipe"
        );
    }
}

/// Loading checks what is loaded, without following links: a plugin that is a symbolic
/// link (here to a file in a directory anyone can write) and an engine directory below a
/// directory anyone can write are refused with one line.
#[test]
fn links_and_writable_parents_are_refused_at_load() {
    let node = Node::new("trust-link");
    let open = node.root().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let target = open.join("echo.so");
    fs::copy(c_plugin("echo"), &target).unwrap();
    std::os::unix::fs::symlink(&target, node.engines().join("echo.so")).unwrap();
    let module = node.empty_module();
    let ran = node.run(&["run", "-e", "echo", &module]);
    ran.assert_error(125, &["echo.so is a symbolic link"]);

    // An engine directory, fine itself, under a directory others can write.
    let shared = Node::new("trust-parent");
    shared.install("echo", &c_plugin("echo"));
    fs::set_permissions(shared.root(), fs::Permissions::from_mode(0o777)).unwrap();
    let module = shared.empty_module();
    let ran = shared.run(&["run", "-e", "echo", &module]);
    ran.assert_error(125, &["writable by group or others (mode 0777)", "can replace the plugin"]);
    fs::set_permissions(shared.root(), fs::Permissions::from_mode(0o755)).unwrap();
}

/// A plugin whose entry function, or ELF constructor (inside `dlopen`), never returns is
/// listed as refused, with the reason, once the probe's bound has passed; the listing
/// itself ends, and so do `run` and `compile`.
#[test]
fn a_plugin_that_hangs_while_loading_is_refused_at_a_bound() {
    for fixture in ["hang", "hang_constructor"] {
        let node = Node::new(fixture);
        node.install(fixture, &c_plugin(fixture));
        node.install("echo", &c_plugin("echo"));
        let ran = node.run(&["engines", "--json"]);
        let listing: serde_json::Value = serde_json::from_str(&ran.stdout).expect(&ran.stderr);
        let plugins = listing["plugins"].as_array().unwrap();
        let file = format!("{fixture}.so");
        let hang =
            plugins.iter().find(|p| p["file"].as_str().unwrap_or("").ends_with(&file)).expect(&ran.stdout);
        assert_eq!(hang["status"], "refused", "{hang}");
        assert!(hang["reason"].as_str().unwrap().contains("did not finish loading in 10 s"), "{hang}");
        let echo = plugins.iter().find(|p| p["engine"] == "echo").unwrap();
        assert_eq!(echo["status"], "ok");

        // `run` and `compile` load the plugin in an engine process that must say it loaded.
        let module = node.empty_module();
        let out = node.root().join("m.cwasm");
        for args in [
            vec!["run", "--engine", fixture, module.as_str()],
            vec!["compile", "--engine", fixture, "-o", path_str(&out), module.as_str()],
        ] {
            let started = std::time::Instant::now();
            let ran = node.run(&args);
            ran.assert_error(
                125,
                &[&format!("the {fixture} engine plugin"), "did not finish loading in 10 s"],
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{args:?} took {:?}",
                started.elapsed()
            );
        }
    }
}
