//! Modules where the container sees them, through one shim over its task API: a module
//! on a volume (a bind mount of the spec, as a ConfigMap or an emptyDir is) runs; a
//! precompiled artifact from the container's files is refused, at create and when the
//! file turns into one between create and start (engines load artifacts as native code:
//! only the shim's own cache makes them).

mod support;

use std::fs;
use std::path::Path;

use serde_json::json;
use support::stress::bundle::Workload;
use support::stress::shim::{CALL_BOUND, Runtime, ShimServer, WAIT_BOUND};
use support::{Node, corpus, path_str, wasmtime_plugin};

/// A shim whose tasks run `args` with `volume` bind-mounted at `/vol`.
fn shim_with_volume(name: &str, volume: &Path, args: serde_json::Value) -> ShimServer {
    let mut shim = ShimServer::start(name, Runtime::Wasm { engine: "wasmtime" }, Workload::WasmArgs);
    let volume = volume.to_path_buf();
    shim.spec_edit = Some(Box::new(move |_, spec| {
        spec["process"]["args"] = args.clone();
        spec["mounts"].as_array_mut().unwrap().push(
            json!({ "destination": "/vol", "type": "bind", "source": volume, "options": ["rbind", "ro"] }),
        );
    }));
    shim
}

/// `hello_tiny.wasm` precompiled by `containerd-shim-wasm-v1 compile`, as an operator
/// (or an attacker) could put it in an image or a volume.
fn artifact(dir: &Path) -> std::path::PathBuf {
    let node = Node::new("volume-compile");
    node.install("wasmtime", &wasmtime_plugin());
    let out = dir.join("app.cwasm");
    let ran =
        node.run(&["compile", "--engine", "wasmtime", "-o", path_str(&out), path_str(&corpus("hello_tiny"))]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    out
}

#[test]
fn a_module_on_a_volume_runs() {
    let volume = tempfile::tempdir().unwrap();
    fs::copy(corpus("hello_tiny"), volume.path().join("app.wasm")).unwrap();
    let shim = shim_with_volume("vol-module", volume.path(), json!(["/vol/app.wasm"]));
    let out = shim.run_for_output(1, Workload::WasmArgs).unwrap();
    assert_eq!(out, "hello from wasm\n");
    shim.shutdown().unwrap();
}

#[test]
fn an_artifact_in_the_containers_files_is_refused_at_create() {
    let volume = tempfile::tempdir().unwrap();
    artifact(volume.path());
    let shim = shim_with_volume("vol-artifact", volume.path(), json!(["/vol/app.cwasm"]));
    let id = shim.task_id(1);
    let err = shim.create(&id, Workload::WasmArgs).expect_err("an artifact from a volume was accepted");
    assert!(err.contains("entrypoint /vol/app.cwasm is a precompiled artifact"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = fs::remove_dir_all(shim.work().join("bundles").join(&id));
    let left = shim.leftovers();
    assert!(left.is_empty(), "left behind: {}", left.summary());
    shim.shutdown().unwrap();
}

#[test]
fn a_module_that_becomes_an_artifact_before_start_is_not_run() {
    let (volume, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let compiled = artifact(elsewhere.path());
    let module = volume.path().join("app.wasm");
    fs::copy(corpus("hello_tiny"), &module).unwrap();
    let shim = shim_with_volume("vol-swap", volume.path(), json!(["/vol/app.wasm"]));
    let id = shim.task_id(1);
    let bundle = shim.create(&id, Workload::WasmArgs).unwrap();
    fs::copy(&compiled, &module).unwrap();
    shim.api.start(&id, CALL_BOUND).unwrap();
    let exit = shim.api.wait(&id, WAIT_BOUND).unwrap();
    let stderr = fs::read_to_string(bundle.join("stderr")).unwrap_or_default();
    let stdout = fs::read_to_string(bundle.join("stdout")).unwrap_or_default();
    assert_ne!(exit.exit_status, 0, "the artifact ran: {stdout}");
    assert!(stdout.is_empty(), "the artifact ran: {stdout}");
    assert!(
        stderr.contains("/vol/app.wasm became a precompiled artifact after the container was created"),
        "{stderr}"
    );
    shim.delete(&id).unwrap();
    assert!(shim.leftovers().is_empty(), "left behind: {}", shim.leftovers().summary());
    shim.shutdown().unwrap();
}

/// A module mounted as a single file (a ConfigMap key or a `subPath`) runs too.
#[test]
fn a_module_mounted_as_one_file_runs() {
    let volume = tempfile::tempdir().unwrap();
    let file = volume.path().join("module-from-a-configmap");
    fs::copy(corpus("hello_tiny"), &file).unwrap();
    let mut shim = ShimServer::start("vol-file", Runtime::Wasm { engine: "wasmtime" }, Workload::WasmArgs);
    shim.spec_edit = Some(Box::new(move |_, spec| {
        spec["process"]["args"] = json!(["/app.wasm"]);
        spec["mounts"].as_array_mut().unwrap().push(
            json!({ "destination": "/app.wasm", "type": "bind", "source": file, "options": ["rbind", "ro"] }),
        );
    }));
    assert_eq!(shim.run_for_output(1, Workload::WasmArgs).unwrap(), "hello from wasm\n");
    shim.shutdown().unwrap();
}
