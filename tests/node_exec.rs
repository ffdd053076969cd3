//! Exec into running containers through a real containerd (a private instance per
//! test): `ctr task exec` and containerd's Tasks API as `kubectl exec` and exec probes use
//! them, with and without a terminal, concurrently, into a container sharing a PID
//! namespace; `ctr run -t`; and exec into a wasm container refused with the reason.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::containerd::Containerd;
use support::node::*;

#[test]
fn exec_into_a_native_container() {
    let ctd = Containerd::start("node-exec", DEFAULT_WASMTIME);
    import_shell(&ctd);
    run_detached(&ctd, SHELL, "shell");
    let events = Events::watch(&ctd);

    // The process joins the container: its pid namespace (pid 1 is the sleep), its root
    // (the image's file), its cgroup; stdout, stderr and the exit code come back.
    let ran = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        "shell",
        "/bin/sh",
        "-c",
        "cat /proc/1/comm; test -f /marker.wasm && echo marker; \
         case $(cat /proc/self/cgroup) in *shell*) echo cgroup;; esac; echo oops >&2; exit 7",
    ]);
    assert_eq!(ran.code, Some(7), "stdout:\n{}\nstderr:\n{}", ran.stdout, ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines, ["sleep", "marker", "cgroup"], "{}", ran.stdout);
    assert!(ran.stderr.contains("oops"), "{}", ran.stderr);

    // stdin reaches the exec process.
    let mut cat = ctd
        .ctr_command(&["task", "exec", "--exec-id", "cat", "shell", "/bin/cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin.take().unwrap().write_all(b"through stdin\n").unwrap();
    let out = cat.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through stdin\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));

    // A long exec is listed, killed by its exec id, and its exit reaches ctr.
    let mut sleeper = ctd
        .ctr_command(&["task", "exec", "--exec-id", "sleeper", "shell", "/bin/sleep", "999"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_processes(&ctd, "shell", 2);
    let refused = delete_exec(&ctd, "shell", "sleeper").unwrap_err();
    assert!(refused.contains("still running"), "{refused}");
    assert_eq!(process_count(&ctd, "shell"), 2, "the refused delete left the exec process running");
    ctd.ctr(&["task", "kill", "--exec-id", "sleeper", "-s", "SIGKILL", "shell"]).assert_ok();
    let status = sleeper.wait().unwrap();
    assert_eq!(status.code(), Some(137), "ctr task exec reports the killed process's status");
    assert_eq!(process_count(&ctd, "shell"), 1, "the exec process is gone");

    // A program that is not there: one line naming it; the container runs on.
    let ran = ctd.ctr(&["task", "exec", "--exec-id", "missing", "shell", "/no/such/program"]);
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("/no/such/program"), "{}", ran.stderr);
    ctd.wait_for_status("shell", "RUNNING");
    // Its process ended with the failed execve and is gone (bounded wait).
    wait_for_processes(&ctd, "shell", 1);

    // The container's seccomp profile holds in an exec process too (libcontainer's tenant
    // setup drops it; the shim loads it).
    ctd.ctr(&["run", "-d", "--seccomp", "--runtime", "io.containerd.wasm.v1", SHELL, "filtered"]).assert_ok();
    ctd.wait_for_status("filtered", "RUNNING");
    let ran = ctd.ctr(&["task", "exec", "--exec-id", "status", "filtered", "/bin/cat", "/proc/self/status"]);
    ran.assert_ok();
    let seccomp = ran.stdout.lines().find(|l| l.starts_with("Seccomp:")).unwrap_or_default();
    assert_eq!(seccomp.split_whitespace().nth(1), Some("2"), "filter mode expected: {seccomp:?}");
    stop(&ctd, "filtered");

    // Deleted with an exec running: the exec's exit is published before the task's delete.
    let mut lingering = ctd
        .ctr_command(&["task", "exec", "--exec-id", "lingering", "shell", "/bin/sleep", "998"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_processes(&ctd, "shell", 2);
    stop(&ctd, "shell");
    let _ = lingering.wait();

    let lines = events.lines();
    assert_in_order(
        &lines,
        &[("/tasks/exec-added", "probe"), ("/tasks/exec-started", "probe"), ("/tasks/exit", "probe")],
    );
    assert_in_order(&lines, &[("/tasks/exit", "lingering"), ("/tasks/delete", "shell")]);
}

#[test]
fn terminals_for_exec_and_for_the_container() {
    let ctd = Containerd::start("node-exec-tty", DEFAULT_WASMTIME);
    import_shell(&ctd);
    run_detached(&ctd, SHELL, "shell");
    let ((stdin_path, stdout_path), (mut stdin, stdout)) = fifos(&ctd.node.root().join("tty-fifos"));
    let (stdin_str, stdout_str) = (stdin_path.to_str().unwrap(), stdout_path.to_str().unwrap());
    exec_with_terminal(&ctd, "shell", "tty", Some((stdin_str, stdout_str))).unwrap();
    start_exec(&ctd, "shell", "tty").unwrap();
    resize_exec(&ctd, "shell", "tty", 123, 45).unwrap();
    let output = read_until(stdout, "done", Duration::from_secs(20));
    stdin.write_all(b"/bin/busybox stty size; /bin/busybox tty; echo done; exit 5\n").unwrap();
    let output = output.join().unwrap();
    assert!(output.contains("45 123"), "the window size reaches the terminal:\n{output}");
    assert!(output.contains("/dev/pts/"), "a terminal:\n{output}");
    assert_eq!(wait_exec(&ctd, "shell", "tty"), 5);
    delete_exec(&ctd, "shell", "tty").unwrap();

    // `ctr task exec -t` itself, given a console by script(1) (util-linux).
    let ctr = format!(
        "ctr -a {} -n {} task exec -t --exec-id ctr-tty shell /bin/busybox tty",
        ctd.socket().display(),
        ctd.namespace
    );
    let ran = with_console(&ctr);
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("/dev/pts/"), "{}", ran.stdout);
    stop(&ctd, "shell");

    // `ctr run -t`: the container's own process on a terminal, native and wasm.
    let run = |image: &str, id: &str, args: &str| {
        with_console(&format!(
            "ctr -a {} -n {} run --rm -t --runtime io.containerd.wasm.v1 {image} {id} {args}",
            ctd.socket().display(),
            ctd.namespace
        ))
    };
    let native = run(SHELL, "tty-native", "/bin/busybox tty");
    assert_eq!(native.code, Some(0), "{}{}", native.stdout, native.stderr);
    assert!(native.stdout.contains("/dev/pts/"), "{}", native.stdout);
    ctd.assert_nothing_left("tty-native");
    let hello = import_hello(&ctd);
    let wasm = run(hello, "tty-wasm", "");
    assert_eq!(wasm.code, Some(0), "{}{}", wasm.stdout, wasm.stderr);
    assert!(wasm.stdout.contains("hello from wasm"), "{:?}", wasm.stdout);
    ctd.assert_nothing_left("tty-wasm");
    // The console sockets are gone (this is the only test here that makes any).
    let sockets: Vec<_> =
        std::fs::read_dir("/run/containerd-shim-wasm/tty").into_iter().flatten().flatten().collect();
    assert!(sockets.is_empty(), "console sockets left: {sockets:?}");
}

#[test]
fn a_terminal_nobody_reads_does_not_hold_the_shim() {
    let ctd = Containerd::start("node-tty-unread", DEFAULT_WASMTIME);
    import_shell(&ctd);
    run_detached(&ctd, SHELL, "shell");
    let server = support::stress::leaks::shim_server(&ctd.namespace).expect("the shim server");
    let fds = || std::fs::read_dir(format!("/proc/{server}/fd")).unwrap().count();
    // A first exec starts the launcher that runs execs (its channel stays open).
    ctd.ctr(&["task", "exec", "--exec-id", "warm", "shell", "/bin/busybox", "true"]).assert_ok();
    let before = fds();
    // Held open and never read: the FIFO fills, the writer would block.
    let ((stdin_path, stdout_path), _ends) = fifos(&ctd.node.root().join("fifos"));
    let (stdin_str, stdout_str) = (stdin_path.to_str().unwrap(), stdout_path.to_str().unwrap());
    let process = serde_json::json!({
        "terminal": true,
        "args": ["/bin/busybox", "yes"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0},
    });
    exec_process(&ctd, "shell", "yes", &process, Some((stdin_str, stdout_str))).unwrap();
    start_exec(&ctd, "shell", "yes").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    ctd.ctr(&["task", "kill", "--exec-id", "yes", "-s", "SIGKILL", "shell"]).assert_ok();
    assert_eq!(wait_exec(&ctd, "shell", "yes"), 137);
    delete_exec(&ctd, "shell", "yes").unwrap();
    // The terminal's copy ended: the server holds no more descriptors than before.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds() > before {
        assert!(
            Instant::now() < deadline,
            "the shim server holds {} descriptors, {before} before the exec",
            fds()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(&ctd, "shell");
}

#[test]
fn a_container_sharing_a_pid_namespace_takes_its_processes_along() {
    let ctd = Containerd::start("node-shared-pid", DEFAULT_WASMTIME);
    import_shell(&ctd);
    // "pod" holds the PID namespace that "member" joins, as containers of a Kubernetes
    // pod with a shared process namespace join the sandbox's.
    run_detached(&ctd, SHELL, "pod");
    let pod_pid = ctd.ctr(&["task", "ls"]).stdout.lines().find_map(|l| {
        let mut fields = l.split_whitespace();
        (fields.next() == Some("pod")).then(|| fields.next().unwrap().to_string())
    });
    let namespace = format!("pid:/proc/{}/ns/pid", pod_pid.unwrap());
    ctd.ctr(&["run", "-d", "--runtime", "io.containerd.wasm.v1", "--with-ns", &namespace, SHELL, "member"])
        .assert_ok();
    ctd.wait_for_status("member", "RUNNING");
    let events = Events::watch(&ctd);
    let mut lingering = ctd
        .ctr_command(&["task", "exec", "--exec-id", "lingering", "member", "/bin/sleep", "997"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_processes(&ctd, "member", 2);
    // The kernel kills nothing when "member"'s init dies (it is not its namespace's
    // init): the shim kills the rest, and the exec's exit event goes first.
    ctd.ctr(&["task", "kill", "-s", "SIGKILL", "member"]).assert_ok();
    ctd.wait_for_status("member", "STOPPED");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = lingering.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = lingering.kill();
            panic!("the exec process outlived its container's init");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(137), "the exec process was killed");
    let lines = events.lines();
    assert_in_order(&lines, &[("/tasks/exit", "\"lingering\""), ("/tasks/exit", "\"id\":\"member\"")]);
    ctd.remove("member");
    ctd.assert_nothing_left("member");
    ctd.wait_for_status("pod", "RUNNING");
    stop(&ctd, "pod");
}

#[test]
fn concurrent_execs_each_get_their_own_exit_and_output() {
    let ctd = Containerd::start("node-exec-many", DEFAULT_WASMTIME);
    import_shell(&ctd);
    run_detached(&ctd, SHELL, "shell");
    let ctd = &ctd;
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..12)
            .map(|n| {
                scope.spawn(move || {
                    let script = format!("echo exec-{n}; exit {n}");
                    (
                        n,
                        ctd.ctr(&[
                            "task",
                            "exec",
                            "--exec-id",
                            &format!("e{n}"),
                            "shell",
                            "/bin/sh",
                            "-c",
                            &script,
                        ]),
                    )
                })
            })
            .collect();
        for run in runs {
            let (n, ran) = run.join().unwrap();
            assert_eq!(ran.code, Some(n), "exec {n}: {}", ran.stderr);
            assert_eq!(ran.stdout, format!("exec-{n}\n"), "exec {n}");
        }
    });
    assert_eq!(process_count(ctd, "shell"), 1, "only the container's process is left");
    stop(ctd, "shell");
}

#[test]
fn exec_into_a_wasm_container_is_refused_with_the_reason() {
    let ctd = Containerd::start("node-wasm-exec", DEFAULT_WASMTIME);
    let wasm = import_loop(&ctd);
    run_detached(&ctd, &wasm, "wasm");
    let ran = ctd.ctr(&["task", "exec", "--exec-id", "sh", "wasm", "/bin/sh"]);
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("runs a WebAssembly module"), "{}", ran.stderr);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    let tty = exec_with_terminal(&ctd, "wasm", "tty", None).unwrap_err();
    assert!(tty.contains("runs a WebAssembly module"), "{tty}");
    ctd.wait_for_status("wasm", "RUNNING");
    assert_eq!(process_count(&ctd, "wasm"), 1, "a refused exec left a process");
    stop(&ctd, "wasm");
}
