//! WASI preview 1 (and its predecessor `wasi_unstable`) for plugins whose engine's own
//! implementation differs from the standard (feature `wasi-preview1`): wasi-common,
//! wasmtime's preview 1 implementation, which runs without wasmtime (its cap-std back end;
//! the 36 long-term-support line, as later releases tie it to wasmtime's error type).
//!
//! The engine glue makes each WASI import a host function of its engine that calls
//! [`Preview1::call`] with the function's name, the instance's memory and the arguments;
//! [`signature`] gives the wasm type of each function to check imports against. The
//! Wasmer and WAMR plugins use it: wasmer-wasix and WAMR's libc-wasi failed 21 and 1 of
//! the official WASI test suite's 72 preview 1 tests, in ways no wrapper could correct
//! (docs/engines.md).

use std::os::fd::BorrowedFd;

use wasi_common::snapshots::{preview_0, preview_1};
use wasi_common::sync::{Dir, WasiCtxBuilder, ambient_authority, file::File};
use wasi_common::{I32Exit, WasiCtx, WasiFile};
use wiggle::GuestMemory;
use wiggle::anyhow;

use super::{PluginError, RunRequest, one_line};

/// The two import modules of WASI preview 1: the final snapshot, and snapshot 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshot {
    Zero,
    One,
}

impl Snapshot {
    /// The snapshot an import module stands for, if it is one of WASI's.
    pub fn of_module(module: &str) -> Option<Snapshot> {
        match module {
            "wasi_snapshot_preview1" => Some(Snapshot::One),
            "wasi_unstable" => Some(Snapshot::Zero),
            _ => None,
        }
    }
}

/// A wasm value type of a WASI function's parameters and results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmType {
    I32,
    I64,
}

/// A WASI function's wasm signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub params: &'static [WasmType],
    pub results: &'static [WasmType],
}

/// Why a call did not return to the program.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// `proc_exit` with this status.
    Exit(i32),
    /// Anything else WASI raises (a trap), in one line.
    Trap(String),
}

/// The wasm signature of WASI's function `name`, or `None` if WASI has no such function.
pub fn signature(snapshot: Snapshot, name: &str) -> Option<Signature> {
    match snapshot {
        Snapshot::One => preview_1_signature(name),
        Snapshot::Zero => preview_0_signature(name),
    }
}

/// The names of WASI's functions in `snapshot`.
pub fn functions(snapshot: Snapshot) -> &'static [&'static str] {
    match snapshot {
        Snapshot::One => PREVIEW_1_NAMES,
        Snapshot::Zero => PREVIEW_0_NAMES,
    }
}

/// A program's WASI state: arguments, environment, descriptors.
pub struct Preview1 {
    ctx: WasiCtx,
}

impl Preview1 {
    /// The request's args and env; its standard streams as copies of the host's
    /// descriptors, written without buffering; its preopens, sandboxed by cap-std.
    pub fn new(request: &RunRequest<'_>) -> Result<Self, PluginError> {
        let mut builder = WasiCtxBuilder::new();
        let bad_string = |what: &str, e| PluginError::invalid_argument(format!("{what}: {e}"));
        for arg in &request.args {
            builder.arg(arg).map_err(|e| bad_string("an argument", e))?;
        }
        for (key, value) in &request.env {
            builder.env(key, value).map_err(|e| bad_string("an environment variable", e))?;
        }
        builder
            .stdin(stream(request.stdin, "stdin")?)
            .stdout(stream(request.stdout, "stdout")?)
            .stderr(stream(request.stderr, "stderr")?);
        for dir in &request.preopens {
            let cannot = |e: &dyn std::fmt::Display| {
                PluginError::io(format!("cannot preopen {} as {}: {e}", dir.host_path, dir.guest_path))
            };
            let host = Dir::open_ambient_dir(dir.host_path, ambient_authority()).map_err(|e| cannot(&e))?;
            builder.preopened_dir(host, dir.guest_path).map_err(|e| cannot(&e))?;
        }
        Ok(Preview1 { ctx: builder.build() })
    }

