//! The shim as a Kubernetes node runs it: containerd 1.6 with its CRI plugin (a private
//! instance), driven over the CRI API as the kubelet does, with one runtime handler per
//! built engine. Per engine, one pod on the host's network: the sandbox (a native pause
//! container the test builds), a wasm container whose output reaches the CRI log file, a
//! wasm container that exits 42 (ContainerStatus says 42), and a native sidecar that
//! ExecSync runs a command in; then stop and remove, and nothing is left behind.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use containerd_client::tonic::transport::Channel;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest, CreateContainerRequest,
    ExecSyncRequest, ImageSpec as CriImage, LinuxContainerResources, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    PullImageRequest, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest, UpdateContainerResourcesRequest,
};
use support::containerd::{
    Containerd, ImageSpec, PAUSE_IMAGE, build_image, build_wasm_layer_image, build_wasm_layer_image_for,
    busybox, is_containerd_2, processes_matching,
};
use support::registry::Registry;
use support::{corpus, engines, skipped};

const HELLO: &str = "docker.io/library/hello:test";
const EXIT42: &str = "docker.io/library/exit42:test";
const SIDECAR: &str = "docker.io/library/sidecar:test";

/// The CRI runtime service of a containerd, called from a current-thread runtime.
struct Cri {
    runtime: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
    /// containerd's log, shown when a call fails.
    log: std::path::PathBuf,
}

impl Cri {
    fn connect(ctd: &Containerd) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let channel = runtime.block_on(containerd_client::connect(ctd.socket())).unwrap();
        let log = ctd.node.root().join("containerd.log");
        Self { runtime, client: RuntimeServiceClient::new(channel), log }
    }

    fn call<T, F, Fut>(&mut self, what: &str, call: F) -> T
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<
                Output = Result<containerd_client::tonic::Response<T>, containerd_client::tonic::Status>,
            >,
    {
        let client = self.client.clone();
        match self.runtime.block_on(call(client)) {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> =
                    log.lines().rev().filter(|l| !l.contains("level=info")).take(30).collect();
                panic!("CRI {what}: {}\ncontainerd's log ends:\n{}", status.message(), tail.join("\n"))
            }
        }
    }

    fn create_and_start(&mut self, pod: &str, sandbox: &PodSandboxConfig, name: &str, image: &str) -> String {
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(CriImage { image: image.into(), ..Default::default() }),
            log_path: format!("{name}.log"),
            ..Default::default()
        };
        let request = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        };
        let id = self
            .call("CreateContainer", |mut c| async move { c.create_container(request).await })
            .container_id;
        let start = StartContainerRequest { container_id: id.clone() };
        self.call("StartContainer", |mut c| async move { c.start_container(start).await });
        id
    }

    fn status(&mut self, id: &str) -> k8s_cri::v1::ContainerStatus {
        let request = ContainerStatusRequest { container_id: id.into(), verbose: false };
        self.call("ContainerStatus", |mut c| async move { c.container_status(request).await }).status.unwrap()
    }

    /// Waits (30 s at most) until container `id` has exited; its status.
    fn wait_exited(&mut self, id: &str) -> k8s_cri::v1::ContainerStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status(id);
            if status.state == ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(Instant::now() < deadline, "container {id} never exited: {status:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_and_remove(&mut self, id: &str) {
        let stop = StopContainerRequest { container_id: id.into(), timeout: 5 };
        self.call("StopContainer", |mut c| async move { c.stop_container(stop).await });
        let remove = RemoveContainerRequest { container_id: id.into() };
        self.call("RemoveContainer", |mut c| async move { c.remove_container(remove).await });
    }
}

fn import_images(ctd: &Containerd) {
    let sleeper = |name: &'static str| ImageSpec {
        name,
        files: vec![(busybox(), "/bin/busybox")],
        symlinks: vec![("busybox", "/bin/sh"), ("busybox", "/bin/sleep")],
        entrypoint: vec!["/bin/sleep", "100000"],
    };
    let wasm = |name: &'static str, program: &str, path: &'static str| ImageSpec {
        name,
        files: vec![(corpus(program), path)],
        symlinks: vec![],
        entrypoint: vec![path],
    };
    for spec in [
        sleeper(PAUSE_IMAGE),
        sleeper(SIDECAR),
        wasm(HELLO, "hello", "/hello.wasm"),
        wasm(EXIT42, "exit42", "/exit42.wat"),
    ] {
        ctd.import(&build_image(&spec, ctd.node.root()));
    }
}

/// A pod on the node's network (no CNI), logging to `log_directory`.
fn sandbox_config(name: &str, log_directory: &std::path::Path) -> PodSandboxConfig {
    let namespaces = NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        // The kubelet names no hostname for a pod on the node's network (no UTS namespace).
        hostname: String::new(),
        log_directory: log_directory.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces),
                ..Default::default()
            }),
            ..Default::default()
        }),
        labels: HashMap::new(),
        ..Default::default()
    }
}

