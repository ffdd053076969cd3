//! Images and the precompile cache against a real containerd 1.6 and its content store.
//!
//! - Wasm-layer images (runwasi's format: the layer is the module itself): containerd
//!   1.6's `ctr` stores such an image (`import --no-unpack`) but cannot run it, so the
//!   test creates the container record through containerd's gRPC API and drives the shim
//!   over its task API, as containerd's task manager does.
//! - Plain images (the module is a file in the rootfs) through `ctr run`.
//!
//! The cache: a miss, then hits; a settings change misses; a corrupt artifact is a
//! warning and a recompile; concurrent first starts compile once; after `ctr images rm
//! --sync` (containerd's garbage collection), no artifact is left in the content store.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{Container, CreateContainerRequest, InfoRequest};
use containerd_client::tonic::Request;
use support::containerd::{Containerd, ImageSpec, build_image, build_wasm_layer_image, options_with_body};
use support::stress::task_api::TaskApi;
use support::{corpus, corpus_text, generated_module, path_str};

const BOUND: Duration = Duration::from_secs(60);
const LABEL_PREFIX: &str = "containerd.io/gc.ref.content.wasm-precompiled.";

/// containerd's gRPC API in this test's namespace.
struct Grpc<'a> {
    ctd: &'a Containerd,
    runtime: tokio::runtime::Runtime,
}

impl<'a> Grpc<'a> {
    fn new(ctd: &'a Containerd) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { ctd, runtime }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert("containerd-namespace", self.ctd.namespace.parse().unwrap());
        request
    }

    /// A container record for `image`, as `ctr run` or CRI would make (no snapshot).
    fn create_container(&self, id: &str, image: &str, spec: &serde_json::Value) {
        let container = Container {
            id: id.into(),
            image: image.into(),
            runtime: Some(Runtime { name: "io.containerd.wasm.v1".into(), options: None }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: serde_json::to_vec(spec).unwrap(),
            }),
            ..Default::default()
        };
        self.runtime.block_on(async {
            let channel = containerd_client::connect(self.ctd.socket()).await.unwrap();
            ContainersClient::new(channel)
                .create(self.request(CreateContainerRequest { container: Some(container) }))
                .await
                .unwrap();
        });
    }

    /// The labels of blob `digest`, or `None` when the content store has no such blob.
    fn labels(&self, digest: &str) -> Option<HashMap<String, String>> {
        self.runtime.block_on(async {
            let channel = containerd_client::connect(self.ctd.socket()).await.unwrap();
            let reply =
                ContentClient::new(channel).info(self.request(InfoRequest { digest: digest.into() })).await;
            match reply {
                Ok(reply) => Some(reply.into_inner().info.unwrap().labels),
                Err(status) if status.code() == containerd_client::tonic::Code::NotFound => None,
                Err(status) => panic!("info {digest}: {status}"),
            }
        })
    }

    /// The artifacts a blob's labels reference: (label, artifact digest).
    fn artifacts(&self, digest: &str) -> Vec<(String, String)> {
        let mut found: Vec<_> = self
            .labels(digest)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(LABEL_PREFIX))
            .collect();
        found.sort();
        found
    }
}

fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A bundle whose process is `args`, with an empty rootfs (the module is a layer).
fn bundle(ctd: &Containerd, id: &str, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let dir = ctd.node.root().join("bundles").join(id);
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    let spec = std::process::Command::new("ctr").args(["oci", "spec"]).output().unwrap();
    let mut spec: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    spec["process"]["args"] = serde_json::json!(args);
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{id}", ctd.namespace));
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    (dir, spec)
}

/// One shim server for the test's containers, logging to `<dir>/log`.
struct Shim {
    api: TaskApi,
    log: PathBuf,
}

impl Shim {
    fn start(ctd: &Containerd, dir: &Path, id: &str) -> Self {
        let log = dir.join("log");
        std::fs::write(&log, "").unwrap();
        let started = ctd.shim_action(dir, id, "start");
        assert!(started.status.success(), "start: {}", String::from_utf8_lossy(&started.stderr));
        Self { api: TaskApi::connect(&String::from_utf8(started.stdout).unwrap()).unwrap(), log }
    }

