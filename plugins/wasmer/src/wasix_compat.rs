//! Where wasmer-wasix's WASI preview 1 answers differently from the standard and from the
//! other engines, and the plugin can correct it without changing wasmer-wasix: the names
//! of the preopened directories, and wrappers around some of its functions. Only WASIX
//! and threaded programs run on wasmer-wasix; plain preview 1 ones get `preview1.rs`.

use std::sync::{Arc, OnceLock};

use wasmer::{Extern, Function, FunctionEnv, FunctionEnvMut, Imports, Memory, RuntimeError, StoreMut, Value};
use wasmer_wasix::fs::WasiFs;
use wasmer_wasix::runtime::{InstantiationHook, InstantiationState};
use wasmer_wasix::wasmer_wasix_types::wasi::{Errno, Filetype, Rights};

/// The name wasmer-wasix's own in-memory root gets instead of "/": one no program asks for.
const WASMER_ROOT_NAME: &str = "/.wasmer-root";

/// The preview 1 import modules; `wasi_unstable` has the same functions.
const PREVIEW1: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// wasmer-wasix always puts an in-memory root of its own at fd 3, named "/", in which
/// nothing can be created, and names each preopen by its guest path without the leading
/// '/'. Programs (wasi-libc, Rust's standard library, the WASI test suite) take the first
/// preopen named "/" as the file system's root, so they found wasmer's root instead of the
/// container's. Here wasmer's root gets another name and each preopen its guest path, as
/// wasmtime names them. Runs before the program starts (`WasiEnvBuilder::setup_fs`).
pub fn name_preopens(fs: &mut WasiFs, guest_paths: &[String]) -> Result<(), String> {
    let root = fs.root_inode.ino();
    *fs.root_inode.name.write().unwrap() = WASMER_ROOT_NAME.into();
    let preopen_fds = fs.preopen_fds.read().unwrap().clone();
    let mut requested = guest_paths.iter();
    for fd in preopen_fds {
        let inode = fs.get_fd_inode(fd).map_err(|e| format!("preopen fd {fd}: {e}"))?;
        if inode.ino() == root {
            continue;
        }
        let Some(guest_path) = requested.next() else { break };
        *inode.name.write().unwrap() = guest_path.clone().into();
    }
    Ok(())
}

/// Replaces preview 1 imports with wrappers that call wasmer-wasix's own and correct
/// what it answers:
/// - `fd_fdstat_get` of a directory reports `FD_WRITE` among its rights, which wasmtime
///   and the WASI test suite leave out: a directory cannot be written. Programs that
///   reopen a preopen with the rights it reports (the suite's do) were answered EISDIR by
///   `path_open`. The wrapper leaves the right out of what it reports; the descriptor keeps
///   it, since wasmer-wasix gives files opened under a directory their write mode from it.
/// - Errors, by [`ERRNO_FIXES`].
#[derive(Debug)]
pub struct PreviewOneFixes;

/// How wasmer-wasix's errors differ from WASI's, function by function: (function, what
/// wasmer-wasix says, what WASI and the other engines say).
/// - EACCES is what wasmer-wasix says when a descriptor lacks a right the call needs;
///   WASI says ENOTCAPABLE (for `sock_shutdown` on something that is not a socket, the
///   missing right is the socket's: ENOTSOCK). Its own EACCES never comes from the host,
///   because it maps the host's EACCES and EPERM alike to EPERM.
/// - EPERM from `path_open` is therefore the host's "permission denied": open(2) says
///   EACCES for file permissions (a non-root container opening a root-only file), EPERM
///   only for rarities (O_NOATIME, sealed or immutable files). A symlink that leads out of
///   the preopen, EPERM in wasmer-wasix, becomes EACCES too.
/// - `fd_prestat_dir_name` into a buffer too short for the name: EOVERFLOW in wasmer-wasix,
///   ENAMETOOLONG in WASI.
const ERRNO_FIXES: [(&str, Errno, Errno); 8] = [
    ("path_open", Errno::Access, Errno::Notcapable),
    ("path_open", Errno::Perm, Errno::Access),
    ("fd_read", Errno::Access, Errno::Notcapable),
    ("fd_write", Errno::Access, Errno::Notcapable),
    ("fd_pread", Errno::Access, Errno::Notcapable),
    ("fd_pwrite", Errno::Access, Errno::Notcapable),
    ("sock_shutdown", Errno::Access, Errno::Notsock),
    ("fd_prestat_dir_name", Errno::Overflow, Errno::Nametoolong),
];