#[test]
fn pods_through_cri_for_every_engine() {
    let ctd = Containerd::start_cri("cri", "");
    import_images(&ctd);
    let mut cri = Cri::connect(&ctd);
    for (engine, _) in engines() {
        let logs = ctd.node.root().join(format!("logs-{engine}"));
        std::fs::create_dir_all(&logs).unwrap();
        let config = sandbox_config(&format!("pod-{engine}"), &logs);
        let request = RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: engine.into() };
        let pod =
            cri.call("RunPodSandbox", |mut c| async move { c.run_pod_sandbox(request).await }).pod_sandbox_id;

        // A wasm container: its stdout and stderr reach the CRI log file.
        let hello = cri.create_and_start(&pod, &config, "hello", HELLO);
        let status = cri.wait_exited(&hello);
        assert_eq!(status.exit_code, 0, "{engine}: {status:?}");
        let log = std::fs::read_to_string(logs.join("hello.log")).unwrap();
        assert!(log.lines().any(|l| l.contains(" stdout F hello from wasm")), "{engine}: {log}");
        assert!(log.lines().any(|l| l.contains(" stderr F hello on stderr")), "{engine}: {log}");

        // The handler's engine ran it (its ConfigPath reached the shim).
        let log = std::fs::read_to_string(ctd.node.root().join("containerd.log")).unwrap_or_default();
        assert!(
            log.lines().any(|l| l.contains("wasm container")
                && l.contains(&hello)
                && l.contains(&format!("engine={engine}"))),
            "{engine}: no \"wasm container\" line naming {engine} for {hello}"
        );

        // Its exit code, as the kubelet sees it.
        let exit42 = cri.create_and_start(&pod, &config, "exit42", EXIT42);
        assert_eq!(cri.wait_exited(&exit42).exit_code, 42, "{engine}");

        // A native sidecar of the same pod, through the same shim: ExecSync (exec probes,
        // kubectl exec without a terminal) runs in it.
        let sidecar = cri.create_and_start(&pod, &config, "sidecar", SIDECAR);
        let exec = ExecSyncRequest {
            container_id: sidecar.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo probe $(cat /proc/1/comm); echo err >&2; exit 3".into(),
            ],
            timeout: 20,
        };
        let ran = cri.call("ExecSync", |mut c| async move { c.exec_sync(exec).await });
        assert_eq!(ran.exit_code, 3, "{engine}: {}", String::from_utf8_lossy(&ran.stderr));
        assert_eq!(String::from_utf8_lossy(&ran.stdout), "probe sleep\n", "{engine}");
        assert_eq!(String::from_utf8_lossy(&ran.stderr), "err\n", "{engine}");

        // (The cleanup check below looks where the containers' cgroups are.)
        let cgroups = cgroup_dirs_named(std::path::Path::new("/sys/fs/cgroup"), &sidecar, 4);
        assert!(!cgroups.is_empty(), "{engine}: the sidecar's cgroup is not where the check looks");

        // In-place resize: the kubelet's UpdateContainerResources reaches the cgroup.
        let resources = LinuxContainerResources { memory_limit_in_bytes: 41943040, ..Default::default() };
        let update = UpdateContainerResourcesRequest {
            container_id: sidecar.clone(),
            linux: Some(resources),
            ..Default::default()
        };
        cri.call(
            "UpdateContainerResources",
            |mut c| async move { c.update_container_resources(update).await },
        );
        let limits: Vec<String> = cgroups
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("memory.limit_in_bytes")).ok())
            .chain(cgroups.iter().filter_map(|dir| std::fs::read_to_string(dir.join("memory.max")).ok()))
            .map(|limit| limit.trim().to_string())
            .collect();
        assert_eq!(limits, ["41943040"], "{engine}: {cgroups:?}");

        for id in [&hello, &exit42, &sidecar] {
            cri.stop_and_remove(id);
        }
        let stop = StopPodSandboxRequest { pod_sandbox_id: pod.clone() };
        cri.call("StopPodSandbox", |mut c| async move { c.stop_pod_sandbox(stop).await });
        let remove = RemovePodSandboxRequest { pod_sandbox_id: pod.clone() };
        cri.call("RemovePodSandbox", |mut c| async move { c.remove_pod_sandbox(remove).await });
        assert_nothing_left(&ctd, &[&pod, &hello, &exit42, &sidecar]);
    }
}