    /// Runs WASI's function `name` of `snapshot` over the instance's `memory` (empty when
    /// it has none: every pointer is then out of bounds, EFAULT). `args` are the call's
    /// arguments as [`signature`] types them, an i32 in the low half. Returns the errno,
    /// or `None` for a function without results.
    ///
    /// The engine must not run WebAssembly code or grow the memory during the call.
    pub fn call(
        &mut self,
        snapshot: Snapshot,
        name: &str,
        memory: &mut [u8],
        args: &[i64],
    ) -> Result<Option<i32>, Stop> {
        let mut memory = GuestMemory::Unshared(memory);
        let call = match snapshot {
            Snapshot::One => call_preview_1,
            Snapshot::Zero => call_preview_0,
        };
        corrected(name, &mut self.ctx, &mut memory, args, call).map_err(stop)
    }
}

fn stream(fd: BorrowedFd<'_>, what: &str) -> Result<Box<dyn WasiFile>, PluginError> {
    let copy = fd
        .try_clone_to_owned()
        .map_err(|e| PluginError::io(format!("cannot duplicate the {what} descriptor: {e}")))?;
    Ok(Box::new(File::from_cap_std(cap_std::fs::File::from_std(copy.into()))))
}

/// `proc_exit` unwinds with its status; anything else wasi-common raises is a trap.
fn stop(error: anyhow::Error) -> Stop {
    match error.downcast::<I32Exit>() {
        Ok(exit) => Stop::Exit(exit.0),
        Err(error) => Stop::Trap(one_line(&format!("{error:#}"))),
    }
}

