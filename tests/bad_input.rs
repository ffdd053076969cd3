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

/// An entrypoint that is a directory is named as one, not reported missing.
#[test]
fn an_entrypoint_that_is_a_directory() {
    let err = create_error("bad-dir", Workload::WasmHello, json!({ "args": ["/bin"] }));
    assert!(err.contains("entrypoint /bin in the container image is a directory, not a file"), "{err}");
}

/// Every signal runc accepts (1 to 64, real-time ones included) is delivered to the
/// container's process; anything else is refused with one line. Signals a PID 1 has no
/// handler for leave the program running, also while the engine starts its threads (sent
/// without pause from the Start on: before the fix, one of them ended the program now and
/// then, when it came while glibc was creating a thread).
#[test]
fn signals_runc_accepts_and_one_it_does_not() {
    use support::stress::shim::{CALL_BOUND, WAIT_BOUND};
    let shim = ShimServer::start("bad-signal", Runtime::Wasm { engine: "wasmtime" }, Workload::WasmLoop);
    let id = shim.task_id(1);
    shim.create(&id, Workload::WasmLoop).unwrap();
    let pid = shim.api.state(&id, CALL_BOUND).unwrap().pid as i32;
    let sender = std::thread::spawn(move || {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
        while std::time::Instant::now() < until {
            for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGWINCH, libc::SIGRTMIN() + 6]
            {
                // SAFETY: kill(2) on the container's init process; the loop stops once it
                // is gone (its pid must not be signalled after reuse).
                if unsafe { libc::kill(pid, signal) } != 0 {
                    return;
                }
            }
        }
    });
    shim.api.start(&id, CALL_BOUND).unwrap();
    sender.join().unwrap();
    let stdout = shim.work().join("bundles").join(&id).join("stdout");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // SAFETY: kill(2) with signal 0 only checks that the process is there.
    let alive = || unsafe { libc::kill(pid, 0) } == 0;
    while std::fs::read_to_string(&stdout).unwrap_or_default().is_empty()
        && alive()
        && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&stdout).unwrap_or_default(), "started\n", "the program must run on");
    // PID 1 without a handler for them: delivered, and the program goes on.
    for signal in [libc::SIGUSR1, libc::SIGRTMIN(), 40, 64] {
        shim.api.kill(&id, signal as u32, CALL_BOUND).unwrap_or_else(|e| panic!("signal {signal}: {e}"));
        shim.api
            .kill_all(&id, signal as u32, CALL_BOUND)
            .unwrap_or_else(|e| panic!("signal {signal}, all: {e}"));
    }
    let err = shim.api.kill(&id, 65, CALL_BOUND).unwrap_err();
    assert!(err.contains("invalid signal 65"), "{err}");
    let err = shim.api.kill(&id, 0, CALL_BOUND).unwrap_err();
    assert!(err.contains("invalid signal 0: signals are 1 to 64"), "{err}");
    for bad in [0, 65] {
        let err = shim.api.kill_all(&id, bad, CALL_BOUND).unwrap_err();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot kill"), "kill --all {bad}: {err}");
    }
    shim.api.kill(&id, libc::SIGKILL as u32, CALL_BOUND).unwrap();
    assert_eq!(shim.api.wait(&id, WAIT_BOUND).unwrap().exit_status, 137);
    shim.delete(&id).unwrap();
    shim.shutdown().unwrap();
}

/// A plugin whose entry function never returns: the create fails at the launcher's bound
/// with one line, and the launcher stuck in it is gone.
#[test]
fn a_plugin_that_hangs_while_loading() {
    let shim = ShimServer::start("bad-hang", Runtime::Wasm { engine: "hang" }, Workload::WasmHello);
    shim.install_plugin("hang", &support::c_plugin("hang"));
    let id = shim.task_id(1);
    let err = shim.create(&id, Workload::WasmHello).expect_err("the create must fail");
    assert!(err.contains("did not finish loading in 10 s"), "{err}");
    let _ = std::fs::remove_dir_all(shim.work().join("bundles").join(&id));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let launchers: Vec<String> = support::stress::leaks::children(shim.pid)
        .into_iter()
        .map(support::stress::leaks::cmdline)
        .filter(|c| c.contains("hang.so"))
        .collect();
    assert!(launchers.is_empty(), "a launcher stuck in the plugin is left: {launchers:?}");
    assert!(shim.leftovers().is_empty(), "left behind: {}", shim.leftovers().summary());
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