/// Wasm-layer images pulled through CRI from a registry, as a node pulls them, and run in
/// a pod. runwasi's format (platform wasip1/wasm) is tried first; containerd 2.1's CRI pulls
/// the node's own platform only (`runtime_platforms` picks a snapshotter, not a platform),
/// so the same wasm layer under the node's platform is what a pod can run there. containerd
/// 1.6 (CI) cannot unpack an image of wasm layers at all: by hand on 2.x (`CONTAINERD_BIN`,
/// `CTR_BIN`).
#[test]
fn a_wasm_layer_image_pulled_through_cri() {
    if !is_containerd_2() {
        skipped(
            "pulling a wasm-layer image through CRI needs containerd 2.x (set CONTAINERD_BIN and CTR_BIN)",
        );
        return;
    }
    let ctd = Containerd::start_cri("cri-pull", "");
    import_images(&ctd);
    let mut cri = Cri::connect(&ctd);
    let node_platform = match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        other => panic!("no Go name for {other}"),
    };
    for platform in [None, Some(node_platform)] {
        let spec = ImageSpec {
            name: "wasm/hello:layer",
            files: vec![],
            symlinks: vec![],
            entrypoint: vec!["/hello.wasm"],
        };
        let dir =
            ctd.node.root().join(format!("image-{}", platform.unwrap_or("wasip1/wasm").replace('/', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        let tarball = match platform {
            None => build_wasm_layer_image(&spec, &[corpus("hello")], &dir),
            Some(platform) => build_wasm_layer_image_for(&spec, &[corpus("hello")], platform, &dir),
        };
        let registry = Registry::serve(&tarball, &dir.join("layout"));
        let hosts = ctd.node.root().join("certs.d").join(&registry.addr);
        std::fs::create_dir_all(&hosts).unwrap();
        let server = format!("http://{}", registry.addr);
        let hosts_toml =
            format!("server = {server:?}\n[host.{server:?}]\n  capabilities = [\"pull\", \"resolve\"]\n");
        std::fs::write(hosts.join("hosts.toml"), hosts_toml).unwrap();
        let image = format!("{}/wasm/hello:layer", registry.addr);

        let channel = cri.runtime.block_on(containerd_client::connect(ctd.socket())).unwrap();
        let pull = PullImageRequest {
            image: Some(CriImage { image: image.clone(), ..Default::default() }),
            ..Default::default()
        };
        let pulled = cri.runtime.block_on(ImageServiceClient::new(channel).pull_image(pull));
        let pulled = match (platform, pulled) {
            (_, Ok(pulled)) => pulled.into_inner(),
            (None, Err(e)) if e.message().contains("no match for platform") => {
                skipped(&format!(
                    "a wasip1/wasm-only image through CRI: this containerd pulls the node's platform only ({})",
                    e.message()
                ));
                continue;
            }
            (_, Err(e)) => panic!("PullImage {image}: {}", e.message()),
        };
        assert!(pulled.image_ref.starts_with("sha256:"), "{pulled:?}");

        let logs = ctd.node.root().join(format!("logs-{}", dir.file_name().unwrap().to_string_lossy()));
        std::fs::create_dir_all(&logs).unwrap();
        let config = sandbox_config("pod-pull", &logs);
        let request =
            RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: "wasmtime".into() };
        let pod =
            cri.call("RunPodSandbox", |mut c| async move { c.run_pod_sandbox(request).await }).pod_sandbox_id;
        let hello = cri.create_and_start(&pod, &config, "hello", &image);
        let status = cri.wait_exited(&hello);
        assert_eq!(status.exit_code, 0, "{image}: {status:?}");
        let log = std::fs::read_to_string(logs.join("hello.log")).unwrap();
        assert!(log.lines().any(|l| l.contains(" stdout F hello from wasm")), "{image}: {log}");
        cri.stop_and_remove(&hello);
        let stop = StopPodSandboxRequest { pod_sandbox_id: pod.clone() };
        cri.call("StopPodSandbox", |mut c| async move { c.stop_pod_sandbox(stop).await });
        let remove = RemovePodSandboxRequest { pod_sandbox_id: pod.clone() };
        cri.call("RemovePodSandbox", |mut c| async move { c.remove_pod_sandbox(remove).await });
        assert_nothing_left(&ctd, &[&pod, &hello]);
    }
}

/// No shim server of this containerd, no process, mount or libcontainer state of the
/// pod's containers.
fn assert_nothing_left(ctd: &Containerd, ids: &[&str]) {
    let socket = ctd.socket().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_matching(&socket).iter().all(|pid| is_containerd(*pid)) {
        assert!(
            Instant::now() < deadline,
            "a shim server of the pod is left: {:?}",
            processes_matching(&socket)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for id in ids {
        assert_eq!(
            processes_matching(&format!("\"id\":\"{id}\"")),
            Vec::<i32>::new(),
            "a process of {id} is left"
        );
        let left: Vec<&str> = mounts.lines().filter(|l| l.contains(*id)).collect();
        assert!(left.is_empty(), "a mount of {id} is left: {left:#?}");
        for instance in std::fs::read_dir("/run/containerd-shim-wasm").into_iter().flatten().flatten() {
            let state = instance.path().join("k8s.io").join(id);
            assert!(!state.exists(), "state {} is left", state.display());
        }
        let cgroups = cgroup_dirs_named(std::path::Path::new("/sys/fs/cgroup"), id, 4);
        assert!(cgroups.is_empty(), "a cgroup of {id} is left: {cgroups:?}");
    }
}

/// Directories named `name` under `dir`, `depth` levels down at most.
fn cgroup_dirs_named(dir: &std::path::Path, name: &str, depth: usize) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name() == name {
            found.push(entry.path());
        } else if depth > 1 {
            found.extend(cgroup_dirs_named(&entry.path(), name, depth - 1));
        }
    }
    found
}

fn is_containerd(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "containerd")
}
