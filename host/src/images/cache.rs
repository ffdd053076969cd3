//! The precompile cache: an engine's compiled artifact of a module, kept in containerd's
//! content store for the next start.
//!
//! - Key: the module's digest (a wasm layer's own; BLAKE3 of a file in the rootfs) and
//!   the plugin's cache key (engine, version, settings, CPU), hashed into the name of a
//!   label on the blob the module came from — the wasm layer, or for a module file in
//!   the rootfs, the image's manifest or index. The label's value is the artifact's
//!   digest, and its name starts with `containerd.io/gc.ref.content.`, so containerd's
//!   garbage collection keeps the artifact while the image exists and removes it after
//!   the image is removed.
//! - The artifact is written under a lease (with an expiry) that keeps it until the label
//!   references it, with its BLAKE3 hash as a label, checked when it is read back (once
//!   per blob file: [`super::client`]). Its envelope carries the cache key; the plugin
//!   refuses one built for another engine, version, setting or CPU when it runs it.
//! - The engine runs (for the key, and to compile) in a child forked from the worker, so
//!   its threads never exist in the process libcontainer clones the container from.
//! - Concurrent first starts of a module take a lock file per key: one compiles, the
//!   others then find its artifact. A blob that is missing or corrupt costs one warning
//!   and a recompile; no failure here fails the container (it runs from the module).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use shim_wasm_abi::host::LoadedPlugin;

use super::client::{Check, Client, ClientError, hex};
use super::{ContainerImage, memory_file, read_whole};

/// Labels naming an artifact start with this: a garbage-collection reference.
pub const LABEL_PREFIX: &str = "containerd.io/gc.ref.content.wasm-precompiled.";
/// The artifact's BLAKE3 hash, checked when it is read back.
const BLAKE3_LABEL: &str = "containerd-shim-wasm.io/blake3";
/// Where the lock files of compiles in progress live.
const LOCK_DIR: &str = "/run/containerd-shim-wasm/precompiling";
/// Bound for computing the cache key (creating an engine).
const KEY_BOUND: Duration = Duration::from_secs(10);
/// A compile that outlives its create ends after this long.
const BACKGROUND_BOUND: Duration = Duration::from_secs(600);
/// Left to create the container after compiling, of the worker's time.
const CREATE_MARGIN: Duration = Duration::from_secs(5);
/// The largest artifact read back (a compiled 69 MB program is a few hundred MiB).
const ARTIFACT_LIMIT: u64 = 4 << 30;

/// What the cache needs to know about one container's module.
pub struct Module<'a> {
    /// The container, for the log.
    pub id: &'a str,
    pub engine: &'a str,
    pub settings: &'a str,
    pub plugin: &'a LoadedPlugin,
    /// The module: a file of the root filesystem or a wasm layer, read only if it must be
    /// compiled (a hit never reads it).
    pub file: &'a File,
    /// `sha256:<hex>` (a layer's digest) or `blake3:<hex>` of `file`.
    pub digest: String,
    /// The blob that carries the label: the wasm layer or the image's target.
    pub source: &'a str,
}

/// The artifact of `module`, from the cache or compiled now and stored; `None` (after
/// one warning) when there is none to be had.
pub fn artifact(image: &ContainerImage, module: &Module<'_>, deadline: Instant) -> Option<File> {
    match find_or_compile(image, module, deadline) {
        Ok(artifact) => artifact,
        Err(e) => {
            tracing::warn!(
                id = module.id,
                engine = module.engine,
                module = %module.digest,
                "precompile cache: {e}; the module is compiled when the container starts"
            );
            None
        }
    }
}

