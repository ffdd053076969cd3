//! Helpers of the node-operation tests (exec, terminals, pause, update): images they
//! build, containerd's Tasks API called directly (for what `ctr` cannot do), events
//! watched with `ctr events`, FIFOs and consoles.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, ResizePtyRequest, StartRequest, UpdateTaskRequest, WaitRequest,
};
use containerd_client::tonic::Request;
use containerd_client::tonic::metadata::{Ascii, MetadataValue};
use containerd_client::tonic::transport::Channel;

use super::containerd::{Containerd, ImageSpec, build_image, busybox};
use super::{Ran, corpus};

pub const DEFAULT_WASMTIME: &str = "default_engine = \"wasmtime\"\n";
pub const SHELL: &str = "docker.io/library/busybox-shell:test";

/// A busybox image whose entrypoint sleeps, so the container runs until killed.
pub fn import_shell(ctd: &Containerd) {
    let spec = ImageSpec {
        name: SHELL,
        files: vec![(busybox(), "/bin/busybox"), (corpus("hello"), "/marker.wasm")],
        symlinks: vec![("busybox", "/bin/sh"), ("busybox", "/bin/sleep"), ("busybox", "/bin/cat")],
        entrypoint: vec!["/bin/sleep", "1000"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
}

/// A wasm image that runs until killed.
pub fn import_loop(ctd: &Containerd) -> String {
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
pub fn import_hello(ctd: &Containerd) -> &'static str {
    let spec = ImageSpec {
        name: "docker.io/library/hello:test",
        files: vec![(corpus("hello"), "/hello.wasm")],
        symlinks: vec![],
        entrypoint: vec!["/hello.wasm"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    spec.name
}

pub fn run_detached(ctd: &Containerd, image: &str, id: &str) {
    ctd.ctr(&["run", "-d", "--runtime", "io.containerd.wasm.v1", image, id]).assert_ok();
    ctd.wait_for_status(id, "RUNNING");
}

pub fn stop(ctd: &Containerd, id: &str) {
    ctd.ctr(&["task", "kill", "-s", "SIGKILL", id]).assert_ok();
    ctd.wait_for_status(id, "STOPPED");
    ctd.remove(id);
    ctd.assert_nothing_left(id);
}

/// `ctr events` for this containerd, until [`Events::topics`] stops it.
pub struct Events(Child);

impl Events {
    pub fn watch(ctd: &Containerd) -> Self {
        let child =
            ctd.ctr_command(&["events"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        // ctr subscribes before it prints anything; give it a moment to.
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    /// Every topic seen (after a moment for the last ones to arrive), with its line.
    pub fn lines(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.0.kill();
        let output = self.0.wait_with_output().unwrap();
        String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect()
    }
}

/// Waits (20 s at most) until `ctr task ps` lists `count` processes of task `id`.
pub fn wait_for_processes(ctd: &Containerd, id: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if process_count(ctd, id) == count {
            return;
        }
        let ps = ctd.ctr(&["task", "ps", id]).stdout;
        assert!(Instant::now() < deadline, "{id} never had {count} processes:\n{ps}\n{}", ctd.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many processes `ctr task ps` lists in the task's container.
pub fn process_count(ctd: &Containerd, id: &str) -> usize {
    ctd.ctr(&["task", "ps", id]).stdout.lines().skip(1).count()
}

/// Each (topic, fragment) is seen, each after the one before.
pub fn assert_in_order(lines: &[String], expected: &[(&str, &str)]) {
    let mut from = 0;
    for (topic, fragment) in expected {
        let found = lines[from..].iter().position(|l| l.contains(topic) && l.contains(fragment));
        let Some(at) = found else {
            panic!("no {topic} event with {fragment:?} after line {from} among:\n{}", lines.join("\n"));
        };
        from += at + 1;
    }
}

pub fn assert_event(lines: &[String], topic: &str, fragments: &[&str]) {
    assert!(
        lines.iter().any(|l| l.contains(topic) && fragments.iter().all(|f| l.contains(f))),
        "no {topic} event with {fragments:?} among:\n{}",
        lines.join("\n")
    );
}

/// The container's cgroup in hierarchy `controller` (v1) or the unified one (v2).
pub fn cgroup_file(ctd: &Containerd, id: &str, v1: (&str, &str), v2: &str) -> PathBuf {
    let v1_dir = PathBuf::from(format!("/sys/fs/cgroup/{}/{}/{id}", v1.0, ctd.namespace));
    if v1_dir.is_dir() {
        v1_dir.join(v1.1)
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{}/{id}/{v2}", ctd.namespace))
    }
}

/// Calls containerd's Tasks service in this test's namespace; a refusal is its message.
pub fn tasks<F, Fut>(ctd: &Containerd, call: F) -> Result<(), String>
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

pub fn in_namespace<T>(namespace: MetadataValue<Ascii>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("containerd-namespace", namespace);
    request
}

pub fn any(type_name: &str, value: &serde_json::Value) -> Option<prost_types::Any> {
    Some(prost_types::Any {
        type_url: format!("types.containerd.io/opencontainers/runtime-spec/1/{type_name}"),
        value: serde_json::to_vec(value).unwrap(),
    })
}

/// containerd's Tasks.Update, as the CRI plugin calls it for an in-place resize (`ctr`
/// 1.6 has no `task update`).
pub fn update(ctd: &Containerd, id: &str, resources: serde_json::Value) -> Result<(), String> {
    let message = UpdateTaskRequest {
        container_id: id.into(),
        resources: any("LinuxResources", &resources),
        ..Default::default()
    };
    tasks(ctd, |mut client, ns| async move { client.update(in_namespace(ns, message)).await.map(|_| ()) })
}

/// containerd's Tasks.Exec of a shell with a terminal (ctr refuses -t without a console),
/// its stdin and stdout the FIFOs `fifos`.
pub fn exec_with_terminal(
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
pub fn exec_process(
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

pub fn start_exec(ctd: &Containerd, id: &str, exec_id: &str) -> Result<(), String> {
    let message = StartRequest { container_id: id.into(), exec_id: exec_id.into() };
    tasks(ctd, |mut client, ns| async move { client.start(in_namespace(ns, message)).await.map(|_| ()) })
}

pub fn resize_exec(ctd: &Containerd, id: &str, exec_id: &str, width: u32, height: u32) -> Result<(), String> {
    let message = ResizePtyRequest { container_id: id.into(), exec_id: exec_id.into(), width, height };
    tasks(ctd, |mut client, ns| async move { client.resize_pty(in_namespace(ns, message)).await.map(|_| ()) })
}

/// The exit status of an exec, once it has exited.
pub fn wait_exec(ctd: &Containerd, id: &str, exec_id: &str) -> u32 {
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
pub fn delete_exec(ctd: &Containerd, id: &str, exec_id: &str) -> Result<(), String> {
    let message = DeleteProcessRequest { container_id: id.into(), exec_id: exec_id.into() };
    tasks(
        ctd,
        |mut client, ns| async move { client.delete_process(in_namespace(ns, message)).await.map(|_| ()) },
    )
}

/// libcontainer's saved state of container `id`.
pub fn libcontainer_state(ctd: &Containerd, id: &str) -> serde_json::Value {
    for instance in std::fs::read_dir("/run/containerd-shim-wasm").unwrap().flatten() {
        let file = instance.path().join(&ctd.namespace).join(id).join("state.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            return serde_json::from_str(&text).unwrap();
        }
    }
    panic!("no libcontainer state for {id}");
}

/// FIFOs `stdin` and `stdout` in a new directory `dir`, and this test's ends of them,
/// opened read-write so that neither open blocks on the shim's.
pub fn fifos(dir: &Path) -> ((PathBuf, PathBuf), (File, File)) {
    std::fs::create_dir(dir).unwrap();
    let (stdin, stdout) = (dir.join("stdin"), dir.join("stdout"));
    for fifo in [&stdin, &stdout] {
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
    let open = |path: &PathBuf| std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let ends = (open(&stdin), open(&stdout));
    ((stdin, stdout), ends)
}

pub fn read_trimmed(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

/// Runs `command` on a console of its own (script(1), util-linux): `ctr -t` needs one.
pub fn with_console(command: &str) -> Ran {
    Ran::from(std::process::Command::new("script").args(["-qec", command, "/dev/null"]).output().unwrap())
}

/// Reads `from` on a thread until `marker` has been seen twice (the terminal echoes the
/// command line, then the output) or `bound` has passed.
pub fn read_until(
    from: std::fs::File,
    marker: &'static str,
    bound: Duration,
) -> std::thread::JoinHandle<String> {
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
