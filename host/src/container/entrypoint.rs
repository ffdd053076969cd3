//! What a container runs: its entrypoint (`process.args[0]`) resolved in the container's
//! files (its root filesystem and volumes), and whether it is WebAssembly or a native
//! program.
//!
//! `module.wasm#function` names a non-default entry function. Paths are resolved the way
//! the kernel will see them after `pivot_root` and the spec's mounts ([`ContainerView`]: a
//! module on a volume is found there): symbolic links are followed inside the container's
//! tree, never out of it, and a bare name is looked up in the container's `PATH`.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use shim_wasm_abi::ModuleKind;

use super::module::ARTIFACTS_COME_FROM_THE_CACHE;
use super::view::ContainerView;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MAX_SYMLINKS: usize = 40;

/// What the container's entrypoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entrypoint {
    /// An ELF binary or a `#!` script: runs as an ordinary Linux container.
    Native,
    /// A WebAssembly module, component or text file.
    Wasm {
        /// The module's path inside the container.
        module: PathBuf,
        /// The `#function` suffix, if any.
        entry: Option<String>,
        kind: ModuleKind,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EntrypointError {
    #[error("the container has no process.args: set an entrypoint (a .wasm module or a program)")]
    Missing,
    #[error("entrypoint {name:?} not found in the container image or its volumes (searched {searched})")]
    NotFound { name: String, searched: String },
    #[error(
        "entrypoint {path} in the container image is {what}, not a file; point the image's \
         entrypoint at a .wasm file or an executable"
    )]
    NotAFile { path: String, what: &'static str },
    #[error(
        "entrypoint {path} in the container image goes through more than {MAX_SYMLINKS} symbolic \
         links (a loop?); fix the links in the image"
    )]
    SymlinkLoop { path: String },
    #[error("cannot read entrypoint {path} in the container image: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(
        "entrypoint {path} is neither a WebAssembly module (binary or text) nor a Linux program \
         (ELF or #! script); point the image's entrypoint at a .wasm file or an executable"
    )]
    Unknown { path: String },
    #[error(
        "entrypoint {path} is a precompiled artifact; {ARTIFACTS_COME_FROM_THE_CACHE}: point the entrypoint at the .wasm"
    )]
    Artifact { path: String },
}

/// Classifies `args[0]` of a container whose files `view` shows.
pub fn classify(
    view: &ContainerView,
    args: &[String],
    env: &[String],
) -> Result<Entrypoint, EntrypointError> {
    let first = args.first().filter(|a| !a.is_empty()).ok_or(EntrypointError::Missing)?;
    let (name, entry) = split_entry(first);
    let in_container = locate(view, name, env)?;
    let head = read_head(view, &in_container)?;
    if head.starts_with(b"\x7fELF") || head.starts_with(b"#!") {
        if entry.is_some() {
            // `#` was part of a native program's name after all.
            return classify_plain(view, first, env);
        }
        return Ok(Entrypoint::Native);
    }
    match ModuleKind::sniff(&head) {
        ModuleKind::Unknown => Err(EntrypointError::Unknown { path: shown(&in_container) }),
        // Engines load artifacts as native code: only the shim's own cache makes them.
        ModuleKind::Artifact => Err(EntrypointError::Artifact { path: shown(&in_container) }),
        kind => Ok(Entrypoint::Wasm { module: in_container, entry, kind }),
    }
}

/// `module.wasm#function` → (`module.wasm`, `function`).
pub fn split_entry(arg: &str) -> (&str, Option<String>) {
    match arg.rsplit_once('#') {
        Some((name, entry)) if !entry.is_empty() && !entry.contains('/') => (name, Some(entry.to_string())),
        _ => (arg, None),
    }
}