fn find_or_compile(
    image: &ContainerImage,
    module: &Module<'_>,
    deadline: Instant,
) -> Result<Option<File>, String> {
    let key_bound = KEY_BOUND.min(deadline.saturating_duration_since(Instant::now()));
    let key = in_child(key_bound, Overrun::Kill, || {
        let engine = module.plugin.new_engine(module.settings).map_err(|e| e.to_string())?;
        engine.cache_key().map(String::into_bytes).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("cannot compute the engine's cache key: {e}"))?;
    let key = read_whole(&key).map_err(|e| e.to_string())?;
    let key = String::from_utf8(key).map_err(|_| "the engine's cache key is not UTF-8".to_string())?;
    let label = label_for(&key, &module.digest);
    let first = lookup(image, module, &label);
    if let Found::Artifact(found) = first {
        return Ok(Some(found));
    }
    let lock = CompileLock::acquire(&label, deadline)?;
    // Another worker may have compiled it while this one waited.
    if let Found::Nothing = first
        && let Found::Artifact(found) = lookup(image, module, &label)
    {
        return Ok(Some(found));
    }
    // The child compiles, stores and removes the lock file; if it takes longer than this
    // create can wait, it goes on alone and the next start finds the artifact.
    let bound = deadline.saturating_duration_since(Instant::now()).saturating_sub(CREATE_MARGIN);
    let (address, namespace) = image.client.address();
    let compiled = in_child(bound, Overrun::Background, || {
        let stored = compile_and_store(module, &key, &label, address, namespace);
        let _ = std::fs::remove_file(&lock.path);
        stored
    });
    lock.hand_over();
    match compiled {
        Ok(artifact) => Ok(Some(artifact)),
        Err(ChildError::Background) => {
            tracing::info!(
                id = module.id,
                engine = module.engine,
                module = %module.digest,
                "precompile cache miss: compiling takes longer than {} s; it goes on in the background for the \
                 next start, and this container compiles the module when it starts",
                bound.as_secs()
            );
            Ok(None)
        }
        Err(e) => Err(format!("cannot compile the module: {e}")),
    }
}

/// In the compiling child: compiles, and stores the artifact over a connection of its own
/// (the worker's is not this process's to use).
fn compile_and_store(
    module: &Module<'_>,
    key: &str,
    label: &str,
    address: &str,
    namespace: &str,
) -> Result<Vec<u8>, String> {
    let began = Instant::now();
    let engine = module.plugin.new_engine(module.settings).map_err(|e| e.to_string())?;
    let wasm = read_whole(module.file).map_err(|e| e.to_string())?;
    // A file of the root filesystem may have changed since it was hashed.
    if let Some(hashed) = module.digest.strip_prefix("blake3:")
        && blake3::hash(&wasm).to_hex().as_str() != hashed
    {
        return Err("the module file changed while the container was being created".into());
    }
    let bytes = engine.precompile(&wasm).map_err(|e| e.to_string())?;
    let compiled_in = began.elapsed();
    let labels = HashMap::from([
        ("containerd-shim-wasm.io/cache-key".to_string(), key.to_string()),
        ("containerd-shim-wasm.io/module".to_string(), module.digest.clone()),
        (BLAKE3_LABEL.to_string(), blake3::hash(&bytes).to_hex().to_string()),
    ]);
    let client = Client::connect(address, namespace).map_err(|e| e.to_string())?;
    let (digest, lease) = client.write(&bytes, labels).map_err(|e| e.to_string())?;
    client
        .add_labels(module.source, HashMap::from([(label.to_string(), digest.clone())]))
        .map_err(|e| e.to_string())?;
    lease.release();
    tracing::info!(
        id = module.id,
        engine = module.engine,
        module = %module.digest,
        artifact = %digest,
        compile_ms = compiled_in.as_millis() as u64,
        bytes = bytes.len(),
        "precompile cache miss: compiled and stored"
    );
    Ok(bytes)
}

/// The label for an artifact of `module_digest` built with `cache_key`.
pub fn label_for(cache_key: &str, module_digest: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(cache_key.as_bytes());
    hasher.update([0]);
    hasher.update(module_digest.as_bytes());
    format!("{LABEL_PREFIX}{}", &hex(&hasher.finalize())[..32])
}

enum Found {
    Artifact(File),
    Nothing,
    /// An entry that could not be used (warned about).
    Broken,
}

/// The artifact the label names, read and checked; a broken entry is a warning.
fn lookup(image: &ContainerImage, module: &Module<'_>, label: &str) -> Found {
    let client = &image.client;
    let labels = match client.labels(module.source) {
        Ok(labels) => labels,
        Err(e) => {
            tracing::warn!(id = module.id, "precompile cache: {e}");
            return Found::Broken;
        }
    };
    let Some(digest) = labels.get(label) else { return Found::Nothing };
    let read = client.info(digest).and_then(|info| {
        let Some(checksum) = info.labels.get(BLAKE3_LABEL) else {
            return Err(ClientError::Corrupt {
                digest: digest.clone(),
                reason: format!("it has no {BLAKE3_LABEL} label"),
            });
        };
        client.blob_file(&info, Check::Blake3(checksum), ARTIFACT_LIMIT, "wasm-artifact")
    });
    match read {
        Ok(file) => {
            tracing::info!(
                id = module.id,
                engine = module.engine,
                module = %module.digest,
                artifact = %digest,
                "precompile cache hit"
            );
            Found::Artifact(file)
        }
        Err(e) => {
            let reason = if e.is_not_found() { format!("artifact {digest} is gone") } else { e.to_string() };
            tracing::warn!(
                id = module.id,
                engine = module.engine,
                "precompile cache: {reason}; compiling again"
            );
            if matches!(e, ClientError::Corrupt { .. })
                && let Err(e) = client.remove(digest)
            {
                tracing::warn!(id = module.id, "precompile cache: {e}");
            }
            Found::Broken
        }
    }
}

/// One compile per key at a time on this node: a lock file, removed by its holder — the
/// worker, or once handed over, the compiling child (which may outlive the worker).
struct CompileLock {
    path: PathBuf,
    _file: File,
    handed_over: bool,
}

impl CompileLock {
    fn acquire(label: &str, deadline: Instant) -> Result<Self, String> {
        let name = label.strip_prefix(LABEL_PREFIX).unwrap_or(label);
        let path = Path::new(LOCK_DIR).join(name);
        std::fs::create_dir_all(LOCK_DIR).map_err(|e| format!("cannot create {LOCK_DIR}: {e}"))?;
        loop {
            let file = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                // The holder before may have removed the file after this one opened it.
                if std::fs::metadata(&path).is_ok_and(|m| same_file(&m, &file)) {
                    return Ok(Self { path, _file: file, handed_over: false });
                }
                continue;
            }
            if Instant::now() >= deadline {
                return Err("another create has been compiling the same module for too long".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl CompileLock {
    /// The compiling child holds the lock now and removes the file.
    fn hand_over(mut self) {
        self.handed_over = true;
    }
}

impl Drop for CompileLock {
    fn drop(&mut self) {
        if !self.handed_over {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn same_file(meta: &std::fs::Metadata, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata().is_ok_and(|open| open.ino() == meta.ino() && open.dev() == meta.dev())
}

/// What becomes of a child that outlives its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overrun {
    Kill,
    /// It runs in a process group of its own, so the worker's deadline does not end it,
    /// for at most [`BACKGROUND_BOUND`]; the worker stops waiting for it.
    Background,
}

#[derive(Debug)]
enum ChildError {
    Failed(String),
    /// Still running, on its own ([`Overrun::Background`]).
    Background,
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(reason) => f.write_str(reason),
            Self::Background => f.write_str("still running in the background"),
        }
    }
}

/// Runs `work` in a child forked from this single-threaded worker and returns what it
/// produced, in a memory file. Threads the engine starts die with the child.
fn in_child(
    bound: Duration,
    overrun: Overrun,
    work: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<File, ChildError> {
    let failed = |e: std::io::Error| ChildError::Failed(e.to_string());
    let mut out = memory_file("wasm-engine-output").map_err(failed)?;
    let (read_end, write_end) = pipe().map_err(failed)?;
    // SAFETY: the worker is single-threaded; the child only runs `work`, writes, and _exits.
    match unsafe { libc::fork() } {
        -1 => Err(failed(std::io::Error::last_os_error())),
        0 => {
            if overrun == Overrun::Background {
                // SAFETY: a process group of its own, and an alarm whose handler (the
                // worker's) kills that group.
                unsafe {
                    libc::setpgid(0, 0);
                    libc::alarm(BACKGROUND_BOUND.as_secs() as u32);
                }
            }
            drop(read_end);
            let mut message = File::from(write_end);
            let status = match work().and_then(|bytes| out.write_all(&bytes).map_err(|e| e.to_string())) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = message.write_all(e.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child without the worker's destructors or atexit handlers.
            unsafe { libc::_exit(status) }
        }
        pid => {
            drop(write_end);
            let Some(status) = wait_bounded(pid, bound, overrun == Overrun::Kill) else {
                return Err(match overrun {
                    Overrun::Kill => {
                        ChildError::Failed(format!("the engine took longer than {} s", bound.as_secs()))
                    }
                    Overrun::Background => ChildError::Background,
                });
            };
            let mut message = String::new();
            let _ = File::from(read_end).read_to_string(&mut message);
            match status {
                0 => Ok(out),
                _ if !message.is_empty() => Err(ChildError::Failed(message)),
                status => {
                    Err(ChildError::Failed(format!("the engine's process ended with wait status {status}")))
                }
            }
        }
    }
}

/// Waits for child `pid` at most `bound`, then kills it if `kill`. `None` when it did
/// not end in time.
fn wait_bounded(pid: libc::pid_t, bound: Duration, kill: bool) -> Option<i32> {
    let end = Instant::now() + bound;
    loop {
        let mut status = 0;
        // SAFETY: waits for this process's own child without blocking.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped == pid {
            return Some(status);
        }
        if reaped < 0 || Instant::now() >= end {
            if kill {
                // SAFETY: kills and reaps this process's own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors this function then owns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_garbage_collection_references_per_key_and_module() {
        let a = label_for("wasmtime/48/speed", "sha256:aa");
        assert!(a.starts_with("containerd.io/gc.ref.content."));
        assert_eq!(a, label_for("wasmtime/48/speed", "sha256:aa"));
        assert_ne!(a, label_for("wasmtime/48/none", "sha256:aa"));
        assert_ne!(a, label_for("wasmtime/48/speed", "sha256:ab"));
    }

    #[test]
    fn a_child_answers_or_is_bounded() {
        let out = in_child(Duration::from_secs(5), Overrun::Kill, || Ok(b"key".to_vec())).unwrap();
        assert_eq!(read_whole(&out).unwrap(), b"key");
        let failed = in_child(Duration::from_secs(5), Overrun::Kill, || Err("no engine".into()));
        assert_eq!(failed.unwrap_err().to_string(), "no engine");
        let slow = in_child(Duration::from_millis(200), Overrun::Kill, || {
            std::thread::sleep(Duration::from_secs(10));
            Ok(Vec::new())
        });
        assert!(slow.unwrap_err().to_string().contains("longer than"));
        // A background child goes on after the caller stops waiting, and finishes.
        let (read_end, write_end) = pipe().unwrap();
        let mut done = File::from(write_end);
        let background = in_child(Duration::from_millis(100), Overrun::Background, move || {
            std::thread::sleep(Duration::from_millis(500));
            done.write_all(b"done").map_err(|e| e.to_string())?;
            Ok(Vec::new())
        });
        assert!(matches!(background, Err(ChildError::Background)));
        let mut said = String::new();
        File::from(read_end).read_to_string(&mut said).unwrap();
        assert_eq!(said, "done");
    }
}
