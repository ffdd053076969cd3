//! A private containerd for end-to-end tests: its own root, state, sockets and config
//! under a scratch directory (never a system instance), with the freshly built shim on
//! its `PATH` (as `containerd-shim-wasm-v1` and `containerd-shim-wasmtime-v1`) and every
//! engine plugin built here in the shim's engine directory. Driven with `ctr`.
//!
//! Needs Debian's `containerd` package (`make e2e` and `.ci/run` install it); a missing
//! `containerd` or `ctr` fails the test with the command that installs it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Node, Ran, engines, path_str, target_dir};

/// The sandbox ("pause") image of [`Containerd::start_cri`].
pub const PAUSE_IMAGE: &str = "docker.io/library/pause-test:latest";

pub struct Containerd {
    pub node: Node,
    pub namespace: String,
    child: Child,
}

impl Containerd {
    /// Starts a private containerd; `config_extra` is added to the shim's config file.
    pub fn start(name: &str, shim_config_extra: &str) -> Self {
        // A namespace of this run only: a crashed earlier run cannot collide with it.
        let namespace = format!("{name}-{}", std::process::id());
        Self::start_with(name, shim_config_extra, namespace, |_| {
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".into()
        })
    }

    /// Starts a private containerd with its CRI plugin, as on a Kubernetes node: one
    /// runtime handler per built engine, named after it (`runtime_type` this shim, the
    /// engine in a `ConfigPath` file: containerd 1.6 passes no other option), the sandbox
    /// image [`PAUSE_IMAGE`] (the caller imports it), streaming on a loopback port of the
    /// kernel's choosing, no CNI (pods use the host's network), and no lowering of
    /// `oom_score_adj` (root here lacks CAP_SYS_RESOURCE). Its namespace is CRI's,
    /// `k8s.io`. With `CONTAINERD_BIN` naming a containerd 2.x (by hand), its version 3
    /// config, and the engine in each handler's `options`.
    pub fn start_cri(name: &str, shim_config_extra: &str) -> Self {
        Self::start_with(name, shim_config_extra, "k8s.io".into(), |root| {
            let runtimes = root.join("runtimes");
            fs::create_dir_all(&runtimes).unwrap();
            // The first engine is the default runtime (the default runc one is not configured).
            let first = engines().first().map(|(engine, _)| *engine).unwrap_or("wasmtime");
            let (cni_bin, cni_conf) = (root.join("cni/bin"), root.join("cni/conf"));
            if is_containerd_2() {
                // By hand only (CONTAINERD_BIN): the engine in `options`, which reaches the
                // shim as ConfigBody.
                let (images, runtime) =
                    ("plugins.'io.containerd.cri.v1.images'", "plugins.'io.containerd.cri.v1.runtime'");
                let mut config = format!(
                    "[{images}.pinned_images]\n  sandbox = {PAUSE_IMAGE:?}\n\
                     [plugins.'io.containerd.grpc.v1.cri']\n  stream_server_address = \"127.0.0.1\"\n  \
                     stream_server_port = \"0\"\n\
                     [{runtime}]\n  enable_selinux = false\n  restrict_oom_score_adj = true\n\
                     [{runtime}.cni]\n  bin_dirs = [{cni_bin:?}]\n  conf_dir = {cni_conf:?}\n\
                     [{runtime}.containerd]\n  default_runtime_name = {first:?}\n"
                );
                for (engine, _) in engines() {
                    config += &format!(
                        "[{runtime}.containerd.runtimes.{engine}]\n  runtime_type = \"io.containerd.wasm.v1\"\n\
                         [{runtime}.containerd.runtimes.{engine}.options]\n  engine = {engine:?}\n"
                    );
                }
                // Registries configured in `certs.d/<host>/` (a test's own, on loopback).
                let certs = root.join("certs.d");
                fs::create_dir_all(&certs).unwrap();
                config += &format!("[{images}.registry]\n  config_path = {certs:?}\n");
                return config;
            }
            let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
            let mut config = format!(
                "[{cri}]\n  sandbox_image = {PAUSE_IMAGE:?}\n  stream_server_address = \"127.0.0.1\"\n  \
                 stream_server_port = \"0\"\n  enable_selinux = false\n  \
                 restrict_oom_score_adj = true\n\
                 [{cri}.cni]\n  bin_dir = {cni_bin:?}\n  conf_dir = {cni_conf:?}\n\
                 [{cri}.containerd]\n  default_runtime_name = {first:?}\n",
            );
            for (engine, _) in engines() {
                let options = runtimes.join(format!("{engine}.toml"));
                fs::write(&options, format!("engine = {engine:?}\n")).unwrap();
                config += &format!(
                    "[{cri}.containerd.runtimes.{engine}]\n  runtime_type = \"io.containerd.wasm.v1\"\n\
                     [{cri}.containerd.runtimes.{engine}.options]\n  ConfigPath = {options:?}\n"
                );
            }
            config
        })
    }

