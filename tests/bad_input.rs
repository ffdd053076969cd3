//! Bad input through the shim's task API: one line that says what is wrong, and nothing
//! left behind (processes, mounts, cgroups, state).

mod support;

use serde_json::json;
use support::containerd::options_with_path;
use support::stress::bundle::Workload;
use support::stress::shim::{Runtime, ShimServer};

/// Creates task 1 with `edit` applied to its spec; returns Create's error line, after
/// checking that nothing is left.
fn create_error(name: &str, workload: Workload, edit: serde_json::Value) -> String {
    let mut shim = ShimServer::start(name, Runtime::Wasm { engine: "wasmtime" }, workload);
    // Keys of the spec's process, and `mounts` to add to the spec's.
    shim.spec_edit = Some(Box::new(move |_, spec| {
        for (key, value) in edit.as_object().unwrap() {
            match key.as_str() {
                "mounts" => spec["mounts"].as_array_mut().unwrap().extend(value.as_array().unwrap().clone()),
                _ => spec["process"][key] = value.clone(),
            }
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

/// An entry without `=` is a name with an empty value, as under runc, for a wasm program
/// too (the engine ABI takes only `KEY=VALUE`: before, the program failed at Start).
#[test]
fn an_environment_entry_without_a_value() {
    let mut shim = ShimServer::start("env-novalue", Runtime::Wasm { engine: "echo" }, Workload::WasmArgs);
    shim.install_plugin("echo", &support::c_plugin("echo"));
    shim.spec_edit = Some(Box::new(|_, spec| {
        spec["process"]["args"] = json!(["/hello_tiny.wasm"]);
        spec["process"]["env"] = json!(["A=1", "NOVALUE"]);
    }));
    let out = shim.run_for_output(1, Workload::WasmArgs).unwrap_or_else(|e| panic!("{e}"));
    shim.shutdown().unwrap();
    assert!(out.contains("env:A=1\nenv:NOVALUE=\n"), "{out}");
}

/// Mistakes in the spec's process, each one line through the task API, nothing left.
#[test]
fn spec_mistakes_are_one_line_each() {
    let cases = [
        (
            json!({ "args": ["/nope.wasm"] }),
            r#"entrypoint "/nope.wasm" not found in the container image or its volumes"#,
        ),
        (json!({ "args": [] }), "the container has no process.args"),
        (
            json!({ "cwd": "relative/dir" }),
            r#"the working directory "relative/dir" (process.cwd) is not an absolute path"#,
        ),
        (json!({ "env": ["PATH=/bin", "A\u{0}B=1"] }), "invalid environment variable"),
        (json!({ "env": ["PATH=/bin", ""] }), "invalid environment variable \"\""),
        (
            json!({ "cwd": "/scratch/work", "mounts": [{ "destination": "/scratch", "type": "tmpfs", "source": "tmpfs" }] }),
            "the working directory /scratch/work (process.cwd) is inside the tmpfs mounted at /scratch",
        ),
    ];
    for (i, (edit, expected)) in cases.into_iter().enumerate() {
        let err = create_error(&format!("bad-spec-{i}"), Workload::WasmHello, edit);
        assert!(err.contains(expected), "case {i}: {err}");
    }
}

/// An AppArmor profile in the spec of a host without AppArmor: one line at create, for a
/// wasm program and a native one (libcontainer alone said "No such file or directory").
#[test]
fn an_apparmor_profile_on_a_host_without_apparmor() {
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|f| f.starts_with('Y')) {
        support::skipped("bad_input::an_apparmor_profile_on_a_host_without_apparmor: this host has AppArmor");
        return;
    }
    for workload in [Workload::WasmHello, Workload::NativeTrue] {
        let err = create_error("bad-apparmor", workload, json!({ "apparmorProfile": "shim-wasm-test" }));
        assert!(
            err.contains(
                r#"asks for the AppArmor profile "shim-wasm-test" (process.apparmorProfile), but AppArmor is not enabled on this host"#
            ),
            "{workload:?}: {err}"
        );
    }
}

/// Exec requests that cannot be run, into a running native container: one line each, no
/// exec is left recorded, and the container runs on.
#[test]
fn bad_exec_requests_are_one_line_each() {
    use containerd_shim::api::ExecProcessRequest;
    use containerd_shim::protos::protobuf::well_known_types::any::Any;
    use support::stress::shim::CALL_BOUND;
    let shim = ShimServer::start("bad-exec", Runtime::Wasm { engine: "wasmtime" }, Workload::NativeSleep);
    let id = shim.task_id(1);
    shim.create(&id, Workload::NativeSleep).unwrap();
    shim.api.start(&id, CALL_BOUND).unwrap();
    let request = |exec_id: &str, terminal: bool, spec: Option<Vec<u8>>| {
        let mut req = ExecProcessRequest::new();
        req.id = id.clone();
        req.exec_id = exec_id.into();
        req.terminal = terminal;
        req.spec = spec
            .map(|value| {
                let mut any = Any::new();
                any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
                any.value = value;
                any
            })
            .into();
        req
    };
    let process = |terminal: bool| {
        serde_json::to_vec(&json!({
            "terminal": terminal, "args": ["/bin/true"], "cwd": "/", "user": { "uid": 0, "gid": 0 },
        }))
        .unwrap()
    };
    let cases = [
        (request("", false, Some(process(false))), "the exec id is empty"),
        (request("no-spec", false, None), "the request carries no process spec"),
        (
            request("not-json", false, Some(b"{not json".to_vec())),
            "the process spec is not a runtime-spec Process in JSON",
        ),
        (
            request("no-args", false, Some(br#"{"args": [], "cwd": "/"}"#.to_vec())),
            "the process spec has no args",
        ),
        (
            request("tty-request", true, Some(process(false))),
            "the request asks for a terminal and the process spec for none: they must agree",
        ),
        (
            request("tty-spec", false, Some(process(true))),
            "the request asks for no terminal and the process spec for one: they must agree",
        ),
    ];
    for (req, expected) in cases {
        let err = shim.api.exec(&req, CALL_BOUND).expect_err(expected);
        assert!(err.contains(expected), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        if !req.exec_id.is_empty() {
            let err = shim.api.exec_state(&id, &req.exec_id, CALL_BOUND).expect_err("no exec is recorded");
            assert!(err.contains(&format!("exec {}", req.exec_id)), "{err}");
        }
    }
    let state = shim.api.state(&id, CALL_BOUND).unwrap();
    assert_eq!(state.status.enum_value(), Ok(containerd_shim::api::Status::RUNNING));
    assert_eq!(shim.end_and_delete(&id, libc::SIGKILL), 137);
    shim.shutdown().unwrap();
}

/// An entrypoint that is a directory is named as one, not reported missing.
#[test]
fn an_entrypoint_that_is_a_directory() {
    let err = create_error("bad-dir", Workload::WasmHello, json!({ "args": ["/bin"] }));
    assert!(err.contains("entrypoint /bin in the container image is a directory, not a file"), "{err}");
}

/// A plugin whose entry function, or ELF constructor, never returns: the create fails at
/// the launcher's bound with one line, and the launcher stuck in it is gone.
#[test]
fn a_plugin_that_hangs_while_loading() {
    for fixture in ["hang", "hang_constructor"] {
        let shim = ShimServer::start(
            &format!("bad-{fixture}"),
            Runtime::Wasm { engine: fixture },
            Workload::WasmHello,
        );
        shim.install_plugin(fixture, &support::c_plugin(fixture));
        let id = shim.task_id(1);
        let err = shim.create(&id, Workload::WasmHello).expect_err("the create must fail");
        assert!(err.contains("did not finish loading in 10 s"), "{fixture}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let _ = std::fs::remove_dir_all(shim.work().join("bundles").join(&id));
        std::thread::sleep(std::time::Duration::from_millis(200));
        let file = format!("{fixture}.so");
        let launchers: Vec<String> = support::stress::leaks::children(shim.pid)
            .into_iter()
            .map(support::stress::leaks::cmdline)
            .filter(|c| c.contains(&file))
            .collect();
        assert!(launchers.is_empty(), "a launcher stuck in the plugin is left: {launchers:?}");
        assert!(shim.leftovers().is_empty(), "left behind: {}", shim.leftovers().summary());
        shim.shutdown().unwrap();
    }
}

/// A plugin that loads but whose `engine_new` never returns: the container's init process
/// creates the engine before it reports ready, so the create ends within the deadline
/// containerd gave (a second before, to clean up), with one line, and nothing is left (the
/// init process, its cgroup and state included).
#[test]
fn an_engine_that_hangs_while_starting() {
    use support::stress::bundle::{create_request, make_bundle, shared_rootfs};
    use support::stress::shim::CALL_BOUND;
    let shim =
        ShimServer::start("bad-hang-engine", Runtime::Wasm { engine: "hang_engine" }, Workload::WasmHello);
    shim.install_plugin("hang_engine", &support::c_plugin("hang_engine"));
    let id = shim.task_id(1);
    let bundle = make_bundle(shim.work(), &id, Workload::WasmHello, &shim.cgroup_parent, None);
    let request = create_request(&id, &bundle, &shared_rootfs(shim.work(), Workload::WasmHello));
    let err = shim.api.create(&request, std::time::Duration::from_secs(8)).expect_err("the create must fail");
    assert!(err.contains("the create did not finish in time"), "{err}\nshim log:\n{}", shim.log());
    assert_eq!(err.lines().count(), 1, "{err}");
    let mut left = shim.leftovers();
    for _ in 0..100 {
        if left.is_empty() && shim.api.state(&id, CALL_BOUND).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = shim.leftovers();
    }
    assert!(left.is_empty(), "left behind: {}\nshim log:\n{}", left.summary(), shim.log());
    let _ = std::fs::remove_dir_all(&bundle);
    shim.shutdown().unwrap();
}

/// A `ConfigPath` that is a FIFO (reading it would wait for a writer forever) or a device
/// (`/dev/zero` never ends) fails the create at once with one line.
#[test]
fn a_config_path_that_is_not_a_small_file() {
    use support::stress::bundle::{create_request, make_bundle, shared_rootfs};
    use support::stress::shim::CALL_BOUND;
    let shim = ShimServer::start("bad-options", Runtime::Wasm { engine: "wasmtime" }, Workload::WasmHello);
    let fifo = shim.work().join("options.fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    for (i, path) in [(1, fifo.clone()), (2, std::path::PathBuf::from("/dev/zero"))] {
        let id = shim.task_id(i);
        let bundle = make_bundle(shim.work(), &id, Workload::WasmHello, &shim.cgroup_parent, None);
        let mut request = create_request(&id, &bundle, &shared_rootfs(shim.work(), Workload::WasmHello));
        request.options = Some(options_with_path(&path)).into();
        let err = shim.api.create(&request, CALL_BOUND).expect_err("the create must fail");
        assert!(err.contains("not a regular file") && err.contains(&path.display().to_string()), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let _ = std::fs::remove_dir_all(&bundle);
    }
    assert!(shim.leftovers().is_empty(), "left behind: {}", shim.leftovers().summary());
    shim.shutdown().unwrap();
}

/// A plugin that crashes while the program runs ends its container as a crashing native
/// program ends: exit status 139 (SIGSEGV) to Wait, the shim still answering (Delete),
/// nothing left after it.
#[test]
fn a_plugin_that_crashes_while_running() {
    use support::stress::shim::{CALL_BOUND, WAIT_BOUND};
    let mut shim = ShimServer::start("crash-run", Runtime::Wasm { engine: "crash" }, Workload::WasmArgs);
    shim.install_plugin("crash", &support::c_plugin("crash"));
    shim.spec_edit = Some(Box::new(|_, spec| spec["process"]["args"] = json!(["/hello_tiny.wasm"])));
    let id = shim.task_id(1);
    shim.create(&id, Workload::WasmArgs).unwrap();
    shim.api.start(&id, CALL_BOUND).unwrap();
    let exit = shim.api.wait(&id, WAIT_BOUND).unwrap();
    assert_eq!(exit.exit_status, 139, "{exit:?}");
    shim.delete(&id).unwrap();
    let _ = std::fs::remove_dir_all(shim.work().join("bundles").join(&id));
    let left = shim.leftovers();
    assert!(left.is_empty(), "left behind: {}", left.summary());
    shim.shutdown().unwrap();
}

/// A plugin file that stops being trusted while the shim serves, with a launcher that
/// already loaded it, is refused at the next Create (every Create checks the file) with
/// one line and nothing left; put right, it runs again. Made writable by others in place;
/// replaced by a symbolic link to the very file the launcher loaded (the same inode: a
/// check that followed links would let the old launcher be used again); replaced by a
/// link to a copy.
#[test]
fn a_plugin_made_untrusted_while_the_shim_serves() {
    use std::os::unix::fs::PermissionsExt;
    let shim = ShimServer::start("bad-trust", Runtime::Wasm { engine: "wasmtime" }, Workload::WasmHello);
    shim.run_task(1, Workload::WasmHello).unwrap();
    let plugin = shim.work().join("engines/wasmtime.so");
    let refused = |i: usize, fragment: &str| {
        let err = shim.run_task(i, Workload::WasmHello).expect_err("an untrusted plugin must be refused");
        assert!(err.contains(fragment), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let left = shim.leftovers();
        assert!(left.is_empty(), "left behind: {}", left.summary());
    };

    // In place: the same file, now writable by others (a launcher already has it loaded).
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o666)).unwrap();
    refused(2, "writable by group or others (mode 0666)");
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    shim.run_task(3, Workload::WasmHello).unwrap();

    // Moved out of the engine directory, a link to it in its place.
    let moved = shim.work().join("wasmtime-moved.so");
    std::fs::rename(&plugin, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &plugin).unwrap();
    refused(4, "wasmtime.so is a symbolic link");
    std::fs::remove_file(&plugin).unwrap();
    std::fs::rename(&moved, &plugin).unwrap();
    shim.run_task(5, Workload::WasmHello).unwrap();

    // Replaced by a link to a copy of itself.
    let copy = shim.work().join("wasmtime-copy.so");
    std::fs::copy(&plugin, &copy).unwrap();
    let staged = shim.work().join("engines/.wasmtime.so.new");
    std::os::unix::fs::symlink(&copy, &staged).unwrap();
    std::fs::rename(&staged, &plugin).unwrap();
    refused(6, "wasmtime.so is a symbolic link");
    std::fs::remove_file(&plugin).unwrap();
    std::fs::rename(&copy, &plugin).unwrap();
    shim.run_task(7, Workload::WasmHello).unwrap();
    shim.shutdown().unwrap();
}
