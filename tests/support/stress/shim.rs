//! One shim serving every task, driven over its ttrpc task API as containerd drives a
//! pod's shim: `start` once (in the first task's bundle, as containerd runs it), then
//! Create → Start → Wait → Delete per task, many at once. The shim is this project's
//! (`containerd-shim-wasm-v1`, engine from its config file) or, for reference, Debian's
//! `containerd-shim-runc-v2`, or runwasi's wasmtime shim built by hand (`STRESS_RUNWASI`).
//! Events go to an [`EventSink`] at `TTRPC_ADDRESS`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::bundle::{SpecEdit, Workload, create_request, make_bundle, shared_rootfs};
use super::events::EventSink;
use super::leaks::{self, Leftovers};
use super::task_api::TaskApi;
use super::{Load, Outcome, measure};
use crate::support::containerd::Containerd;
use crate::support::{Node, engines, shim_bin};

/// Bound on Create, Start, Kill and Delete.
pub const CALL_BOUND: Duration = Duration::from_secs(60);
/// Bound on Wait: a task that never ends is a failure, not a hung run.
pub const WAIT_BOUND: Duration = Duration::from_secs(120);

/// Which shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This project's shim; every engine plugin built here is installed, `engine` is
    /// the config file's default.
    Wasm { engine: &'static str },
    /// containerd's runc shim (`containerd-shim-runc-v2` on PATH).
    Runc,
    /// runwasi's `containerd-shim-wasmtime-v1` at this path: built by hand, never by
    /// the tests (see docs/performance.md). It asks containerd for the container's image
    /// at create, so it gets a private containerd of its own; it finds none there and
    /// runs the module in the rootfs, as for any image without wasm layers.
    Runwasi { binary: &'static str },
}

impl Runtime {
    /// runwasi's shim when `STRESS_RUNWASI` names its binary.
    pub fn runwasi_from_env() -> Option<Self> {
        let path = std::env::var("STRESS_RUNWASI").ok().filter(|p| !p.is_empty())?;
        let path = fs::canonicalize(&path).unwrap_or_else(|e| panic!("STRESS_RUNWASI={path}: {e}"));
        Some(Self::Runwasi { binary: Box::leak(path.display().to_string().into_boxed_str()) })
    }
}

pub struct ShimServer {
    pub runtime: Runtime,
    pub api: TaskApi,
    pub address: String,
    /// The shim server process.
    pub pid: i32,
    pub events: EventSink,
    pub namespace: String,
    /// Every task's cgroup is `/<cgroup_parent>/<id>`.
    pub cgroup_parent: String,
    prefix: String,
    /// Applied to every task's spec.
    pub spec_edit: Option<SpecEdit>,
    /// The shim's install (engine directory and config) and the run's files.
    node: Node,
    /// The containerd runwasi's shim talks to.
    containerd: Option<Containerd>,
}

impl ShimServer {
    /// Starts the shim in the bundle of task `<prefix>-0` (made here for `first`).
    pub fn start(label: &str, runtime: Runtime, first: Workload) -> Self {
        let node = Node::new(label);
        if let Runtime::Wasm { engine } = runtime {
            for (name, plugin) in engines() {
                node.install(name, &plugin);
            }
            node.write_config(&format!("default_engine = \"{engine}\"\n"));
        }
        let prefix = format!("{label}-{}", std::process::id());
        let namespace = prefix.clone();
        let cgroup_parent = format!("shim-stress-{prefix}");
        let events = EventSink::start(&node.root().join("events.sock"));
        let work = node.root().to_path_buf();
        let first_bundle = make_bundle(&work, &format!("{prefix}-0"), first, &cgroup_parent, None);
        // The wasm shim server logs to `log` in the bundle it was started in.
        let _ = symlink(work.join("shim.log"), first_bundle.join("log"));
        fs::write(work.join("shim.log"), "").unwrap();

        let containerd = matches!(runtime, Runtime::Runwasi { .. }).then(|| Containerd::start(label, ""));
        let containerd_socket = containerd_socket(containerd.as_ref(), &node);
        let address = start_action(
            runtime,
            &namespace,
            &format!("{prefix}-0"),
            &first_bundle,
            &events,
            &node,
            &containerd_socket,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let api = TaskApi::connect(&address).unwrap();
        let pid = leaks::shim_server(&namespace).unwrap_or(0);
        shared_rootfs(&work, first);
        Self {
            runtime,
            api,
            address,
            pid,
            events,
            namespace,
            cgroup_parent,
            prefix,
            spec_edit: None,
            node,
            containerd,
        }
    }

    /// What containerd does first for every container: the shim's `start` in the
    /// container's bundle (made here), which reuses the pod's server or starts one.
    /// Returns the server's address.
    pub fn start_action(&self, id: &str, workload: Workload) -> Result<String, String> {
        let bundle = make_bundle(self.work(), id, workload, &self.cgroup_parent, self.spec_edit.as_ref());
        let containerd_socket = containerd_socket(self.containerd.as_ref(), &self.node);
        start_action(self.runtime, &self.namespace, id, &bundle, &self.events, &self.node, &containerd_socket)
    }

    /// Installs one more engine plugin as `<name>.so`.
    pub fn install_plugin(&self, name: &str, plugin: &Path) {
        self.node.install(name, plugin);
    }

    pub fn work(&self) -> &Path {
        self.node.root()
    }

    pub fn task_id(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// The shim server's log (wasm shim only).
    pub fn log(&self) -> String {
        fs::read_to_string(self.work().join("shim.log")).unwrap_or_default()
    }

    /// Create → Start → Wait → Delete of task `i`, checking its output and status;
    /// returns create→exit time. A failure deletes what it can and returns the error.
    pub fn run_task(&self, i: usize, workload: Workload) -> Result<Duration, String> {
        let started = Instant::now();
        self.run_for_output(i, workload)?;
        Ok(started.elapsed())
    }

    /// [`run_task`](Self::run_task), returning what the task printed on stdout.
    pub fn run_for_output(&self, i: usize, workload: Workload) -> Result<String, String> {
        let id = self.task_id(i);
        let result = self.run_to_exit(&id, workload);
        let deleted = self.delete(&id);
        let stdout = result?;
        deleted?;
        Ok(stdout)
    }

    fn run_to_exit(&self, id: &str, workload: Workload) -> Result<String, String> {
        let bundle = self.create(id, workload)?;
        self.api.start(id, CALL_BOUND)?;
        let exit = self.api.wait(id, WAIT_BOUND)?;
        if exit.exit_status != 0 {
            let stderr = fs::read_to_string(bundle.join("stderr")).unwrap_or_default();
            return Err(format!("exit status {}: {}", exit.exit_status, stderr.trim()));
        }
        let stdout = fs::read_to_string(bundle.join("stdout")).unwrap_or_default();
        match workload.expected_stdout() {
            Some(expected) if stdout != expected => Err(format!("stdout {stdout:?}, expected {expected:?}")),
            _ => Ok(stdout),
        }
    }

    /// Makes the bundle and creates the task; returns the bundle.
    pub fn create(&self, id: &str, workload: Workload) -> Result<PathBuf, String> {
        let bundle = make_bundle(self.work(), id, workload, &self.cgroup_parent, self.spec_edit.as_ref());
        let rootfs = shared_rootfs(self.work(), workload);
        let mut request = create_request(id, &bundle, &rootfs);
        if let Runtime::Runwasi { .. } = self.runtime {
            // runwasi's shim opens stdio as plain paths (containerd's FIFOs), not `file://`.
            for (field, file) in [(&mut request.stdout, "stdout"), (&mut request.stderr, "stderr")] {
                fs::write(bundle.join(file), "").map_err(|e| format!("{id}: {e}"))?;
                *field = bundle.join(file).display().to_string();
            }
        }
        self.api.create(&request, CALL_BOUND)?;
        Ok(bundle)
    }

    /// A shim serving one running `loop.wasm` on `engine`: the shim, the task id and the
    /// pid, once the program has printed `started`.
    pub fn running_loop(label: &str, engine: &'static str) -> (Self, String, i32) {
        let shim = Self::start(label, Runtime::Wasm { engine }, Workload::WasmLoop);
        let id = shim.task_id(1);
        shim.create(&id, Workload::WasmLoop).unwrap();
        shim.api.start(&id, CALL_BOUND).unwrap();
        let pid = shim.api.state(&id, CALL_BOUND).unwrap().pid as i32;
        assert!(shim.started(&id, pid), "{engine}: the loop program did not start");
        (shim, id, pid)
    }

    /// Whether the program of task `id` (init process `pid`) printed "started" and is
    /// still there, waiting up to 30 s.
    pub fn started(&self, id: &str, pid: i32) -> bool {
        let stdout = self.work().join("bundles").join(id).join("stdout");
        let printed = || fs::read_to_string(&stdout).unwrap_or_default() == "started\n";
        // SAFETY: kill(2) with signal 0 only checks that the process is there.
        let alive = || unsafe { libc::kill(pid, 0) } == 0;
        let until = Instant::now() + Duration::from_secs(30);
        while !printed() && alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        printed() && alive()
    }

    /// Ends task `id` with `signal`, waits for it, deletes it and checks that nothing is
    /// left behind; returns its exit status.
    pub fn end_and_delete(&self, id: &str, signal: i32) -> u32 {
        self.api.kill(id, signal as u32, CALL_BOUND).unwrap_or_else(|e| panic!("signal {signal}: {e}"));
        let status = self.api.wait(id, WAIT_BOUND).unwrap().exit_status;
        self.delete(id).unwrap();
        let left = self.leftovers();
        assert!(left.is_empty(), "left behind: {}", left.summary());
        status
    }

    /// Deletes the task and removes its bundle, which must be left unmounted (as
    /// containerd does). `STRESS_KEEP_BUNDLES=1` keeps them: builds older than the
    /// concurrency fixes depend on the first bundle, their working directory.
    pub fn delete(&self, id: &str) -> Result<(), String> {
        let deleted = self.api.delete(id, CALL_BOUND).map(|_| ());
        let bundle = self.work().join("bundles").join(id);
        if let Runtime::Runwasi { .. } = self.runtime {
            // runwasi's shim leaves the rootfs to containerd, which unmounts it after every
            // task's Delete (this shim's and runc's unmount it themselves: checked here).
            // Its server works in the first task's bundle, as this shim's did before the
            // concurrency fixes: the bundles stay.
            let _ = Command::new("umount").arg(bundle.join("rootfs")).status();
            return deleted;
        }
        if std::env::var_os("STRESS_KEEP_BUNDLES").is_some() {
            return deleted;
        }
        let removed = fs::remove_dir_all(&bundle)
            .map_err(|e| format!("{id}: cannot remove its bundle after delete (rootfs still mounted?): {e}"));
        deleted.and(removed)
    }

    /// `load` tasks of `workload`; samples the server after the first tenth and at the end.
    pub fn run(&self, label: &str, load: Load, workload: Workload) -> Outcome {
        let pid = (self.pid > 0).then_some(self.pid);
        measure(
            label,
            load,
            |i| self.run_task(i, workload),
            |i| self.task_id(i),
            || pid,
            |_| self.leftovers(),
        )
    }

    /// The runtime's per-container state directories for this namespace.
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        match self.runtime {
            Runtime::Runc => vec![Path::new("/run/containerd/runc").join(&self.namespace)],
            Runtime::Runwasi { .. } => vec![Path::new("/run/containerd/wasmtime").join(&self.namespace)],
            Runtime::Wasm { .. } => fs::read_dir("/run/containerd-shim-wasm")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join(&self.namespace))
                .collect(),
        }
    }

    pub fn leftovers(&self) -> Leftovers {
        leaks::leftovers(&self.cgroup_parent, self.work(), &self.state_dirs(), Some(self.pid))
    }

    /// Asks the shim to shut down and waits (bounded) for the server to exit.
    pub fn shutdown(&self) -> Result<(), String> {
        // The wasm shim keeps its server for a container `start` was run for until its
        // Create (containerd always sends one). A test that never created the first task
        // withdraws that start, as it expires otherwise only after 30 s.
        if let Some(socket) = Path::new(self.address.trim_start_matches("unix://")).file_name() {
            let pending = Path::new("/run/containerd-shim-wasm/groups")
                .join(format!("{}.pending", socket.to_string_lossy()))
                .join(self.task_id(0));
            let _ = fs::remove_file(pending);
        }
        let _ = self.api.shutdown(CALL_BOUND);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists()
            && leaks::status_kib(self.pid, "VmRSS:").is_some()
        {
            if Instant::now() > deadline {
                return Err(format!("the shim server (pid {}) did not exit after Shutdown", self.pid));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for ShimServer {
    fn drop(&mut self) {
        // Whatever a failed test left: kill the server and its helpers, unmount, and
        // remove the cgroups.
        if self.pid > 0 && leaks::status_kib(self.pid, "VmRSS:").is_some() {
            for child in leaks::children(self.pid) {
                // SAFETY: kill(2).
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            // SAFETY: kill(2).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let left = self.leftovers();
        for pid in &left.processes {
            if let Some(pid) = pid.split(' ').next().and_then(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill(2).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let mut mounts = left.mounts.clone();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounts {
            let _ = Command::new("umount").arg("-l").arg(mount).status();
        }
        std::thread::sleep(Duration::from_millis(100));
        for cgroup in &left.cgroups {
            let _ = fs::remove_dir(cgroup);
        }
        leaks::remove_cgroup_parent(&self.cgroup_parent);
        for dir in self.state_dirs() {
            let _ = fs::remove_dir_all(dir);
        }
        if let Runtime::Wasm { .. } = self.runtime {
            super::remove_server_files(&self.address, &self.namespace);
        }
    }
}

/// The containerd address a shim is given: a private containerd's for runwasi's shim,
/// else a socket nobody listens on (this shim and runc's need none over ttrpc).
fn containerd_socket(containerd: Option<&Containerd>, node: &Node) -> PathBuf {
    match containerd {
        Some(containerd) => containerd.socket(),
        None => node.root().join("containerd.sock"),
    }
}

/// Runs the shim binary's `start` in `bundle`, as containerd does; returns the address.
fn start_action(
    runtime: Runtime,
    namespace: &str,
    id: &str,
    bundle: &Path,
    events: &EventSink,
    node: &Node,
    containerd_socket: &Path,
) -> Result<String, String> {
    let (binary, argv0) = match runtime {
        Runtime::Wasm { .. } => (shim_bin(), "containerd-shim-wasm-v1"),
        Runtime::Runc => (PathBuf::from("containerd-shim-runc-v2"), "containerd-shim-runc-v2"),
        Runtime::Runwasi { binary } => (PathBuf::from(binary), "containerd-shim-wasmtime-v1"),
    };
    let out = Command::new(&binary)
        .args(["-namespace", namespace, "-id", id])
        .args(["-address", &containerd_socket.display().to_string()])
        .args(["-publish-binary", "/bin/true", "start"])
        .current_dir(bundle)
        .env("TTRPC_ADDRESS", events.address())
        .env("CONTAINERD_SHIM_WASM_CONFIG", node.config())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {argv0}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{argv0} start: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