    fn start_with(
        name: &str,
        shim_config_extra: &str,
        namespace: String,
        plugins: impl FnOnce(&Path) -> String,
    ) -> Self {
        for tool in [containerd_bin(), ctr_bin()] {
            assert!(
                Command::new(&tool).arg("--version").output().is_ok(),
                "{tool} is missing: apt-get install containerd runc (make e2e does)"
            );
        }
        let node = Node::new(name);
        for (engine, plugin) in engines() {
            node.install(engine, &plugin);
        }
        node.write_config(shim_config_extra);
        let root = node.root();
        let bin = root.join("bin");
        fs::create_dir(&bin).unwrap();
        for link in ["containerd-shim-wasm-v1", "containerd-shim-wasmtime-v1"] {
            symlink(super::shim_bin(), bin.join(link)).unwrap();
        }
        let config = format!(
            "version = {}\nroot = {:?}\nstate = {:?}\n{}[grpc]\n  address = {:?}\n[ttrpc]\n  address = {:?}\n",
            if is_containerd_2() { 3 } else { 2 },
            root.join("root"),
            root.join("state"),
            plugins(root),
            root.join("c.sock"),
            root.join("c.sock.ttrpc"),
        );
        fs::write(root.join("containerd.toml"), config).unwrap();
        let child = spawn(&node);
        let containerd = Self { node, namespace, child };
        containerd.wait_ready();
        containerd
    }

    /// Stops containerd (SIGTERM, as a service manager does) and starts it again with the
    /// same config, root and sockets; running shims and tasks stay.
    pub fn restart(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        self.child = spawn(&self.node);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.ctr(&["version"]).code != Some(0) {
            assert!(Instant::now() < deadline, "containerd did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.node.root().join("c.sock")
    }

    pub fn ttrpc_socket(&self) -> PathBuf {
        self.node.root().join("c.sock.ttrpc")
    }

    /// `ctr` against this containerd, in this test's namespace.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(ctr_bin());
        cmd.arg("-a").arg(self.socket()).arg("-n").arg(&self.namespace).args(args).stdin(Stdio::null());
        cmd
    }

    pub fn ctr(&self, args: &[&str]) -> Ran {
        Ran::from(self.ctr_command(args).output().unwrap())
    }

    /// `ctr run --rm` with the wasm runtime (or `runtime`), image, container id, args.
    pub fn run(&self, extra: &[&str], image: &str, id: &str, args: &[&str]) -> Ran {
        let mut all = vec!["run", "--rm", "--runtime", "io.containerd.wasm.v1"];
        all.extend_from_slice(extra);
        all.extend_from_slice(&[image, id]);
        all.extend_from_slice(args);
        self.ctr(&all)
    }

    pub fn import(&self, tarball: &Path) {
        let ran = self.ctr(&["images", "import", path_str(tarball)]);
        assert_eq!(ran.code, Some(0), "import {}: {}", tarball.display(), ran.stderr);
    }

    /// Runs the shim binary's `action` (start, delete) for container `id` of `bundle`,
    /// as containerd's task manager does.
    pub fn shim_action(&self, bundle: &Path, id: &str, action: &str) -> std::process::Output {
        Command::new(super::shim_bin())
            .args(["-namespace", &self.namespace, "-id", id, "-address", path_str(&self.socket())])
            .args(["-publish-binary", "containerd", action])
            .current_dir(bundle)
            .env("TTRPC_ADDRESS", self.ttrpc_socket())
            .env("CONTAINERD_SHIM_WASM_CONFIG", self.node.config())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.node.root().join("containerd.log")).unwrap_or_default()
    }

