//! The process's working directory (`process.cwd`), through one shim over its task API.
//! A missing one is made as runc makes it: in the container's root, or in the volume that
//! covers it, for native and wasm containers alike (libcontainer alone fails with "failed
//! to unix syscall"). A wasm program gets it through the engine ABI (1.1's `cwd`), seen
//! here through the C echo plugin, which prints what it was given, and through wasmtime,
//! whose components get it as `wasi:cli/environment.initial-cwd`.

mod support;

use serde_json::{Value, json};
use support::stress::bundle::Workload;
use support::stress::shim::{Runtime, ShimServer};

/// Runs one task of `workload` with `process.cwd` = `cwd`, `args` and extra `mounts`;
/// returns its stdout.
fn output(name: &str, runtime: Runtime, workload: Workload, cwd: &str, args: Value, mounts: Value) -> String {
    let mut shim = ShimServer::start(name, runtime, workload);
    if runtime == (Runtime::Wasm { engine: "echo" }) {
        shim.install_plugin("echo", &support::c_plugin("echo"));
    }
    let cwd = cwd.to_string();
    shim.spec_edit = Some(Box::new(move |_, spec| {
        spec["process"]["cwd"] = json!(cwd);
        spec["process"]["args"] = args.clone();
        for mount in mounts.as_array().unwrap() {
            spec["mounts"].as_array_mut().unwrap().push(mount.clone());
        }
    }));
    let out = shim.run_for_output(1, workload).unwrap_or_else(|e| panic!("{name}: {e}"));
    shim.shutdown().unwrap();
    out
}

#[test]
fn a_missing_working_directory_is_made_as_runc_makes_it() {
    let native = output(
        "cwd-native",
        Runtime::Wasm { engine: "wasmtime" },
        Workload::NativeArgs,
        "/srv/app",
        json!(["/bin/sh", "-c", "pwd; test -d /srv/app && echo made"]),
        json!([]),
    );
    assert_eq!(native, "/srv/app\nmade\n");

    let volume = tempfile::tempdir().unwrap();
    let wasm = output(
        "cwd-wasm",
        Runtime::Wasm { engine: "echo" },
        Workload::WasmArgs,
        "/data/work",
        json!(["/hello_tiny.wasm"]),
        json!([{ "destination": "/data", "type": "bind", "source": volume.path(), "options": ["rbind", "rw"] }]),
    );
    assert!(wasm.ends_with("cwd:/data/work\n"), "{wasm}");
    assert!(volume.path().join("work").is_dir(), "the working directory was not made in the volume");
}

#[test]
fn a_component_starts_in_the_working_directory() {
    let app = tempfile::tempdir().unwrap();
    std::fs::copy(support::wasi_components::print_cwd(), app.path().join("print_cwd.wasm")).unwrap();
    let out = output(
        "cwd-component",
        Runtime::Wasm { engine: "wasmtime" },
        Workload::WasmArgs,
        "/srv/app",
        json!(["/app/print_cwd.wasm"]),
        json!([{ "destination": "/app", "type": "bind", "source": app.path(), "options": ["rbind", "ro"] }]),
    );
    assert_eq!(out, "cwd:/srv/app\n");
}