    /// Lines of the shim's log that contain `needle`.
    fn count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log).unwrap().lines().filter(|l| l.contains(needle)).count()
    }

    fn ok<T>(&self, what: &str, result: Result<T, String>) -> T {
        result.unwrap_or_else(|e| {
            panic!("{what}: {e}\nshim log:\n{}", std::fs::read_to_string(&self.log).unwrap())
        })
    }
}

fn create_request(dir: &Path, id: &str, options: &str) -> containerd_shim::api::CreateTaskRequest {
    let mut req = containerd_shim::api::CreateTaskRequest::new();
    req.id = id.into();
    req.bundle = path_str(dir).into();
    req.stdout = format!("file://{}", dir.join("stdout").display());
    req.stderr = format!("file://{}", dir.join("stderr").display());
    req.options = Some(options_with_body(options)).into();
    req
}

/// Create → Start → Wait → Delete of one container; returns its stdout.
fn run_task(shim: &Shim, ctd: &Containerd, image: &str, id: &str, args: &[&str], options: &str) -> String {
    let (dir, spec) = bundle(ctd, id, args);
    Grpc::new(ctd).create_container(id, image, &spec);
    shim.ok(id, shim.api.create(&create_request(&dir, id, options), BOUND));
    shim.ok(id, shim.api.start(id, BOUND));
    let status = shim.ok(id, shim.api.wait(id, BOUND)).exit_status;
    shim.ok(id, shim.api.delete(id, BOUND));
    ctd.ctr(&["containers", "rm", id]);
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    assert_eq!(status, 0, "{id} exited with {status}: {stderr}");
    std::fs::read_to_string(dir.join("stdout")).unwrap()
}

fn import_wasm_image(ctd: &Containerd, name: &str, module: PathBuf) {
    let spec = ImageSpec { name, files: vec![], symlinks: vec![], entrypoint: vec!["/app.wasm"] };
    let image = build_wasm_layer_image(&spec, &[module], ctd.node.root());
    // containerd 1.6 cannot unpack wasm layers; it stores them.
    let ran = ctd.ctr(&["images", "import", "--all-platforms", "--no-unpack", path_str(&image)]);
    assert_eq!(ran.code, Some(0), "import: {}", ran.stderr);
}