/// What a wrapper holds: wasmer-wasix's function, the errors it corrects, and the
/// instance's memory once the instance exists (set by `configure_new_instance`).
struct Wrapped {
    original: Function,
    errno_fixes: Vec<(i32, i32)>,
    memory: Arc<OnceLock<Memory>>,
}

impl InstantiationHook for PreviewOneFixes {
    fn prepare_imports(
        &self,
        _module: &wasmer::Module,
        store: &mut StoreMut,
        imports: &mut Imports,
    ) -> anyhow::Result<InstantiationState> {
        let memory = Arc::new(OnceLock::new());
        let mut names: Vec<&str> = ERRNO_FIXES.iter().map(|(name, ..)| *name).collect();
        names.push("fd_fdstat_get");
        names.sort_unstable();
        names.dedup();
        for namespace in PREVIEW1 {
            for &name in &names {
                let Some(Extern::Function(original)) = imports.get_export(namespace, name) else { continue };
                let ty = original.ty(store);
                let errno_fixes = ERRNO_FIXES
                    .iter()
                    .filter(|(fixed, ..)| *fixed == name)
                    .map(|(_, from, to)| (*from as i32, *to as i32))
                    .collect();
                let env = FunctionEnv::new(store, Wrapped { original, errno_fixes, memory: memory.clone() });
                let wrapper = if name == "fd_fdstat_get" {
                    Function::new_typed_with_env(store, &env, fd_fdstat_get)
                } else {
                    Function::new_with_env(store, &env, ty, call_and_fix_errno)
                };
                imports.define(namespace, name, wrapper);
            }
        }
        Ok(InstantiationState::new(memory))
    }

    fn configure_new_instance(
        &self,
        _module: &wasmer::Module,
        _store: &mut StoreMut,
        instance: &wasmer::Instance,
        imported_memory: Option<&Memory>,
        state: InstantiationState,
    ) -> anyhow::Result<()> {
        let cell: Arc<OnceLock<Memory>> = state.take()?;
        // wasmer-wasix itself takes the first memory the instance exports.
        let exported = || instance.exports.iter().memories().next().map(|(_, memory)| memory.clone());
        let memory = imported_memory.cloned().or_else(exported);
        if let Some(memory) = memory {
            let _ = cell.set(memory);
        }
        Ok(())
    }
}

/// Calls wasmer-wasix's function and corrects the errno it returns.
fn call_and_fix_errno(mut env: FunctionEnvMut<Wrapped>, args: &[Value]) -> Result<Vec<Value>, RuntimeError> {
    let original = env.data().original.clone();
    let errno = errno_of(&original.call(&mut env, args)?)?;
    let fixed = env.data().errno_fixes.iter().find(|(from, _)| *from == errno).map_or(errno, |(_, to)| *to);
    Ok(vec![Value::I32(fixed)])
}

/// The offsets in WASI's `fdstat` of the file type (u8) and the base rights (u64).
const FDSTAT_FILETYPE: u64 = 0;
const FDSTAT_RIGHTS_BASE: u64 = 8;

fn fd_fdstat_get(mut env: FunctionEnvMut<Wrapped>, fd: i32, stat: i32) -> Result<i32, RuntimeError> {
    let original = env.data().original.clone();
    let errno = errno_of(&original.call(&mut env, &[Value::I32(fd), Value::I32(stat)])?)?;
    let Some(memory) = env.data().memory.get().cloned() else { return Ok(errno) };
    if errno == Errno::Success as i32 {
        let view = memory.view(&env);
        let at = u64::from(stat as u32);
        let mut filetype = [0u8; 1];
        let mut rights = [0u8; 8];
        if view.read(at + FDSTAT_FILETYPE, &mut filetype).is_ok()
            && filetype[0] == Filetype::Directory as u8
            && view.read(at + FDSTAT_RIGHTS_BASE, &mut rights).is_ok()
        {
            let reported = u64::from_le_bytes(rights) & !Rights::FD_WRITE.bits();
            view.write(at + FDSTAT_RIGHTS_BASE, &reported.to_le_bytes())
                .map_err(|e| RuntimeError::new(format!("fd_fdstat_get: {e}")))?;
        }
    }
    Ok(errno)
}

fn errno_of(results: &[Value]) -> Result<i32, RuntimeError> {
    results.first().and_then(Value::i32).ok_or_else(|| RuntimeError::new("a WASI function returned no errno"))
}