    /// Waits (20 s at most) until `ctr task ls` shows task `id` in `status`.
    pub fn wait_for_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(id).as_deref() != Some(status) {
            let ls = self.ctr(&["task", "ls"]).stdout;
            assert!(Instant::now() < deadline, "{id} never reached {status}:\n{ls}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The task's status as `ctr task ls` shows it (RUNNING, PAUSED, STOPPED…).
    pub fn status(&self, id: &str) -> Option<String> {
        let ls = self.ctr(&["task", "ls"]).stdout;
        let row =
            ls.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|f| f.first() == Some(&id))?;
        row.last().map(|s| s.to_string())
    }

    /// Deletes the task and container; returns `ctr task rm`'s stderr (it names the exit
    /// code).
    pub fn remove(&self, id: &str) -> String {
        let rm = self.ctr(&["task", "rm", id]);
        assert_eq!(rm.code, Some(0), "{}", rm.stderr);
        self.ctr(&["containers", "rm", id]).assert_ok();
        rm.stderr
    }

    /// Nothing of container `id` is left: process, mount, cgroup, libcontainer state.
    pub fn assert_nothing_left(&self, id: &str) {
        assert_eq!(
            processes_matching(&format!("\"id\":\"{id}\"")),
            Vec::<i32>::new(),
            "a process of {id} is left"
        );
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle_rootfs = format!(
            "{}/state/io.containerd.runtime.v2.task/{}/{id}/rootfs",
            self.node.root().display(),
            self.namespace
        );
        let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&bundle_rootfs)).collect();
        assert!(left.is_empty(), "a mount of {id} is left: {left:#?}");
        for cgroup in [
            format!("/sys/fs/cgroup/memory/{}/{id}", self.namespace),
            format!("/sys/fs/cgroup/pids/{}/{id}", self.namespace),
            format!("/sys/fs/cgroup/{}/{id}", self.namespace),
        ] {
            assert!(!Path::new(&cgroup).exists(), "cgroup {cgroup} is left");
        }
        // libcontainer state: /run/containerd-shim-wasm/<containerd instance>/<namespace>/<id>
        for instance in fs::read_dir("/run/containerd-shim-wasm").into_iter().flatten().flatten() {
            let state = instance.path().join(&self.namespace).join(id);
            assert!(!state.exists(), "state {} is left", state.display());
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let tasks = self.ctr(&["task", "ls", "-q"]).stdout;
        for id in tasks.lines() {
            self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            self.ctr(&["task", "rm", "-f", id]);
        }
        for id in self.ctr(&["containers", "ls", "-q"]).stdout.lines() {
            self.ctr(&["containers", "rm", id]);
        }
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        // Shim servers outlive containerd by design; a failed test leaves this run's. A
        // shim action containerd ran (`delete` after a dead shim) is let finish: killed,
        // it would leave the group files it was removing.
        let socket = self.socket().display().to_string();
        let shim_processes = || -> Vec<(i32, Vec<String>)> {
            processes_matching(&format!("-namespace {} ", self.namespace))
                .into_iter()
                .map(|pid| {
                    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    (
                        pid,
                        cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect(),
                    )
                })
                // Not another containerd's (CRI's namespace is k8s.io for all).
                .filter(|(_, args): &(i32, Vec<String>)| args.contains(&socket))
                .collect()
        };
        let is_server = |args: &Vec<String>| args.iter().any(|a| a == "-socket");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while shim_processes().iter().any(|(_, args)| !is_server(args))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for (pid, args) in shim_processes() {
            // SAFETY: kill(2) on a shim process of this test's namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if let Some(address) = args.iter().skip_while(|a| *a != "-socket").nth(1) {
                super::stress::remove_server_files(address, &self.namespace);
            }
        }
        // CRI's namespace is shared by name with any other containerd on the node.
        if self.namespace != "k8s.io" {
            super::stress::remove_server_files("", &self.namespace);
            // ctr puts containers in /<namespace>/<id>; the runtime removes only the leaf.
            super::stress::leaks::remove_cgroup_parent(&self.namespace);
            // containerd's runc shim keeps its state in /run/containerd/runc/<namespace> and
            // leaves the directory when its last container goes (it is empty by now).
            let _ = fs::remove_dir(format!("/run/containerd/runc/{}", self.namespace));
        }
        // Unmount what the snapshotter left under the scratch directory.
        let root = self.node.root().display().to_string();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> =
            mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(&root)).collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
}

/// runtimeoptions.v1.Options { type_url = 1, config_body = 3 }, encoded by hand: the
/// options containerd 1.7+ send (1.6 never sends `ConfigBody`).
pub fn options_with_body(body: &str) -> containerd_shim::protos::protobuf::well_known_types::any::Any {
    runtime_options(3, body)
}

/// runtimeoptions.v1.Options { type_url = 1, config_path = 2 }: what containerd 1.6 sends.
pub fn options_with_path(path: &Path) -> containerd_shim::protos::protobuf::well_known_types::any::Any {
    runtime_options(2, &path.display().to_string())
}

