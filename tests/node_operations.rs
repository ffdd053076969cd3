//! What a Kubernetes node asks of a pod's shim besides run, stop and exec, through a
//! real containerd (a private instance per test): pause and resume (the cgroup freezer),
//! resource updates (in-place pod resize) and their events, for wasm and native
//! containers; and runc's runtime options, used or ignored, never refused. Exec is in
//! `node_exec.rs`.

mod support;

use support::containerd::Containerd;
use support::node::*;

#[test]
fn pause_resume_and_update_wasm_and_native_containers() {
    let ctd = Containerd::start("node-pause", DEFAULT_WASMTIME);
    import_shell(&ctd);
    let wasm = import_loop(&ctd);
    for (image, id) in [(wasm.as_str(), "wasm"), (SHELL, "native")] {
        run_detached(&ctd, image, id);
        let events = Events::watch(&ctd);
        let freezer = cgroup_file(&ctd, id, ("freezer", "freezer.state"), "cgroup.freeze");
        let not_paused = ctd.ctr(&["task", "resume", id]);
        assert!(
            not_paused.stderr.contains(&format!("task {id} is not paused")),
            "{id}: {}",
            not_paused.stderr
        );
        assert_eq!(not_paused.stderr.lines().count(), 1, "{id}: {}", not_paused.stderr);
        // Refused requests change nothing: the task runs on, its cgroup is not frozen.
        assert_eq!(ctd.status(id).as_deref(), Some("RUNNING"), "{id}");
        assert!(matches!(read_trimmed(&freezer).as_str(), "THAWED" | "0"), "{id}: {}", freezer.display());
        ctd.ctr(&["task", "pause", id]).assert_ok();
        ctd.wait_for_status(id, "PAUSED");
        assert!(matches!(read_trimmed(&freezer).as_str(), "FROZEN" | "1"), "{id}: {}", freezer.display());
        let again = ctd.ctr(&["task", "pause", id]);
        assert!(again.stderr.contains("already paused"), "{id}: {}", again.stderr);
        assert_eq!(ctd.status(id).as_deref(), Some("PAUSED"), "{id}");
        assert!(matches!(read_trimmed(&freezer).as_str(), "FROZEN" | "1"), "{id}: {}", freezer.display());

        ctd.ctr(&["task", "resume", id]).assert_ok();
        ctd.wait_for_status(id, "RUNNING");
        assert!(matches!(read_trimmed(&freezer).as_str(), "THAWED" | "0"), "{id}: {}", freezer.display());

        // In-place resize: the new memory limit is written to the cgroup.
        let memory = cgroup_file(&ctd, id, ("memory", "memory.limit_in_bytes"), "memory.max");
        update(&ctd, id, serde_json::json!({"memory": {"limit": 50331648}})).unwrap();
        assert_eq!(read_trimmed(&memory), "50331648", "{id}");
        let refused = update(&ctd, id, serde_json::json!({"memory": {"limit": "lots"}})).unwrap_err();
        assert!(refused.contains("not a runtime-spec LinuxResources"), "{id}: {refused}");
        assert_eq!(read_trimmed(&memory), "50331648", "{id}: the refused update changed the limit");
        assert_eq!(ctd.status(id).as_deref(), Some("RUNNING"), "{id}");

        // Killed while paused: it still dies (thawed for it), nothing left.
        ctd.ctr(&["task", "pause", id]).assert_ok();
        ctd.wait_for_status(id, "PAUSED");
        let lines = events.lines();
        assert_event(&lines, "/tasks/paused", &[id]);
        assert_event(&lines, "/tasks/resumed", &[id]);
        ctd.ctr(&["task", "kill", "-s", "SIGKILL", id]).assert_ok();
        ctd.wait_for_status(id, "STOPPED");

        // A task that has exited can be neither paused nor resumed: one line each.
        let exited = ctd.ctr(&["task", "pause", id]);
        assert!(exited.stderr.contains(&format!("task {id} is not running")), "{id}: {}", exited.stderr);
        assert_eq!(exited.stderr.lines().count(), 1, "{id}: {}", exited.stderr);
        let exited = ctd.ctr(&["task", "resume", id]);
        assert!(exited.stderr.contains(&format!("task {id} is not paused")), "{id}: {}", exited.stderr);
        assert_eq!(exited.stderr.lines().count(), 1, "{id}: {}", exited.stderr);
        ctd.remove(id);
        ctd.assert_nothing_left(id);
    }
}

#[test]
fn runc_runtime_options_are_used_or_ignored_never_refused() {
    let ctd = Containerd::start("node-runc-options", DEFAULT_WASMTIME);
    let hello = import_hello(&ctd);
    // As operators copy them from runc's documentation.
    let options = ctd.node.root().join("runc-options.toml");
    std::fs::write(
        &options,
        "engine = \"wasmtime\"\nSystemdCgroup = false\nBinaryName = \"/usr/bin/runc\"\nNoPivotRoot = false\n",
    )
    .unwrap();
    let ran = ctd.run(&["--runtime-config-path", options.to_str().unwrap()], hello, "cgroupfs", &[]);
    ran.assert_ok();
    assert_eq!(ran.stdout, "hello from wasm\n");
    ctd.assert_nothing_left("cgroupfs");

    // SystemdCgroup picks the cgroup driver libcontainer is given (and keeps in its state).
    // (With cgroup v1, or an absolute cgroupsPath as ctr gives, libcgroups still writes
    // the cgroup directly, so the container runs here without systemd.)
    let image = import_loop(&ctd);
    for systemd in [true, false] {
        std::fs::write(&options, format!("engine = \"wasmtime\"\nSystemdCgroup = {systemd}\n")).unwrap();
        let id = format!("systemd-{systemd}");
        let path = options.to_str().unwrap();
        ctd.ctr(&[
            "run",
            "-d",
            "--runtime",
            "io.containerd.wasm.v1",
            "--runtime-config-path",
            path,
            &image,
            &id,
        ])
        .assert_ok();
        ctd.wait_for_status(&id, "RUNNING");
        let state = libcontainer_state(&ctd, &id);
        assert_eq!(state["useSystemd"], serde_json::Value::Bool(systemd), "{state}");
        stop(&ctd, &id);
    }

    // A key that is neither the shim's nor runc's is still a mistake, named.
    std::fs::write(&options, "engine = \"wasmtime\"\nSystemdCgroups = false\n").unwrap();
    let ran = ctd.run(&["--runtime-config-path", options.to_str().unwrap()], hello, "typo", &[]);
    assert!(ran.stderr.contains("unknown field `SystemdCgroups`"), "{}", ran.stderr);
    ctd.assert_nothing_left("typo");
}
