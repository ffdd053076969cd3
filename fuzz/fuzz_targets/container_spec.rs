//! A container's spec (the bundle's `config.json`, which whoever made the bundle
//! controls) as Create reads it before libcontainer builds the container: the
//! environment, the AppArmor profile against the host, the entrypoint found where the
//! container will see it (its root filesystem and the spec's mounts, links followed
//! inside them) and sniffed, and where a missing working directory would be made. Any
//! bytes end in a value or an error of one line, never a panic. Nothing is written, and no
//! file is read outside the harness's scratch tree (but AppArmor's switch in /sys): the
//! spec's bind mounts are pointed into it, and `cwd::place` only looks.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libcontainer::oci_spec::runtime::Spec;
use libfuzzer_sys::fuzz_target;

/// The shim's own files, as they are (the shim is a binary crate).
#[allow(dead_code)]
#[path = "../../host/src/container"]
mod container {
    pub mod apparmor;
    pub mod cwd;
    pub mod entrypoint;
    pub mod env;
    pub mod view;
    /// What `entrypoint.rs` takes from `module.rs`, which needs the whole shim.
    pub mod module {
        pub const ARTIFACTS_COME_FROM_THE_CACHE: &str = "precompiled artifacts come only from the shim's cache";
    }
}

use container::view::ContainerView;

/// A root filesystem with what entrypoints meet (modules, a program, a script, links, a
/// loop, a FIFO, an artifact) and a volume at `volumes/srv`, made once per process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("shim-wasm-fuzz-spec-{}", std::process::id()));
        // Left by an earlier process of the same pid.
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("rootfs");
        for sub in ["bin", "app/dir", "usr/bin", "proc", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::create_dir_all(dir.join("volumes/srv/sub")).unwrap();
        let files: [(&str, &[u8]); 7] = [
            ("rootfs/bin/busybox", b"\x7fELF\x02\x01\x01"),
            ("rootfs/app/hello.wasm", b"\0asm\x01\0\0\0"),
            ("rootfs/app/component.wasm", b"\0asm\x0d\0\x01\0"),
            ("rootfs/app/hello.wat", b";; text\n(module)"),
            ("rootfs/app/run.sh", b"#!/bin/sh\n"),
            ("rootfs/app/app.cwasm", b"\x7fSHIMWASM-ART\x01\0\0\x05\0\0\0"),
            ("volumes/srv/app.wasm", b"\0asm\x01\0\0\0"),
        ];
        for (path, bytes) in files {
            std::fs::write(dir.join(path), bytes).unwrap();
        }
        let links = [
            ("busybox", "rootfs/bin/sh"),
            ("/app/hello.wasm", "rootfs/entry.wasm"),
            ("../../../../etc/passwd", "rootfs/app/escape"),
            ("loop-b", "rootfs/app/loop-a"),
            ("loop-a", "rootfs/app/loop-b"),
            ("/srv/sub", "rootfs/app/to-volume"),
            ("../app.wasm", "volumes/srv/sub/up.wasm"),
        ];
        for (target, link) in links {
            symlink(target, dir.join(link)).unwrap();
        }
        let fifo = std::ffi::CString::new(dir.join("rootfs/app/pipe").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
        dir
    })
}

/// The spec's absolute bind sources, moved under `volumes/` of the scratch tree (their
/// plain names only: a `..` could climb out of it).
fn confine_mounts(spec: &mut Spec, scratch: &Path) {
    use std::path::Component;
    let Some(mut mounts) = spec.mounts().clone() else { return };
    for mount in &mut mounts {
        if let Some(source) = mount.source().clone().filter(|s| s.is_absolute()) {
            let names = source.components().filter(|c| matches!(c, Component::Normal(_)));
            mount.set_source(Some(names.fold(scratch.join("volumes"), |path, name| path.join(name))));
        }
    }
    spec.set_mounts(Some(mounts));
}

fn one_line(what: &str, result: Result<(), String>) {
    if let Err(e) = result {
        assert!(!e.contains('\n'), "{what}: an error of more than one line: {e:?}");
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(mut spec) = serde_json::from_slice::<Spec>(bytes) else { return };
    let scratch = scratch();
    confine_mounts(&mut spec, scratch);
    let process = spec.process().clone();
    let args = process.as_ref().and_then(|p| p.args().clone()).unwrap_or_default();
    let env = process.as_ref().and_then(|p| p.env().clone()).unwrap_or_default();
    one_line("env", container::env::check(&env));
    let profile = process.as_ref().and_then(|p| p.apparmor_profile().clone());
    one_line("apparmor", container::apparmor::check_host(profile.as_deref()));
    let view = ContainerView::new(&scratch.join("rootfs"), &spec);
    one_line("entrypoint", container::entrypoint::classify(&view, &args, &env).map(drop).map_err(|e| e.to_string()));
    one_line("cwd", container::cwd::place(&view, &spec).map(drop));
});
