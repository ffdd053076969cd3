//! What a Kubernetes node asks of a pod's shim besides run and stop, through a real
//! containerd (a private instance per test) driven by `ctr`: exec into a native container
//! (`kubectl exec`, exec probes), pause and resume (the cgroup freezer), resource updates
//! (in-place pod resize), and their events; exec into a wasm container is refused with
//! the reason.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, ResizePtyRequest, StartRequest, UpdateTaskRequest, WaitRequest,
};
use containerd_client::tonic::Request;
use containerd_client::tonic::metadata::{Ascii, MetadataValue};
use containerd_client::tonic::transport::Channel;
use support::containerd::{Containerd, ImageSpec, build_image, busybox};
use support::corpus;

const DEFAULT_WASMTIME: &str = "default_engine = \"wasmtime\"\n";
const SHELL: &str = "docker.io/library/busybox-shell:test";

/// A busybox image whose entrypoint sleeps, so the container runs until killed.
fn import_shell(ctd: &Containerd) {
    let spec = ImageSpec {
        name: SHELL,
        files: vec![(busybox(), "/bin/busybox"), (corpus("hello"), "/marker.wasm")],
        symlinks: vec![("busybox", "/bin/sh"), ("busybox", "/bin/sleep"), ("busybox", "/bin/cat")],
        entrypoint: vec!["/bin/sleep", "1000"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
}

/// A wasm image that runs until killed.
fn import_loop(ctd: &Containerd) -> String {
    let name = "docker.io/library/loop:test".to_string();
    let spec = ImageSpec {
        name: &name,
        files: vec![(corpus("loop"), "/loop.wasm")],
        symlinks: vec![],
        entrypoint: vec!["/loop.wasm"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    name
}

/// A wasm image that prints to stdout and stderr and exits.
fn import_hello(ctd: &Containerd) -> &'static str {
    let spec = ImageSpec {
        name: "docker.io/library/hello:test",
        files: vec![(corpus("hello"), "/hello.wasm")],
        symlinks: vec![],
        entrypoint: vec!["/hello.wasm"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    spec.name
}

fn run_detached(ctd: &Containerd, image: &str, id: &str) {
    ctd.ctr(&["run", "-d", "--runtime", "io.containerd.wasm.v1", image, id]).assert_ok();
    ctd.wait_for_status(id, "RUNNING");
}

fn stop(ctd: &Containerd, id: &str) {
    ctd.ctr(&["task", "kill", "-s", "SIGKILL", id]).assert_ok();
    ctd.wait_for_status(id, "STOPPED");
    ctd.remove(id);
    ctd.assert_nothing_left(id);
}

/// `ctr events` for this containerd, until [`Events::topics`] stops it.
struct Events(Child);

impl Events {
    fn watch(ctd: &Containerd) -> Self {
        let child =
            ctd.ctr_command(&["events"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        // ctr subscribes before it prints anything; give it a moment to.
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    /// Every topic seen (after a moment for the last ones to arrive), with its line.
    fn lines(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.0.kill();
        let output = self.0.wait_with_output().unwrap();
        String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect()
    }
}

/// Waits (20 s at most) until `ctr task ps` lists `count` processes of task `id`.
fn wait_for_processes(ctd: &Containerd, id: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ps = ctd.ctr(&["task", "ps", id]).stdout;
        if ps.lines().skip(1).count() == count {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never had {count} processes:\n{ps}\n{}", ctd.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each (topic, fragment) is seen, each after the one before.
fn assert_in_order(lines: &[String], expected: &[(&str, &str)]) {
    let mut from = 0;
    for (topic, fragment) in expected {
        let found = lines[from..].iter().position(|l| l.contains(topic) && l.contains(fragment));
        let Some(at) = found else {
            panic!("no {topic} event with {fragment:?} after line {from} among:\n{}", lines.join("\n"));
        };
        from += at + 1;
    }
}

fn assert_event(lines: &[String], topic: &str, fragments: &[&str]) {
    assert!(
        lines.iter().any(|l| l.contains(topic) && fragments.iter().all(|f| l.contains(f))),
        "no {topic} event with {fragments:?} among:\n{}",
        lines.join("\n")
    );
}

/// The container's cgroup in hierarchy `controller` (v1) or the unified one (v2).
fn cgroup_file(ctd: &Containerd, id: &str, v1: (&str, &str), v2: &str) -> PathBuf {
    let v1_dir = PathBuf::from(format!("/sys/fs/cgroup/{}/{}/{id}", v1.0, ctd.namespace));
    if v1_dir.is_dir() {
        v1_dir.join(v1.1)
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{}/{id}/{v2}", ctd.namespace))
    }
}

/// Calls containerd's Tasks service in this test's namespace; a refusal is its message.
fn tasks<F, Fut>(ctd: &Containerd, call: F) -> Result<(), String>
where
    F: FnOnce(TasksClient<Channel>, MetadataValue<Ascii>) -> Fut,
    Fut: std::future::Future<Output = Result<(), containerd_client::tonic::Status>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = containerd_client::connect(ctd.socket()).await.map_err(|e| e.to_string())?;
        call(TasksClient::new(channel), ctd.namespace.parse().unwrap())
            .await
            .map_err(|s| s.message().to_string())
    })
}

fn in_namespace<T>(namespace: MetadataValue<Ascii>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("containerd-namespace", namespace);
    request
}

fn any(type_name: &str, value: &serde_json::Value) -> Option<prost_types::Any> {
    Some(prost_types::Any {
        type_url: format!("types.containerd.io/opencontainers/runtime-spec/1/{type_name}"),
        value: serde_json::to_vec(value).unwrap(),
    })
}

/// containerd's Tasks.Update, as the CRI plugin calls it for an in-place resize (`ctr`
/// 1.6 has no `task update`).
fn update(ctd: &Containerd, id: &str, resources: serde_json::Value) -> Result<(), String> {
    let message = UpdateTaskRequest {
        container_id: id.into(),
        resources: any("LinuxResources", &resources),
        ..Default::default()
    };
    tasks(ctd, |mut client, ns| async move { client.update(in_namespace(ns, message)).await.map(|_| ()) })
}

/// containerd's Tasks.Exec of a shell with a terminal (ctr refuses -t without a console),
/// its stdin and stdout the FIFOs `fifos`.
fn exec_with_terminal(
    ctd: &Containerd,
    id: &str,
    exec_id: &str,
    fifos: Option<(&str, &str)>,
) -> Result<(), String> {
    let process = serde_json::json!({
        "terminal": true,
        "args": ["/bin/sh"],
        "cwd": "/",
        "env": ["PATH=/bin", "TERM=xterm"],
        "user": {"uid": 0, "gid": 0},
    });
    exec_process(ctd, id, exec_id, &process, fifos)
}

/// containerd's Tasks.Exec of `process` (its `terminal` is the request's).
fn exec_process(
    ctd: &Containerd,
    id: &str,
    exec_id: &str,
    process: &serde_json::Value,
    fifos: Option<(&str, &str)>,
) -> Result<(), String> {
    let (stdin, stdout) = fifos.unwrap_or_default();
    let message = ExecProcessRequest {
        container_id: id.into(),
        exec_id: exec_id.into(),
        terminal: process["terminal"].as_bool().unwrap_or(false),
        stdin: stdin.into(),
        stdout: stdout.into(),
        spec: any("Process", process),
        ..Default::default()
    };
    tasks(ctd, |mut client, ns| async move { client.exec(in_namespace(ns, message)).await.map(|_| ()) })
}

fn start_exec(ctd: &Containerd, id: &str, exec_id: &str) -> Result<(), String> {
    let message = StartRequest { container_id: id.into(), exec_id: exec_id.into() };
    tasks(ctd, |mut client, ns| async move { client.start(in_namespace(ns, message)).await.map(|_| ()) })
}

fn resize_exec(ctd: &Containerd, id: &str, exec_id: &str, width: u32, height: u32) -> Result<(), String> {
    let message = ResizePtyRequest { container_id: id.into(), exec_id: exec_id.into(), width, height };
    tasks(ctd, |mut client, ns| async move { client.resize_pty(in_namespace(ns, message)).await.map(|_| ()) })
}

/// The exit status of an exec, once it has exited.
fn wait_exec(ctd: &Containerd, id: &str, exec_id: &str) -> u32 {
    let message = WaitRequest { container_id: id.into(), exec_id: exec_id.into() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = containerd_client::connect(ctd.socket()).await.unwrap();
        let mut client = TasksClient::new(channel);
        client
            .wait(in_namespace(ctd.namespace.parse().unwrap(), message))
            .await
            .unwrap()
            .into_inner()
            .exit_status
    })
}

/// containerd's Tasks.DeleteProcess of an exec.
fn delete_exec(ctd: &Containerd, id: &str, exec_id: &str) -> Result<(), String> {
    let message = DeleteProcessRequest { container_id: id.into(), exec_id: exec_id.into() };
    tasks(
        ctd,
        |mut client, ns| async move { client.delete_process(in_namespace(ns, message)).await.map(|_| ()) },
    )
}

/// libcontainer's saved state of container `id`.
fn libcontainer_state(ctd: &Containerd, id: &str) -> serde_json::Value {
    for instance in std::fs::read_dir("/run/containerd-shim-wasm").unwrap().flatten() {
        let file = instance.path().join(&ctd.namespace).join(id).join("state.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            return serde_json::from_str(&text).unwrap();
        }
    }
    panic!("no libcontainer state for {id}");
}

fn read_trimmed(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

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
    ctd.ctr(&["task", "kill", "--exec-id", "sleeper", "-s", "SIGKILL", "shell"]).assert_ok();
    let status = sleeper.wait().unwrap();
    assert_eq!(status.code(), Some(137), "ctr task exec reports the killed process's status");
    let ps = ctd.ctr(&["task", "ps", "shell"]).stdout;
    assert_eq!(ps.lines().skip(1).count(), 1, "the exec process is gone:\n{ps}");

    // A program that is not there: one line naming it; the container runs on.
    let ran = ctd.ctr(&["task", "exec", "--exec-id", "missing", "shell", "/no/such/program"]);
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("/no/such/program"), "{}", ran.stderr);
    ctd.wait_for_status("shell", "RUNNING");

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
    let fifos = ctd.node.root().join("tty-fifos");
    std::fs::create_dir(&fifos).unwrap();
    let (stdin_path, stdout_path) = (fifos.join("stdin"), fifos.join("stdout"));
    for fifo in [&stdin_path, &stdout_path] {
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
    // Our ends: read-write, so that neither open blocks on the shim's.
    let open = |path: &PathBuf| std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let (mut stdin, stdout) = (open(&stdin_path), open(&stdout_path));
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
    let fifos = ctd.node.root().join("fifos");
    std::fs::create_dir(&fifos).unwrap();
    let (stdin_path, stdout_path) = (fifos.join("stdin"), fifos.join("stdout"));
    for fifo in [&stdin_path, &stdout_path] {
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
    // Held open and never read: the FIFO fills, the writer would block.
    let open = |path: &PathBuf| std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let (_stdin, _stdout) = (open(&stdin_path), open(&stdout_path));
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

/// Runs `command` on a console of its own (script(1), util-linux): `ctr -t` needs one.
fn with_console(command: &str) -> support::Ran {
    support::Ran::from(
        std::process::Command::new("script").args(["-qec", command, "/dev/null"]).output().unwrap(),
    )
}

/// Reads `from` on a thread until `marker` has been seen twice (the terminal echoes the
/// command line, then the output) or `bound` has passed.
fn read_until(from: std::fs::File, marker: &'static str, bound: Duration) -> std::thread::JoinHandle<String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    std::thread::spawn(move || {
        let mut from = from;
        let deadline = Instant::now() + bound;
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while text.matches(marker).count() < 2 && Instant::now() < deadline {
            let mut pollfd = libc::pollfd { fd: from.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one descriptor this thread owns.
            if unsafe { libc::poll(&mut pollfd, 1, 200) } == 1 {
                let n = from.read(&mut buf).unwrap_or(0);
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        text
    })
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
    let ps = ctd.ctr(&["task", "ps", "shell"]).stdout;
    assert_eq!(ps.lines().skip(1).count(), 1, "only the container's process is left:\n{ps}");
    stop(ctd, "shell");
}

#[test]
fn pause_resume_and_update_wasm_and_native_containers() {
    let ctd = Containerd::start("node-pause", DEFAULT_WASMTIME);
    import_shell(&ctd);
    let wasm = import_loop(&ctd);
    for (image, id) in [(wasm.as_str(), "wasm"), (SHELL, "native")] {
        run_detached(&ctd, image, id);
        let events = Events::watch(&ctd);
        let freezer = cgroup_file(&ctd, id, ("freezer", "freezer.state"), "cgroup.freeze");
        ctd.ctr(&["task", "pause", id]).assert_ok();
        ctd.wait_for_status(id, "PAUSED");
        assert!(matches!(read_trimmed(&freezer).as_str(), "FROZEN" | "1"), "{id}: {}", freezer.display());
        let again = ctd.ctr(&["task", "pause", id]);
        assert!(again.stderr.contains("already paused"), "{id}: {}", again.stderr);

        ctd.ctr(&["task", "resume", id]).assert_ok();
        ctd.wait_for_status(id, "RUNNING");
        assert!(matches!(read_trimmed(&freezer).as_str(), "THAWED" | "0"), "{id}: {}", freezer.display());

        // In-place resize: the new memory limit is written to the cgroup.
        let memory = cgroup_file(&ctd, id, ("memory", "memory.limit_in_bytes"), "memory.max");
        update(&ctd, id, serde_json::json!({"memory": {"limit": 50331648}})).unwrap();
        assert_eq!(read_trimmed(&memory), "50331648", "{id}");
        let refused = update(&ctd, id, serde_json::json!({"memory": {"limit": "lots"}})).unwrap_err();
        assert!(refused.contains("not a runtime-spec LinuxResources"), "{id}: {refused}");

        // Killed while paused: it still dies (thawed for it), nothing left.
        ctd.ctr(&["task", "pause", id]).assert_ok();
        ctd.wait_for_status(id, "PAUSED");
        let lines = events.lines();
        assert_event(&lines, "/tasks/paused", &[id]);
        assert_event(&lines, "/tasks/resumed", &[id]);
        stop(&ctd, id);
    }
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
    stop(&ctd, "wasm");
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