fn runtime_options(field: u8, text: &str) -> containerd_shim::protos::protobuf::well_known_types::any::Any {
    let mut value = Vec::new();
    for (field, text) in [(1u8, "runtimeoptions.v1.Options"), (field, text)] {
        value.push((field << 3) | 2);
        value.push(text.len() as u8);
        value.extend_from_slice(text.as_bytes());
    }
    let mut any = containerd_shim::protos::protobuf::well_known_types::any::Any::new();
    any.type_url = "runtimeoptions.v1.Options".into();
    any.value = value;
    any
}

/// containerd with the node's config, logging (appending) to `containerd.log`.
fn spawn(node: &Node) -> Child {
    let root = node.root();
    let log = fs::OpenOptions::new().create(true).append(true).open(root.join("containerd.log")).unwrap();
    let path = format!("{}:{}", root.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    Command::new(containerd_bin())
        .arg("--config")
        .arg(root.join("containerd.toml"))
        .env("PATH", path)
        .env("CONTAINERD_SHIM_WASM_CONFIG", node.config())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start containerd")
}

/// An image tarball built by `oci-image-builder` from corpus programs and files.
pub struct ImageSpec<'a> {
    pub name: &'a str,
    /// (host file, image path)
    pub files: Vec<(PathBuf, &'a str)>,
    /// (target, image path)
    pub symlinks: Vec<(&'a str, &'a str)>,
    pub entrypoint: Vec<&'a str>,
}

pub fn build_image(spec: &ImageSpec<'_>, out_dir: &Path) -> PathBuf {
    run_image_builder(spec, &[], None, out_dir)
}

/// An image in runwasi's format: each of `wasm_layers` is a layer that is the module
/// itself (platform wasip1/wasm), besides the files of `spec`, if any.
pub fn build_wasm_layer_image(spec: &ImageSpec<'_>, wasm_layers: &[PathBuf], out_dir: &Path) -> PathBuf {
    run_image_builder(spec, wasm_layers, None, out_dir)
}

/// The same, its platform `os/arch` instead of wasip1/wasm.
pub fn build_wasm_layer_image_for(
    spec: &ImageSpec<'_>,
    wasm_layers: &[PathBuf],
    platform: &str,
    out_dir: &Path,
) -> PathBuf {
    run_image_builder(spec, wasm_layers, Some(platform), out_dir)
}

fn run_image_builder(
    spec: &ImageSpec<'_>,
    wasm_layers: &[PathBuf],
    platform: Option<&str>,
    out_dir: &Path,
) -> PathBuf {
    let builder = target_dir().join("debug/oci-image-builder");
    assert!(
        builder.is_file(),
        "{} is missing: run `make fixtures` first (`make test` does)",
        builder.display()
    );
    let out = out_dir.join(format!("{}.tar", spec.name.replace(['/', ':'], "_")));
    let mut cmd = Command::new(builder);
    cmd.arg("--name").arg(spec.name).arg("-o").arg(&out);
    for (host, image) in &spec.files {
        cmd.arg("--file").arg(format!("{}:{image}", host.display()));
    }
    for (target, image) in &spec.symlinks {
        cmd.arg("--symlink").arg(format!("{target}:{image}"));
    }
    for layer in wasm_layers {
        cmd.arg("--wasm-layer").arg(layer);
    }
    if let Some(platform) = platform {
        cmd.arg("--platform").arg(platform);
    }
    for arg in &spec.entrypoint {
        cmd.arg(format!("--entrypoint={arg}"));
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "oci-image-builder failed for {}", spec.name);
    out
}

/// The containerd to test: Debian's, or `CONTAINERD_BIN` (by hand, e.g. a 2.x build).
fn containerd_bin() -> String {
    std::env::var("CONTAINERD_BIN").unwrap_or_else(|_| "containerd".into())
}

/// The `ctr` to drive it with: Debian's, or `CTR_BIN`.
fn ctr_bin() -> String {
    std::env::var("CTR_BIN").unwrap_or_else(|_| "ctr".into())
}

/// Whether the containerd under test is 2.x (its config is version 3).
pub fn is_containerd_2() -> bool {
    let version =
        Command::new(containerd_bin()).arg("--version").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&version)
        .split_whitespace()
        .nth(2)
        .is_some_and(|v| v.trim_start_matches('v').starts_with("2."))
}

/// Debian's static busybox, for native containers.
pub fn busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    assert!(path.is_file(), "/bin/busybox is missing: apt-get install busybox-static (make e2e does)");
    path
}

/// Pids of processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) {
            pids.push(pid);
        }
    }
    pids
}