#[test]
fn wasm_layer_images_and_their_precompile_cache() {
    let ctd = Containerd::start("images-layers", "default_engine = \"wasmtime\"\n");
    let grpc = Grpc::new(&ctd);
    let hello = corpus("hello");
    let hello_digest = sha256(&hello);
    import_wasm_image(&ctd, "docker.io/library/wasm-layer:1", hello.clone());
    let image = "docker.io/library/wasm-layer:1";
    let server_dir = bundle(&ctd, "server", &["/app.wasm"]).0;
    let shim = Shim::start(&ctd, &server_dir, "server");
    let wasmtime = "engine = 'wasmtime'\n";

    // First start: the module comes from the layer, compiled and stored.
    assert_eq!(run_task(&shim, &ctd, image, "first", &["/app.wasm"], wasmtime), "hello from wasm\n");
    assert_eq!(shim.count("module from a wasm layer"), 1);
    assert_eq!(shim.count("precompile cache miss"), 1);
    let artifacts = grpc.artifacts(&hello_digest);
    assert_eq!(artifacts.len(), 1, "one artifact label on the layer: {artifacts:?}");
    let artifact = artifacts[0].1.clone();
    let artifact_labels = grpc.labels(&artifact).expect("the artifact is in the content store");
    assert_eq!(artifact_labels["containerd-shim-wasm.io/module"], hello_digest);

    // Second start: a hit, nothing compiled; the artifact's blob file was hashed, and
    // says so in an attribute, so that the next hit need not hash it again.
    assert_eq!(run_task(&shim, &ctd, image, "second", &["/app.wasm"], wasmtime), "hello from wasm\n");
    assert_eq!(shim.count("precompile cache hit"), 1);
    assert_eq!(shim.count("precompile cache miss"), 1);
    let blob =
        ctd.node.root().join("root/io.containerd.content.v1.content/blobs/sha256").join(&artifact[7..]);
    let record = Path::new("/run/containerd-shim-wasm/verified").join(artifact.replace(':', "-"));
    let kept = std::fs::read_to_string(&record).expect("a record that the artifact was hashed");
    assert!(kept.contains(&artifact_labels["containerd-shim-wasm.io/blake3"]), "{kept}");

    // Another engine that precompiles (Wasmer), another key: a miss, then a hit.
    let wasmer = "engine = 'wasmer'\n";
    assert_eq!(run_task(&shim, &ctd, image, "wasmer-1", &["/app.wasm"], wasmer), "hello from wasm\n");
    assert_eq!(run_task(&shim, &ctd, image, "wasmer-2", &["/app.wasm"], wasmer), "hello from wasm\n");
    let by_wasmer = |what: &str| {
        std::fs::read_to_string(&shim.log)
            .unwrap()
            .lines()
            .filter(|l| l.contains(what) && l.contains("wasmer"))
            .count()
    };
    assert_eq!((by_wasmer("precompile cache miss"), by_wasmer("precompile cache hit")), (1, 1));

    // Other settings, another cache key: a miss, and another artifact.
    let no_opt = "engine = 'wasmtime'\n[settings]\nopt_level = 'none'\n";
    assert_eq!(run_task(&shim, &ctd, image, "settings", &["/app.wasm"], no_opt), "hello from wasm\n");
    assert_eq!(shim.count("precompile cache miss"), 3);
    assert_eq!(grpc.artifacts(&hello_digest).len(), 3);

    // A corrupt artifact (same size, the record that it was hashed still there): one
    // warning, a recompile, and the container runs.
    let mut damaged = std::fs::read(&blob).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle..middle + 16].copy_from_slice(b"not an artifact!");
    std::fs::write(&blob, damaged).unwrap();
    assert_eq!(run_task(&shim, &ctd, image, "damaged", &["/app.wasm"], wasmtime), "hello from wasm\n");
    assert_eq!(shim.count("is corrupt"), 1, "{}", std::fs::read_to_string(&shim.log).unwrap());
    assert_eq!(shim.count("precompile cache miss"), 4);
    assert_eq!(sha256(&blob), artifact, "the recompiled artifact replaced the corrupt blob");
    assert_eq!(run_task(&shim, &ctd, image, "after-damage", &["/app.wasm"], wasmtime), "hello from wasm\n");
    assert_eq!(shim.count("precompile cache hit"), 3);

    // Concurrent first starts of another module: one compile, the others find it.
    let args = corpus("args");
    let args_digest = sha256(&args);
    import_wasm_image(&ctd, "docker.io/library/wasm-args:1", args);
    let ids: Vec<String> = (0..4).map(|i| format!("together-{i}")).collect();
    std::thread::scope(|scope| {
        for id in &ids {
            let (shim, ctd) = (&shim, &ctd);
            scope.spawn(move || {
                run_task(shim, ctd, "docker.io/library/wasm-args:1", id, &["/app.wasm", "x"], wasmtime)
            });
        }
    });
    let misses = std::fs::read_to_string(&shim.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("precompile cache miss") && l.contains(&args_digest))
        .count();
    assert_eq!(misses, 1, "concurrent first starts compiled once");
    assert_eq!(grpc.artifacts(&args_digest).len(), 1);
    // Neither the compiling child nor the starts that waited for it leave a lock file.
    for (label, _) in grpc.artifacts(&args_digest).into_iter().chain(grpc.artifacts(&hello_digest)) {
        let lock = Path::new("/run/containerd-shim-wasm/precompiling").join(&label[LABEL_PREFIX.len()..]);
        assert!(!lock.exists(), "{} left behind", lock.display());
    }

    // A component in a component layer runs, and is cached like a module.
    let component = corpus("component");
    let component_digest = sha256(&component);
    import_wasm_image(&ctd, "docker.io/library/wasm-component:1", component);
    let component_image = "docker.io/library/wasm-component:1";
    assert_eq!(run_task(&shim, &ctd, component_image, "component", &["/app.wasm"], wasmtime), "");
    assert_eq!(grpc.artifacts(&component_digest).len(), 1);

    // A wasm layer gone from the content store: one error naming the image, the layer
    // and what to do.
    let exit42 = corpus("exit42");
    let exit42_digest = sha256(&exit42);
    let broken = "docker.io/library/wasm-broken:1";
    import_wasm_image(&ctd, broken, exit42);
    let ran = ctd.ctr(&["content", "rm", &exit42_digest]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let (dir, spec) = bundle(&ctd, "broken", &["/app.wasm"]);
    grpc.create_container("broken", broken, &spec);
    let err = shim.api.create(&create_request(&dir, "broken", wasmtime), BOUND).unwrap_err();
    assert!(
        err.contains(broken) && err.contains(&exit42_digest) && err.contains("pull the image again"),
        "{err}"
    );
    ctd.assert_nothing_left("broken");
    ctd.ctr(&["containers", "rm", "broken"]);

    // A running container from a wasm layer holds no descriptor of containerd's content
    // store (shared by every namespace): its init process mapped layer and artifact and
    // closed them before the program ran.
    let looping = corpus("loop");
    import_wasm_image(&ctd, "docker.io/library/wasm-loop:1", looping);
    let (dir, spec) = bundle(&ctd, "looping", &["/app.wasm"]);
    grpc.create_container("looping", "docker.io/library/wasm-loop:1", &spec);
    let pid = shim.ok("looping", shim.api.create(&create_request(&dir, "looping", wasmtime), BOUND)).pid;
    shim.ok("looping", shim.api.start("looping", BOUND));
    let content_root = ctd.node.root().join("root/io.containerd.content.v1.content");
    let held: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.unwrap().path()).ok())
        .collect();
    assert!(!held.is_empty(), "no descriptors read from /proc/{pid}/fd");
    assert!(!held.iter().any(|target| target.starts_with(&content_root)), "{held:?}");
    shim.ok("looping", shim.api.kill("looping", 9, BOUND));
    shim.ok("looping", shim.api.wait("looping", BOUND));
    shim.ok("looping", shim.api.delete("looping", BOUND));
    ctd.ctr(&["containers", "rm", "looping"]);

    // containerd's garbage collection removes the artifacts with the image.
    let all: Vec<String> = [&hello_digest, &args_digest, &component_digest]
        .into_iter()
        .flat_map(|layer| grpc.artifacts(layer))
        .map(|(_, artifact)| artifact)
        .collect();
    assert_eq!(all.len(), 5);
    for name in [image, "docker.io/library/wasm-args:1", component_image, broken] {
        let ran = ctd.ctr(&["images", "rm", "--sync", name]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    for digest in all {
        assert!(grpc.labels(&digest).is_none(), "artifact {digest} outlived its image");
    }
    let _ = shim.api.shutdown(BOUND);
}

#[test]
fn plain_images_use_the_cache_and_it_can_be_turned_off() {
    let ctd = Containerd::start("images-plain", "default_engine = \"wasmtime\"\n");
    let grpc = Grpc::new(&ctd);
    let name = "docker.io/library/plain-hello:1";
    let image = build_image(
        &ImageSpec {
            name,
            files: vec![(corpus_text("exit42"), "/exit42.wasm")],
            symlinks: vec![],
            entrypoint: vec!["/exit42.wasm"],
        },
        ctd.node.root(),
    );
    ctd.import(&image);
    let target = ctd.ctr(&["images", "ls"]).stdout;
    let target =
        target.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().nth(2).unwrap().to_string();

    for id in ["plain-1", "plain-2"] {
        let ran = ctd.run(&[], name, id, &[]);
        assert_eq!(ran.code, Some(42), "{}", ran.stderr);
    }
    let log = ctd.log();
    assert_eq!(log.matches("precompile cache miss").count(), 1, "{log}");
    assert_eq!(log.matches("precompile cache hit").count(), 1, "{log}");
    let artifacts = grpc.artifacts(&target);
    assert_eq!(artifacts.len(), 1, "the image's target carries the label: {artifacts:?}");

    // Off: nothing looked up, nothing stored.
    ctd.node.write_config("default_engine = \"wasmtime\"\nprecompile_cache = false\n");
    let ran = ctd.run(&[], name, "plain-off", &[]);
    assert_eq!(ran.code, Some(42), "{}", ran.stderr);
    let log = ctd.log();
    assert_eq!(log.matches("precompile cache").count(), 2, "{log}");

    let ran = ctd.ctr(&["images", "rm", "--sync", name]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(grpc.labels(&artifacts[0].1).is_none(), "the artifact outlived its image");
}

/// A compile that takes longer than the create can wait goes on in the background: the
/// container runs (compiling at start), and the next start finds the artifact.
#[test]
fn a_compile_longer_than_its_create_goes_on_for_the_next_start() {
    let ctd = Containerd::start("images-slow", "default_engine = \"wasmtime\"\n");
    let grpc = Grpc::new(&ctd);
    // About 3 s to compile here; the create below leaves the compile 1 s.
    let module = generated_module(ctd.node.root(), 4096);
    let digest = sha256(&module);
    let image = "docker.io/library/wasm-big:1";
    import_wasm_image(&ctd, image, module);
    let server_dir = bundle(&ctd, "server", &["/app.wasm"]).0;
    let shim = Shim::start(&ctd, &server_dir, "server");
    let wasmtime = "engine = 'wasmtime'\n";

    let (dir, spec) = bundle(&ctd, "slow", &["/app.wasm"]);
    grpc.create_container("slow", image, &spec);
    // A 7 s deadline: 1 s for the answer, 5 s kept for the container's creation.
    shim.ok("slow", shim.api.create(&create_request(&dir, "slow", wasmtime), Duration::from_secs(7)));
    shim.ok("slow", shim.api.start("slow", BOUND));
    assert_eq!(shim.ok("slow", shim.api.wait("slow", BOUND)).exit_status, 0);
    shim.ok("slow", shim.api.delete("slow", BOUND));
    assert_eq!(shim.count("goes on in the background"), 1);

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while grpc.artifacts(&digest).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no artifact stored: {}",
            std::fs::read_to_string(&shim.log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(run_task(&shim, &ctd, image, "next", &["/app.wasm"], wasmtime), "");
    assert_eq!(shim.count("precompile cache hit"), 1);
    assert_eq!(shim.count("precompile cache miss: compiled and stored"), 1);
    let _ = shim.api.shutdown(BOUND);
}

/// An image whose wasm layer is a precompiled artifact (made by `compile`, as anyone
/// could) is refused at create: an engine loads an artifact as native code, and only the
/// shim's own cache makes them.
#[test]
fn an_artifact_as_a_wasm_layer_is_refused() {
    let ctd = Containerd::start("images-artifact", "default_engine = \"wasmtime\"\n");
    let artifact = ctd.node.root().join("app.cwasm");
    let ran = ctd.node.run(&[
        "compile",
        "--engine",
        "wasmtime",
        "-o",
        path_str(&artifact),
        path_str(&corpus("hello")),
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let image = "docker.io/library/wasm-artifact:1";
    import_wasm_image(&ctd, image, artifact);
    let server_dir = bundle(&ctd, "server", &["/app.wasm"]).0;
    let shim = Shim::start(&ctd, &server_dir, "server");
    let (dir, spec) = bundle(&ctd, "artifact", &["/app.wasm"]);
    Grpc::new(&ctd).create_container("artifact", image, &spec);
    let err = shim
        .api
        .create(&create_request(&dir, "artifact", "engine = 'wasmtime'\n"), BOUND)
        .expect_err("an artifact from an image layer was accepted");
    assert!(err.contains("is a precompiled artifact; a container runs modules"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    ctd.assert_nothing_left("artifact");
    let _ = shim.api.shutdown(BOUND);
}
