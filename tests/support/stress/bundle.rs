//! Bundles for the stress runs: one shared root filesystem per workload, bind-mounted
//! into each task's bundle by the shim (a `rootfs` mount in the create request, as
//! containerd passes snapshot mounts), and a `config.json` per task from `ctr oci spec`.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use containerd_shim::api::CreateTaskRequest;
use containerd_shim::protos::types::mount::Mount;

use crate::support::corpus;

/// What each task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The hello module ([`hello_module`]): prints "hello from wasm" on stdout, exits 0.
    WasmHello,
    /// `loop.wasm`: runs until killed.
    WasmLoop,
    /// busybox `true` (the reference for runc's shim): exits 0.
    NativeTrue,
    /// busybox `sleep 3600`: runs until killed.
    NativeSleep,
    /// Whatever wasm program the spec's args name (the test sets them), from the corpus
    /// programs in the wasm root filesystem.
    WasmArgs,
    /// Whatever busybox command the spec's args name.
    NativeArgs,
}

impl Workload {
    pub fn args(self) -> Vec<String> {
        let hello = format!("/{}.wasm", hello_module());
        let args: &[&str] = match self {
            Self::WasmHello => &[&hello],
            Self::WasmLoop => &["/loop.wasm"],
            Self::NativeTrue => &["/bin/true"],
            Self::NativeSleep => &["/bin/sleep", "3600"],
            Self::WasmArgs | Self::NativeArgs => &["/bin/true"],
        };
        args.iter().map(|a| a.to_string()).collect()
    }

    /// What a run that exits prints on stdout.
    pub fn expected_stdout(self) -> Option<&'static str> {
        match self {
            Self::WasmHello => Some("hello from wasm\n"),
            Self::NativeTrue => Some(""),
            Self::WasmLoop | Self::NativeSleep | Self::WasmArgs | Self::NativeArgs => None,
        }
    }

    pub fn is_wasm(self) -> bool {
        matches!(self, Self::WasmHello | Self::WasmLoop | Self::WasmArgs)
    }
}

/// Corpus programs in the wasm root filesystem, as `/<name>.wasm`.
const WASM_PROGRAMS: [&str; 5] = ["hello_tiny", "hello", "loop", "caps", "sleep_then_trap"];

/// The corpus program that hello tasks run: `STRESS_MODULE`, `hello_tiny` by default
/// (163 bytes, the size of module the concurrency issue was measured with: the figures
/// compare shims, not compilers) or `hello` (C with wasi-libc, 4 KiB: cranelift takes
/// about 14 ms of CPU to compile it, more than the shim's own share of a task).
pub fn hello_module() -> &'static str {
    match std::env::var("STRESS_MODULE").as_deref() {
        Ok("hello") => "hello",
        _ => "hello_tiny",
    }
}

/// The default spec of `ctr oci spec` (what `ctr run` gives a container).
fn default_spec() -> serde_json::Value {
    static SPEC: OnceLock<serde_json::Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let out = Command::new("ctr")
            .args(["oci", "spec"])
            .output()
            .expect("ctr is missing: apt-get install containerd (make test does)");
        serde_json::from_slice(&out.stdout).expect("ctr oci spec")
    })
    .clone()
}

/// The shared root filesystem of a workload under `work`, made once (built aside and
/// renamed into place, so that concurrent callers never see it half made).
pub fn shared_rootfs(work: &Path, workload: Workload) -> PathBuf {
    let root = work.join(if workload.is_wasm() { "rootfs-wasm" } else { "rootfs-native" });
    if root.exists() {
        return root;
    }
    let tmp = tempfile::Builder::new().prefix(".rootfs-").tempdir_in(work).unwrap();
    // Mount points of the default spec, so no container has to create them.
    for dir in ["proc", "dev", "sys", "run", "tmp", "bin"] {
        fs::create_dir_all(tmp.path().join(dir)).unwrap();
    }
    if workload.is_wasm() {
        for program in WASM_PROGRAMS {
            fs::copy(corpus(program), tmp.path().join(format!("{program}.wasm"))).unwrap();
        }
    } else {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "/bin/busybox is missing: apt-get install busybox-static (make test does)"
        );
        fs::copy(busybox, tmp.path().join("bin/busybox")).unwrap();
        for applet in ["true", "sleep", "sh", "cat", "grep"] {
            symlink("busybox", tmp.path().join("bin").join(applet)).unwrap();
        }
    }
    // Only root may read it (the capability tests).
    fs::write(tmp.path().join("secret"), "only for root\n").unwrap();
    fs::set_permissions(tmp.path().join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // Another caller may have won the race: its copy is as good.
    let _ = fs::rename(tmp.keep(), &root);
    root
}

/// A change to a task's spec (hooks, say), given the task id.
pub type SpecEdit = Box<dyn Fn(&str, &mut serde_json::Value) + Send + Sync>;

/// Writes `<work>/bundles/<id>/config.json` and returns the bundle directory.
pub fn make_bundle(
    work: &Path,
    id: &str,
    workload: Workload,
    cgroup_parent: &str,
    edit: Option<&SpecEdit>,
) -> PathBuf {
    let dir = work.join("bundles").join(id);
    fs::create_dir_all(dir.join("rootfs")).unwrap();
    let mut spec = default_spec();
    spec["process"]["args"] = serde_json::json!(workload.args());
    spec["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{cgroup_parent}/{id}"));
    spec["hostname"] = serde_json::json!("stress");
    // Every task of a run is in one pod: one shim serves them all.
    spec["annotations"] = serde_json::json!({ "io.kubernetes.cri.sandbox-id": cgroup_parent });
    if let Some(edit) = edit {
        edit(id, &mut spec);
    }
    fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    dir
}

/// The create request containerd would send for this bundle: the shared root bind
/// mounted, stdout and stderr appended to files in the bundle.
pub fn create_request(id: &str, bundle: &Path, rootfs: &Path) -> CreateTaskRequest {
    let mut req = CreateTaskRequest::new();
    req.id = id.into();
    req.bundle = bundle.display().to_string();
    req.stdout = format!("file://{}", bundle.join("stdout").display());
    req.stderr = format!("file://{}", bundle.join("stderr").display());
    let mut mount = Mount::new();
    mount.type_ = "bind".into();
    mount.source = rootfs.display().to_string();
    mount.options = vec!["rbind".into(), "rw".into()];
    req.rootfs = vec![mount];
    req
}