type Call = fn(&str, &mut WasiCtx, &mut GuestMemory<'_>, &[i64]) -> anyhow::Result<Option<i32>>;

/// WASI errno values (the same in both snapshots).
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const ENOTSOCK: i32 = 57;
const ENOTSUP: i32 = 58;
/// `fdflags.append` and `oflags.trunc`.
const FDFLAGS_APPEND: i64 = 1;
const OFLAGS_TRUNC: i64 = 8;

/// Calls wasi-common, except where it answers differently from wasmtime's current
/// preview 1 (`wasmtime-wasi`) and the WASI test suite, or from a native program:
/// - `proc_exit` with a status of 126 or more is a trap ("exit with invalid exit status
///   outside of [0..126)"), in wasmtime too; the program exits with that status, as
///   natively and on WasmEdge (the wasmtime plugin overrides wasmtime's the same way).
/// - `fd_fdstat_set_rights` succeeds without dropping anything; wasmtime says ENOTSUP
///   (rights are gone from later WASI), which programs take as "no rights to manage".
/// - `fd_renumber` onto a descriptor that is not open moves the descriptor there; it is
///   EBADF.
/// - `sock_shutdown` of something that is not a socket is EBADF; it is ENOTSOCK.
/// - `path_open` with both `trunc` and `append` fails with EINVAL (Rust's `OpenOptions`
///   refuses the pair; `open(2)` takes it): the file is opened without `append`, then
///   given it.
fn corrected(
    name: &str,
    ctx: &mut WasiCtx,
    memory: &mut GuestMemory<'_>,
    args: &[i64],
    call: Call,
) -> anyhow::Result<Option<i32>> {
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    let open = |ctx: &WasiCtx, i: usize| ctx.table().contains_key(arg(i) as u32);
    match name {
        "proc_exit" => Err(I32Exit(arg(0) as i32).into()),
        "fd_fdstat_set_rights" if open(ctx, 0) => Ok(Some(ENOTSUP)),
        "fd_fdstat_set_rights" => Ok(Some(EBADF)),
        "fd_renumber" if !open(ctx, 0) || !open(ctx, 1) => Ok(Some(EBADF)),
        "sock_shutdown" => {
            let was_open = open(ctx, 0);
            let errno = call(name, ctx, memory, args)?;
            Ok(if was_open && errno == Some(EBADF) { Some(ENOTSOCK) } else { errno })
        }
        "path_open" if arg(4) & OFLAGS_TRUNC != 0 && arg(7) & FDFLAGS_APPEND != 0 => {
            let mut without_append = args.to_vec();
            without_append[7] &= !FDFLAGS_APPEND;
            let errno = call(name, ctx, memory, &without_append)?;
            let Some(opened) = read_u32(memory, arg(8)).filter(|_| errno == Some(SUCCESS)) else {
                return Ok(errno);
            };
            let set = call("fd_fdstat_set_flags", ctx, memory, &[i64::from(opened), arg(7)])?;
            if set != Some(SUCCESS) {
                call("fd_close", ctx, memory, &[i64::from(opened)])?;
                return Ok(set);
            }
            Ok(errno)
        }
        _ => call(name, ctx, memory, args),
    }
}

/// The little-endian u32 the program's memory holds at `at`.
fn read_u32(memory: &GuestMemory<'_>, at: i64) -> Option<u32> {
    let GuestMemory::Unshared(bytes) = memory else { return None };
    let at = at as u32 as usize;
    let bytes = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// A wasm value as the Rust type wasi-common's functions take.
trait WasmArg {
    const TYPE: WasmType;
    fn from_raw(raw: i64) -> Self;
}

impl WasmArg for i32 {
    const TYPE: WasmType = WasmType::I32;
    fn from_raw(raw: i64) -> Self {
        raw as i32
    }
}

impl WasmArg for i64 {
    const TYPE: WasmType = WasmType::I64;
    fn from_raw(raw: i64) -> Self {
        raw
    }
}

/// What a wasi-common function returns: an errno, or nothing (`proc_exit`).
trait WasmResult {
    const TYPES: &'static [WasmType];
    fn errno(self) -> Option<i32>;
}

impl WasmResult for i32 {
    const TYPES: &'static [WasmType] = &[WasmType::I32];
    fn errno(self) -> Option<i32> {
        Some(self)
    }
}

impl WasmResult for () {
    const TYPES: &'static [WasmType] = &[];
    fn errno(self) -> Option<i32> {
        None
    }
}

/// Maps each WASI function, by name, to wasi-common's: its signature (the wasm types of
/// its parameters, checked against the generated function by the compiler) and a call.
macro_rules! wasi_functions {
    ($names:ident, $signature:ident, $call:ident, $module:path; $($name:ident($($param:ty),*) -> $result:ty;)*) => {
        const $names: &[&str] = &[$(stringify!($name)),*];

        fn $signature(name: &str) -> Option<Signature> {
            match name {
                $(stringify!($name) => {
                    const PARAMS: &[WasmType] = &[$(<$param as WasmArg>::TYPE),*];
                    Some(Signature { params: PARAMS, results: <$result as WasmResult>::TYPES })
                })*
                _ => None,
            }
        }

        fn $call(
            name: &str,
            ctx: &mut WasiCtx,
            memory: &mut GuestMemory<'_>,
            args: &[i64],
        ) -> anyhow::Result<Option<i32>> {
            use $module as functions;
            let mut args = args.iter().copied();
            let mut next = || args.next().ok_or_else(|| anyhow::anyhow!("WASI function {name}: too few arguments"));
            match name {
                $(stringify!($name) => wiggle::run_in_dummy_executor(functions::$name(
                    ctx,
                    memory,
                    $(<$param as WasmArg>::from_raw(next()?)),*
                ))?
                .map(<$result as WasmResult>::errno),)*
                _ => Err(anyhow::anyhow!("WASI has no function {name}")),
            }
        }
    };
}

/// The functions both snapshots have, with their wasm parameter types, and `$extra`.
macro_rules! wasi_snapshot {
    ($names:ident, $signature:ident, $call:ident, $module:path; $($extra:tt)*) => {
        wasi_functions! {
            $names, $signature, $call, $module;
            args_get(i32, i32) -> i32;
            args_sizes_get(i32, i32) -> i32;
            environ_get(i32, i32) -> i32;
            environ_sizes_get(i32, i32) -> i32;
            clock_res_get(i32, i32) -> i32;
            clock_time_get(i32, i64, i32) -> i32;
            fd_advise(i32, i64, i64, i32) -> i32;
            fd_allocate(i32, i64, i64) -> i32;
            fd_close(i32) -> i32;
            fd_datasync(i32) -> i32;
            fd_fdstat_get(i32, i32) -> i32;
            fd_fdstat_set_flags(i32, i32) -> i32;
            fd_fdstat_set_rights(i32, i64, i64) -> i32;
            fd_filestat_get(i32, i32) -> i32;
            fd_filestat_set_size(i32, i64) -> i32;
            fd_filestat_set_times(i32, i64, i64, i32) -> i32;
            fd_pread(i32, i32, i32, i64, i32) -> i32;
            fd_prestat_get(i32, i32) -> i32;
            fd_prestat_dir_name(i32, i32, i32) -> i32;
            fd_pwrite(i32, i32, i32, i64, i32) -> i32;
            fd_read(i32, i32, i32, i32) -> i32;
            fd_readdir(i32, i32, i32, i64, i32) -> i32;
            fd_renumber(i32, i32) -> i32;
            fd_seek(i32, i64, i32, i32) -> i32;
            fd_sync(i32) -> i32;
            fd_tell(i32, i32) -> i32;
            fd_write(i32, i32, i32, i32) -> i32;
            path_create_directory(i32, i32, i32) -> i32;
            path_filestat_get(i32, i32, i32, i32, i32) -> i32;
            path_filestat_set_times(i32, i32, i32, i32, i64, i64, i32) -> i32;
            path_link(i32, i32, i32, i32, i32, i32, i32) -> i32;
            path_open(i32, i32, i32, i32, i32, i64, i64, i32, i32) -> i32;
            path_readlink(i32, i32, i32, i32, i32, i32) -> i32;
            path_remove_directory(i32, i32, i32) -> i32;
            path_rename(i32, i32, i32, i32, i32, i32) -> i32;
            path_symlink(i32, i32, i32, i32, i32) -> i32;
            path_unlink_file(i32, i32, i32) -> i32;
            poll_oneoff(i32, i32, i32, i32) -> i32;
            proc_exit(i32) -> ();
            proc_raise(i32) -> i32;
            sched_yield() -> i32;
            random_get(i32, i32) -> i32;
            sock_recv(i32, i32, i32, i32, i32, i32) -> i32;
            sock_send(i32, i32, i32, i32, i32) -> i32;
            sock_shutdown(i32, i32) -> i32;
            $($extra)*
        }
    };
}

wasi_snapshot!(PREVIEW_1_NAMES, preview_1_signature, call_preview_1, preview_1::wasi_snapshot_preview1; sock_accept(i32, i32, i32) -> i32;);
wasi_snapshot!(PREVIEW_0_NAMES, preview_0_signature, call_preview_0, preview_0::wasi_unstable;);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_wasis() {
        let fd_write = signature(Snapshot::One, "fd_write").unwrap();
        assert_eq!(fd_write.params, [WasmType::I32; 4]);
        assert_eq!(fd_write.results, [WasmType::I32]);
        let exit = signature(Snapshot::Zero, "proc_exit").unwrap();
        assert_eq!((exit.params, exit.results), (&[WasmType::I32][..], &[][..]));
        assert_eq!(signature(Snapshot::One, "fd_seek").unwrap().params[1], WasmType::I64);
        assert_eq!(signature(Snapshot::Zero, "sock_accept"), None);
        assert_eq!((functions(Snapshot::One).len(), functions(Snapshot::Zero).len()), (46, 45));
        assert!(functions(Snapshot::One).iter().all(|name| signature(Snapshot::One, name).is_some()));
        assert_eq!(signature(Snapshot::One, "no_such_function"), None);
        assert_eq!(Snapshot::of_module("wasi_unstable"), Some(Snapshot::Zero));
        assert_eq!(Snapshot::of_module("env"), None);
    }
}
