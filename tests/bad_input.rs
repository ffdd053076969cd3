//! Bad input through the shim's task API: one line that says what is wrong, and nothing
//! left behind (processes, mounts, cgroups, state).

mod support;

use serde_json::json;
use support::stress::bundle::Workload;
use support::stress::shim::{Runtime, ShimServer};

/// Creates task 1 with `edit` applied to its spec; returns Create's error line, after
/// checking that nothing is left.
fn create_error(name: &str, workload: Workload, edit: serde_json::Value) -> String {
    let mut shim = ShimServer::start(name, Runtime::Wasm { engine: "wasmtime" }, workload);
    shim.spec_edit = Some(Box::new(move |_, spec| {
        for (key, value) in edit.as_object().unwrap() {
            spec["process"][key] = value.clone();
        }
    }));
    let id = shim.task_id(1);
    let err = shim.create(&id, workload).expect_err("the create must fail");
    let _ = std::fs::remove_dir_all(shim.work().join("bundles").join(&id));
    let left = shim.leftovers();
    assert!(left.is_empty(), "{name}: left behind: {}", left.summary());
    shim.shutdown().unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn an_environment_entry_without_a_name() {
    for workload in [Workload::WasmHello, Workload::NativeTrue] {
        let err = create_error("bad-env", workload, json!({ "env": ["PATH=/bin", "=value"] }));
        assert!(err.contains(r#"invalid environment variable "=value""#), "{workload:?}: {err}");
    }
}

/// Every signal runc accepts (1 to 64, real-time ones included) is delivered to the
/// container's process; anything else is refused with one line.
#[test]
fn signals_runc_accepts_and_one_it_does_not() {
    use support::stress::shim::{CALL_BOUND, WAIT_BOUND};
    let shim = ShimServer::start("bad-signal", Runtime::Wasm { engine: "wasmtime" }, Workload::WasmLoop);
    let id = shim.task_id(1);
    shim.create(&id, Workload::WasmLoop).unwrap();
    shim.api.start(&id, CALL_BOUND).unwrap();
    // PID 1 without a handler for them: delivered, and the program goes on.
    for signal in [libc::SIGUSR1, libc::SIGRTMIN(), 40, 64] {
        shim.api.kill(&id, signal as u32, CALL_BOUND).unwrap_or_else(|e| panic!("signal {signal}: {e}"));
        shim.api
            .kill_all(&id, signal as u32, CALL_BOUND)
            .unwrap_or_else(|e| panic!("signal {signal}, all: {e}"));
    }
    let err = shim.api.kill(&id, 65, CALL_BOUND).unwrap_err();
    assert!(err.contains("invalid signal 65"), "{err}");
    shim.api.kill(&id, libc::SIGKILL as u32, CALL_BOUND).unwrap();
    assert_eq!(shim.api.wait(&id, WAIT_BOUND).unwrap().exit_status, 137);
    shim.delete(&id).unwrap();
    shim.shutdown().unwrap();
}
