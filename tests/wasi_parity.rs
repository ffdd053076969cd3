//! Where engines' WASI implementations differed from WASI and from each other, every
//! engine built here through the shim's `run` command: the root preopen, errno values and
//! file-system behaviour (the WASI test suite's failure classes, docs/engines.md), modules
//! without memory, unknown imports, threaded programs.

mod support;

use std::fs;

use support::engine::each_engine;
use support::{corpus, path_str};

/// Programs take the first preopen named "/" as the root of their file system (the WASI
/// test suite's Rust programs too); it must be the directory given, writable. Wasmer's own
/// in-memory root came first and refused every change (29 of the suite's 72 passed).
#[test]
fn the_root_preopen_is_the_directory_given() {
    each_engine("root_preopen", |e| {
        let root = e.node.root().join("root");
        fs::create_dir(&root).unwrap();
        let ran = e.run(&["--dir", &format!("{}:/", root.display()), path_str(&corpus("root_preopen"))]);
        ran.assert_ok();
        assert_eq!(ran.stdout, "ok\n", "{}", e.name);
        assert_eq!(fs::read_to_string(root.join("made/renamed")).unwrap(), "written by wasm\n", "{}", e.name);
        assert!(!root.join("made/link").exists(), "{}", e.name);
    });
}

/// The errors WASI defines where an engine answered otherwise (Wasmer: EACCES for a
/// missing right, EOVERFLOW for a short name buffer, EACCES from shutdown of stdout), and
/// the file-system behaviour of the WASI test suite's failure classes (fs_semantics.c).
#[test]
fn errno_values_and_file_system_semantics_are_wasis() {
    for program in ["errno_parity", "fs_semantics"] {
        each_engine(program, |e| {
            let (data, other) = (e.node.root().join("data"), e.node.root().join("other"));
            let dirs = [&data, &other].map(|d| fs::create_dir(d).map(|()| d.display().to_string()).unwrap());
            let (dir, other) = (format!("{}:/data", dirs[0]), format!("{}:/other", dirs[1]));
            let ran = e.run(&["--dir", &dir, "--dir", &other, path_str(&corpus(program)), "/data", "/other"]);
            assert_eq!(
                (ran.code, ran.stdout.as_str()),
                (Some(0), "ok\n"),
                "{program} on {}: {}",
                e.name,
                ran.stderr
            );
        });
    }
}

/// A module that imports what no engine provides is refused before it runs, with the
/// import named (WAMR trapped when it was called, Wasmer said "Memory access error").
#[test]
fn an_unknown_import_is_named() {
    each_engine("unknown_import", |e| {
        let ran = e.run(&[path_str(&corpus("unknown_import"))]);
        // libwasmedge's error carries no name ("unknown import"); the others name it.
        let named =
            if e.name == "wasmedge" { "unknown import" } else { "unknown import: `env::nothing_here`" };
        ran.assert_error(126, &[named]);
        assert_eq!(ran.stdout, "", "{}", e.name);
    });
}

/// A command without a memory that calls no WASI function runs (Wasmer refused it:
/// "No imported or exported memory found"; WAMR's libc-wasi asked every command for an
/// exported memory).
#[test]
fn a_module_without_memory_runs() {
    each_engine("no_memory", |e| {
        let ran = e.run(&["--entry", "seven", path_str(&corpus("no_memory"))]);
        assert_eq!(ran.code, Some(7), "{}: {}", e.name, ran.stderr);
    });
}

/// Programs built for wasm32-wasip1-threads run on Wasmer, through wasmer-wasix (the
/// shared WASI preview 1 has no `thread-spawn`); the other engines refuse the module with
/// one line (the import, or WAMR: the threads proposal).
#[test]
fn a_threaded_program_runs_on_wasmer() {
    each_engine("threads_hello", |e| {
        let ran = e.run(&[path_str(&corpus("threads_hello"))]);
        if e.name == "wasmer" {
            assert_eq!((ran.code, ran.stdout.as_str()), (Some(0), "hello from threads\n"), "{}", ran.stderr);
        } else {
            // WAMR and WasmEdge refuse the shared memory (no threads proposal).
            let why = match e.name {
                "wamr" => "threads",
                "wasmedge" => "malformed limits flags",
                _ => "unknown import: `wasi::thread-spawn`",
            };
            ran.assert_error(126, &[why]);
        }
    });
}