fn classify_plain(view: &ContainerView, name: &str, env: &[String]) -> Result<Entrypoint, EntrypointError> {
    let path = locate(view, name, env)?;
    let head = read_head(view, &path)?;
    if head.starts_with(b"\x7fELF") || head.starts_with(b"#!") {
        Ok(Entrypoint::Native)
    } else {
        Err(EntrypointError::Unknown { path: shown(&path) })
    }
}

/// The container path of `name`: as given if it has a `/`, else found on `PATH`.
fn locate(view: &ContainerView, name: &str, env: &[String]) -> Result<PathBuf, EntrypointError> {
    if name.contains('/') {
        let path = Path::new("/").join(name);
        let shown = shown(&path);
        let Some(resolved) = resolve(view, &path) else {
            return Err(EntrypointError::SymlinkLoop { path: shown });
        };
        return match view.host_path(&resolved).map(std::fs::metadata) {
            Some(Ok(meta)) if meta.is_file() => Ok(resolved),
            Some(Ok(meta)) => Err(EntrypointError::NotAFile { path: shown, what: kind_of(&meta) }),
            _ => Err(EntrypointError::NotFound { name: name.into(), searched: shown }),
        };
    }
    let path_var = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':').filter(|d| d.starts_with('/')) {
        if let Some(resolved) = resolve(view, &Path::new(dir).join(name))
            && view.host_path(&resolved).is_some_and(|p| p.is_file())
        {
            return Ok(resolved);
        }
    }
    Err(EntrypointError::NotFound { name: name.into(), searched: shown(format!("PATH={path_var}")) })
}

/// A path of the spec for an error line: control characters (a newline in a name)
/// escaped, so that the error stays one line.
pub fn shown(path: impl AsRef<Path>) -> String {
    let text = path.as_ref().display().to_string();
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// Resolves symbolic links in `path` as the container will (its root and mounts as
/// `view` shows them). Returns the container path.
pub fn resolve(view: &ContainerView, path: &Path) -> Option<PathBuf> {
    let mut resolved = PathBuf::from("/");
    let mut pending: Vec<PathBuf> = path.components().rev().map(|c| PathBuf::from(c.as_os_str())).collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.components().next() {
            Some(Component::RootDir) | Some(Component::CurDir) | None => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        if view.is_mount_point(&candidate) {
            resolved = candidate;
            continue;
        }
        match view.host_path(&candidate).map(std::fs::read_link) {
            Some(Ok(target)) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return None;
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                pending.extend(target.components().rev().map(|c| PathBuf::from(c.as_os_str())));
            }
            _ => resolved = candidate,
        }
    }
    Some(resolved)
}

/// What a path that is not a regular file is, for an error.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

