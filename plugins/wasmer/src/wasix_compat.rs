//! Where wasmer-wasix's WASI preview 1 answers differently from the standard and from the
//! other engines, and the plugin can correct it without changing wasmer-wasix: the names
//! of the preopened directories, and wrappers around two of its functions.

use wasmer::{Extern, Function, FunctionEnv, FunctionEnvMut, Imports, RuntimeError, StoreMut, Value};
use wasmer_wasix::fs::WasiFs;
use wasmer_wasix::runtime::{InstantiationHook, InstantiationState};
use wasmer_wasix::wasmer_wasix_types::wasi::{Errno, Oflags, Rights};

/// The name wasmer-wasix's own in-memory root gets instead of "/": one no program asks for.
const WASMER_ROOT_NAME: &str = "/.wasmer-root";

/// The preview 1 import modules; `wasi_unstable` has the same two functions.
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

/// Replaces two preview 1 imports with wrappers that call wasmer-wasix's own:
/// - `path_open` with `O_DIRECTORY` asks for `FD_WRITE` only when a program passes a
///   directory's full rights back (the WASI test suite reopens each preopen with the rights
///   its fdstat reports); a directory cannot be written, other engines ignore the right,
///   and wasmer-wasix answers EISDIR. The wrapper drops it.
///   It also answers EPERM for every host "permission denied": wasmer-wasix maps the
///   kernel's EACCES and EPERM to the one error kind of Rust's standard library and back
///   to EPERM. open(2) refuses with EACCES for file permissions (a non-root container
///   opening a root-only file), and says EPERM only for rarities (O_NOATIME, sealed or
///   immutable files), so the wrapper answers EACCES, as the other engines do.
/// - `fd_prestat_dir_name` into a buffer too short for the name answers EOVERFLOW, where
///   WASI and the other engines say ENAMETOOLONG.
#[derive(Debug)]
pub struct PreviewOneFixes;

impl InstantiationHook for PreviewOneFixes {
    fn prepare_imports(
        &self,
        _module: &wasmer::Module,
        store: &mut StoreMut,
        imports: &mut Imports,
    ) -> anyhow::Result<InstantiationState> {
        for namespace in PREVIEW1 {
            if let Some(Extern::Function(original)) = imports.get_export(namespace, "path_open") {
                let env = FunctionEnv::new(store, original);
                let wrapper = Function::new_typed_with_env(store, &env, path_open);
                imports.define(namespace, "path_open", wrapper);
            }
            if let Some(Extern::Function(original)) = imports.get_export(namespace, "fd_prestat_dir_name") {
                let env = FunctionEnv::new(store, original);
                let wrapper = Function::new_typed_with_env(store, &env, fd_prestat_dir_name);
                imports.define(namespace, "fd_prestat_dir_name", wrapper);
            }
        }
        Ok(InstantiationState::empty())
    }
}

#[allow(clippy::too_many_arguments)] // the WASI function's own parameters
fn path_open(
    mut env: FunctionEnvMut<Function>,
    fd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    rights_base: i64,
    rights_inheriting: i64,
    fdflags: i32,
    opened: i32,
) -> Result<i32, RuntimeError> {
    let mut rights_base = rights_base;
    if oflags & i32::from(Oflags::DIRECTORY.bits()) != 0 {
        rights_base &= !(Rights::FD_WRITE.bits() as i64);
    }
    let original = env.data().clone();
    let args = [
        Value::I32(fd),
        Value::I32(dirflags),
        Value::I32(path),
        Value::I32(path_len),
        Value::I32(oflags),
        Value::I64(rights_base),
        Value::I64(rights_inheriting),
        Value::I32(fdflags),
        Value::I32(opened),
    ];
    let errno = errno_of(&original.call(&mut env, &args)?)?;
    Ok(if errno == Errno::Perm as i32 { Errno::Access as i32 } else { errno })
}

fn fd_prestat_dir_name(
    mut env: FunctionEnvMut<Function>,
    fd: i32,
    path: i32,
    path_len: i32,
) -> Result<i32, RuntimeError> {
    let original = env.data().clone();
    let errno =
        errno_of(&original.call(&mut env, &[Value::I32(fd), Value::I32(path), Value::I32(path_len)])?)?;
    Ok(if errno == Errno::Overflow as i32 { Errno::Nametoolong as i32 } else { errno })
}

fn errno_of(results: &[Value]) -> Result<i32, RuntimeError> {
    results.first().and_then(Value::i32).ok_or_else(|| RuntimeError::new("a WASI function returned no errno"))
}
