//! The same load through a real containerd (Debian's 1.6, a private instance): `ctr run
//! --rm` per task, every task of a run in one pod (`io.kubernetes.cri.sandbox-id`), so
//! one shim serves them all, as on a Kubernetes node. The reference is containerd's runc
//! shim (`io.containerd.runc.v2`) with busybox `true`, through the same containerd.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::bundle::hello_module;
use super::leaks::{self, Leftovers};
use super::{Load, Outcome, measure};
use crate::support::containerd::{Containerd, ImageSpec, build_image};
use crate::support::corpus;

/// Which runtime the tasks run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This shim (`io.containerd.wasm.v1`, the config's default engine), the hello module.
    Wasm,
    /// containerd's runc shim, busybox `true`.
    Runc,
    /// runwasi's wasmtime shim (`STRESS_RUNWASI`, built by hand) as
    /// `io.containerd.runwasi.v1`, the same image.
    Runwasi,
}

pub struct Node {
    pub ctd: Containerd,
    wasm_image: String,
    native_image: String,
}

impl Node {
    /// A private containerd whose wasm shim defaults to `engine`, with both images.
    pub fn start(label: &str, engine: &str) -> Self {
        let ctd = Containerd::start(label, &format!("default_engine = \"{engine}\"\n"));
        let root = ctd.node.root().to_path_buf();
        let wasm = ImageSpec {
            name: "docker.io/library/stress-hello:wasm",
            files: vec![(corpus(hello_module()), "/hello.wasm")],
            symlinks: vec![],
            entrypoint: vec!["/hello.wasm"],
        };
        ctd.import(&build_image(&wasm, &root));
        let native = ImageSpec {
            name: "docker.io/library/stress-true:native",
            files: vec![(PathBuf::from("/bin/busybox"), "/bin/busybox")],
            symlinks: vec![("busybox", "/bin/true")],
            entrypoint: vec!["/bin/true"],
        };
        ctd.import(&build_image(&native, &root));
        if let Some(super::shim::Runtime::Runwasi { binary }) = super::shim::Runtime::runwasi_from_env() {
            std::os::unix::fs::symlink(binary, root.join("bin/containerd-shim-runwasi-v1")).unwrap();
        }
        Self { ctd, wasm_image: wasm.name.into(), native_image: native.name.into() }
    }

    /// `ctr run --rm` of one task in pod `pod`; returns its wall time.
    pub fn run_task(&self, runtime: Runtime, pod: &str, id: &str) -> Result<Duration, String> {
        let (runtime_name, image, expected) = match runtime {
            Runtime::Wasm => ("io.containerd.wasm.v1", &self.wasm_image, "hello from wasm\n"),
            Runtime::Runc => ("io.containerd.runc.v2", &self.native_image, ""),
            Runtime::Runwasi => ("io.containerd.runwasi.v1", &self.wasm_image, "hello from wasm\n"),
        };
        let annotation = format!("io.kubernetes.cri.sandbox-id={pod}");
        let started = Instant::now();
        let out = self
            .ctd
            .ctr_command(&["run", "--rm", "--runtime", runtime_name, "--annotation", &annotation, image, id])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run ctr: {e}"))?;
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let line = stderr.lines().last().unwrap_or("").to_string();
            return Err(format!("ctr run exited {:?}: {line}", out.status.code()));
        }
        if stdout != expected {
            return Err(format!("stdout {stdout:?}, expected {expected:?}"));
        }
        Ok(elapsed)
    }

    /// `load` tasks with `runtime`, all in one pod.
    pub fn run(&self, label: &str, runtime: Runtime, load: Load) -> Outcome {
        let pod = format!("{label}-pod");
        let id = |i: usize| format!("{label}-{i}");
        // containerd shuts the pod's shim down whenever its last task is deleted, so the
        // server is looked up at each sample.
        measure(
            label,
            load,
            |i| self.run_task(runtime, &pod, &id(i)),
            id,
            || leaks::shim_server(&self.ctd.namespace),
            |server| self.leftovers(runtime, server),
        )
    }

    /// Cgroups of the namespace, tasks and containers containerd still lists, runtime
    /// state, mounts under the node.
    pub fn leftovers(&self, runtime: Runtime, server: Option<i32>) -> Leftovers {
        let state_dirs: Vec<PathBuf> = match runtime {
            Runtime::Runc => vec![Path::new("/run/containerd/runc").join(&self.ctd.namespace)],
            Runtime::Runwasi => vec![Path::new("/run/containerd/wasmtime").join(&self.ctd.namespace)],
            Runtime::Wasm => fs::read_dir("/run/containerd-shim-wasm")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join(&self.ctd.namespace))
                .collect(),
        };
        let mut left =
            leaks::leftovers(&self.ctd.namespace, &self.ctd.node.root().join("bundles"), &state_dirs, server);
        // containerd's own snapshot mounts live under its root; only the rootfs mounts
        // in task bundles count.
        let bundles =
            self.ctd.node.root().join("state/io.containerd.runtime.v2.task").join(&self.ctd.namespace);
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.mounts.extend(
            mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&bundles.display().to_string()))
                .map(String::from),
        );
        for (what, args) in [("task", ["tasks", "ls", "-q"]), ("container", ["containers", "ls", "-q"])] {
            for id in self.ctd.ctr(&args).stdout.lines().filter(|l| !l.is_empty()) {
                left.state.push(format!("containerd still lists {what} {id}"));
            }
        }
        left
    }
}