/// The first 4 KiB of the file at the container path `path`.
fn read_head(view: &ContainerView, path: &Path) -> Result<Vec<u8>, EntrypointError> {
    let read = || -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::OpenOptionsExt;
        let host = view.host_path(path).ok_or(std::io::ErrorKind::NotFound)?;
        // Non-blocking, and a file once open: a volume's file may have been swapped for a
        // FIFO since it was looked at, which must not hold the create.
        let file = File::options().read(true).custom_flags(libc::O_NONBLOCK).open(host)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        let mut head = Vec::with_capacity(4096);
        file.take(4096).read_to_end(&mut head)?;
        Ok(head)
    };
    read().map_err(|source| EntrypointError::Read { path: shown(path), source })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("app")).unwrap();
        std::fs::write(r.join("bin/busybox"), b"\x7fELF\x02\x01\x01").unwrap();
        symlink("busybox", r.join("bin/sh")).unwrap();
        std::fs::write(r.join("app/hello.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(r.join("app/hello.wat"), b"(module)").unwrap();
        std::fs::write(r.join("app/run.sh"), b"#!/bin/sh\n").unwrap();
        std::fs::write(r.join("app/data.txt"), b"hello").unwrap();
        symlink("/app/hello.wasm", r.join("entry.wasm")).unwrap();
        symlink("../../../../etc/passwd", r.join("app/escape")).unwrap();
        root
    }

    fn args(a: &str) -> Vec<String> {
        vec![a.to_string()]
    }

    #[test]
    fn wasm_native_and_text() {
        let root = rootfs();
        let r = root.path();
        let wasm = classify(&ContainerView::root_only(r), &args("/app/hello.wasm"), &[]).unwrap();
        assert_eq!(
            wasm,
            Entrypoint::Wasm { module: "/app/hello.wasm".into(), entry: None, kind: ModuleKind::CoreModule }
        );
        let with_entry = classify(&ContainerView::root_only(r), &args("/entry.wasm#answer"), &[]).unwrap();
        assert_eq!(
            with_entry,
            Entrypoint::Wasm {
                module: "/app/hello.wasm".into(),
                entry: Some("answer".into()),
                kind: ModuleKind::CoreModule
            }
        );
        assert!(matches!(
            classify(&ContainerView::root_only(r), &args("app/hello.wat"), &[]).unwrap(),
            Entrypoint::Wasm { kind: ModuleKind::Text, .. }
        ));
        assert_eq!(classify(&ContainerView::root_only(r), &args("sh"), &[]).unwrap(), Entrypoint::Native);
        assert_eq!(
            classify(&ContainerView::root_only(r), &args("/app/run.sh"), &[]).unwrap(),
            Entrypoint::Native
        );
        assert_eq!(
            classify(&ContainerView::root_only(r), &args("busybox"), &["PATH=/bin".into()]).unwrap(),
            Entrypoint::Native
        );
    }

    #[test]
    fn a_newline_in_a_path_stays_in_one_line() {
        let root = rootfs();
        let r = root.path();
        std::fs::write(r.join("app/two\nlines"), b"data").unwrap();
        let view = ContainerView::root_only(r);
        for args in [args("/app/two\nlines"), args("/app/two\nlines/x"), args("nowhere")] {
            let err = classify(&view, &args, &["PATH=/a\n/b".into()]).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err:?}");
        }
        let err = classify(&view, &args("/app/two\nlines"), &[]).unwrap_err().to_string();
        assert!(err.contains("entrypoint /app/two\\nlines is neither"), "{err}");
    }

    #[test]
    fn errors() {
        let root = rootfs();
        let r = root.path();
        let err =
            classify(&ContainerView::root_only(r), &args("/app/data.txt"), &[]).unwrap_err().to_string();
        assert!(err.contains("neither a WebAssembly module"), "{err}");
        let err = classify(&ContainerView::root_only(r), &args("missing.wasm"), &[]).unwrap_err().to_string();
        assert!(err.contains("not found in the container image") && err.contains("PATH="), "{err}");
        let err = classify(&ContainerView::root_only(r), &[], &[]).unwrap_err().to_string();
        assert!(err.contains("no process.args"), "{err}");
        // A directory or a loop of links says what it is (one line each).
        let err = classify(&ContainerView::root_only(r), &args("/app"), &[]).unwrap_err().to_string();
        assert!(err.contains("/app in the container image is a directory, not a file"), "{err}");
        symlink("loop-b", r.join("app/loop-a")).unwrap();
        symlink("loop-a", r.join("app/loop-b")).unwrap();
        let err = classify(&ContainerView::root_only(r), &args("/app/loop-a"), &[]).unwrap_err().to_string();
        assert!(err.contains("more than 40 symbolic links (a loop?)"), "{err}");
        // On PATH, a directory of that name is skipped, as a shell does.
        std::fs::create_dir_all(r.join("usr/bin/tool")).unwrap();
        let err = classify(&ContainerView::root_only(r), &args("tool"), &["PATH=/usr/bin".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found in the container image"), "{err}");
        // A link that climbs out of the root stays inside it.
        assert_eq!(
            resolve(&ContainerView::root_only(r), Path::new("/app/escape")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
        assert!(classify(&ContainerView::root_only(r), &args("/app/escape"), &[]).is_err());
    }
}
