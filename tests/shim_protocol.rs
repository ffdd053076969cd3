//! The shim protocol without containerd's task manager in the way: `start` answers a
//! plain address, and a ttrpc client (task API v3, as containerd 2.x speaks it) drives
//! Create → Start → Wait → Delete → Shutdown with runtime options carrying `ConfigBody`
//! (`engine = 'wasmtime'`, single-quoted as containerd 2.x writes it), which Debian's
//! containerd 1.6 never sends. A private containerd receives the shim's events.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use containerd_shim::api::{CreateTaskRequest, DeleteRequest, ShutdownRequest, StartRequest, WaitRequest};
use containerd_shim::protos::shim_sync::TaskClient;
use containerd_shim::protos::ttrpc::{self, context::Context};
use support::containerd::{Containerd, options_with_body};
use support::corpus;

/// A bundle from `ctr oci spec` with `/hello.wasm` as the entrypoint.
fn bundle(dir: &Path, namespace: &str, id: &str) {
    let spec = Command::new("ctr").args(["oci", "spec"]).output().unwrap();
    let mut spec: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    spec["process"]["args"] = serde_json::json!(["/hello.wasm"]);
    spec["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{namespace}/{id}"));
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::copy(corpus("hello"), dir.join("rootfs/hello.wasm")).unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
}

fn create_request(bundle: &Path, id: &str, body: &str) -> CreateTaskRequest {
    let mut req = CreateTaskRequest::new();
    req.id = id.into();
    req.bundle = bundle.display().to_string();
    req.stdout = format!("file://{}", bundle.join("stdout").display());
    req.stderr = format!("file://{}", bundle.join("stderr").display());
    req.options = Some(options_with_body(body)).into();
    req
}

#[test]
fn config_body_selects_the_engine_over_ttrpc() {
    // No default engine in the shim config: only ConfigBody can choose one.
    let ctd = Containerd::start("proto-body", "");
    let dir = ctd.node.root().join("bundle");
    let id = "body";
    bundle(&dir, &ctd.namespace, id);

    let started = ctd.shim_action(&dir, id, "start");
    assert!(started.status.success(), "start: {}", String::from_utf8_lossy(&started.stderr));
    let address = String::from_utf8(started.stdout).unwrap();
    assert!(address.starts_with("unix:///") && !address.contains('{'), "a plain address: {address:?}");

    let client = TaskClient::new(ttrpc::Client::connect(&address).unwrap());
    let ctx = || Context::default();

    // An unknown engine in ConfigBody fails Create with one line.
    let err = match client.create(ctx(), &create_request(&dir, id, "engine = 'nope'\n")).unwrap_err() {
        ttrpc::Error::RpcStatus(status) => status.message,
        other => panic!("not a status: {other}"),
    };
    assert!(err.contains("engine \"nope\" is not installed"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Refused before anything was made: no process, cgroup or state of the container.
    ctd.assert_nothing_left(id);

    let created = client
        .create(ctx(), &create_request(&dir, id, "engine = 'wasmtime'\n[settings]\nopt_level = 'none'\n"))
        .unwrap();
    assert!(created.pid > 0);
    let mut start = StartRequest::new();
    start.id = id.into();
    client.start(ctx(), &start).unwrap();
    let mut wait = WaitRequest::new();
    wait.id = id.into();
    assert_eq!(client.wait(ctx(), &wait).unwrap().exit_status, 0);
    assert_eq!(std::fs::read_to_string(dir.join("stdout")).unwrap(), "hello from wasm\n");
    let mut delete = DeleteRequest::new();
    delete.id = id.into();
    assert_eq!(client.delete(ctx(), &delete).unwrap().exit_status, 0);

    let shutdown = ShutdownRequest::new();
    let _ = client.shutdown(ctx(), &shutdown);
    let socket = address.trim_start_matches("unix://").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&socket).exists() {
        assert!(Instant::now() < deadline, "the shim did not shut down");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn delete_action_answers_a_delete_response() {
    let ctd = Containerd::start("proto-delete", "");
    let dir = ctd.node.root().join("bundle");
    bundle(&dir, &ctd.namespace, "gone");
    let out = ctd.shim_action(&dir, "gone", "delete");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use containerd_shim::protos::protobuf::Message;
    let response = containerd_shim::DeleteResponse::parse_from_bytes(&out.stdout).unwrap();
    assert_eq!(response.exit_status, 137);
    assert!(response.exited_at.is_some());
}

/// A server killed outright leaves its group's lock and pending start behind; the
/// `delete` containerd runs after a dead shim removes them.
#[test]
fn delete_after_a_killed_server_removes_its_group_files() {
    let ctd = Containerd::start("proto-killed", "default_engine = \"wasmtime\"\n");
    let dir = ctd.node.root().join("bundle");
    bundle(&dir, &ctd.namespace, "killed");
    let started = ctd.shim_action(&dir, "killed", "start");
    assert!(started.status.success(), "start: {}", String::from_utf8_lossy(&started.stderr));
    let address = String::from_utf8(started.stdout).unwrap();
    let socket = Path::new(address.trim_start_matches("unix://"));
    let group = Path::new("/run/containerd-shim-wasm/groups").join(socket.file_name().unwrap());
    let (lock, pending) = (group.with_extension("lock"), group.with_extension("pending"));
    assert!(
        lock.exists() && pending.join("killed").exists(),
        "start records the group and the pending start"
    );
    for pid in support::containerd::processes_matching(&format!("-socket {address}")) {
        // SAFETY: kill(2) on the shim server this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(200));
    let out = ctd.shim_action(&dir, "killed", "delete");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !lock.exists() && !pending.exists(),
        "group files left: {} {}",
        lock.display(),
        pending.display()
    );
}
