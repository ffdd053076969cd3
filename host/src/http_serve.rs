//! Serving `wasi:http` components: which programs are served rather than run, on which
//! address, and how a termination signal asks the server to stop. A binary component
//! that exports `wasi:http/incoming-handler` and not `wasi:cli/run` is served through the
//! plugin's `serve` (ABI 1.2, capability `http-serve`), on the address the program's
//! environment names in [`LISTEN_ENV`] (runwasi's name, so its images work unchanged),
//! [`DEFAULT_LISTEN`] otherwise. Used by the container's init process and by `run`.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use shim_wasm_abi::component::{self, World};
use shim_wasm_abi::host::LoadedPlugin;
use shim_wasm_abi::{Capabilities, ModuleKind};

/// The environment variable that names the address to listen on.
pub const LISTEN_ENV: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";
/// Where a served component listens when its environment does not say.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Where to serve `bytes`, if it is a component to serve: `Ok(None)` for anything to run;
/// an error (one line) when it is one but `plugin` cannot serve or the address is wrong.
/// `env` holds `KEY=VALUE` entries.
pub fn listen_address(bytes: &[u8], env: &[String], plugin: &LoadedPlugin) -> Result<Option<String>, String> {
    if ModuleKind::sniff(bytes) != ModuleKind::Component || component::world(bytes) != World::HttpHandler {
        return Ok(None);
    }
    let engine = &plugin.descriptor().engine_name;
    if !plugin.descriptor().capabilities.contains(Capabilities::HTTP_SERVE) {
        return Err(format!(
            "the {engine} engine cannot serve wasi:http components (this component exports {} and no {}); \
             choose an engine with the http-serve capability, such as wasmtime (see `containerd-shim-wasm-v1 engines`)",
            component::HTTP_HANDLER,
            component::CLI_RUN
        ));
    }
    let prefix = format!("{LISTEN_ENV}=");
    let listen = env.iter().rev().find_map(|e| e.strip_prefix(&prefix)).unwrap_or(DEFAULT_LISTEN);
    listen.parse::<SocketAddr>().map_err(|_| {
        format!("{LISTEN_ENV}={listen} is not an IP:PORT address to listen on; set it like {DEFAULT_LISTEN}")
    })?;
    Ok(Some(listen.to_string()))
}

/// The write end of the stop pipe while serving.
static STOP_WRITE: AtomicI32 = AtomicI32::new(-1);
/// [`ARMED`] while no signal has come; then the first signal's record, `signal << 2 |
/// from_parent << 1 | other_copy_seen`. One atomic, so that two handlers running at once
/// on two threads agree on which came first.
static STOPPED_BY: AtomicI32 = AtomicI32::new(ARMED);
const ARMED: i32 = -1;

/// From now on, the first SIGTERM, SIGINT, SIGHUP or SIGQUIT makes the returned
/// descriptor readable (the server stops accepting, finishes what is in flight, and the
/// program ends with 0); a second one ends the process at once with 128+N, as a signal
/// ends a program that does not serve. Not a second one: the other copy of a signal the
/// whole process group got (Ctrl-C reaches both `run` and its engine process, and `run`
/// forwards what it gets), which comes from the parent when the first did not, or the
/// other way round: the kernel may deliver either first. In a container's init process
/// (PID 1 of its namespace) every signal from outside, and the kernel's, reads as from
/// the parent: two from outside end it; one from inside (`kill 1`) pairs with one from
/// outside.
pub fn stop_on_termination_signals() -> std::io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    STOP_WRITE.store(fds[1], Ordering::SeqCst);
    extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY (whole handler): getppid, write and _exit are async-signal-safe; `info` is
        // the kernel's, valid during the handler; errno is restored for the code we
        // interrupted.
        unsafe {
            let errno = *libc::__errno_location();
            let from_parent = !info.is_null() && (*info).si_pid() == libc::getppid();
            let record = signal << 2 | i32::from(from_parent) << 1;
            match STOPPED_BY.compare_exchange(ARMED, record, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    libc::write(STOP_WRITE.load(Ordering::SeqCst), b"s".as_ptr().cast(), 1);
                }
                Err(first) => {
                    // The first's other copy: same signal, the other sender, once.
                    let copy = record ^ 2;
                    let paired = first == copy
                        && STOPPED_BY
                            .compare_exchange(copy, copy | 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok();
                    if !paired {
                        libc::_exit(128 + signal);
                    }
                }
            }
            *libc::__errno_location() = errno;
        }
    }
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installs an async-signal-safe handler with SA_SIGINFO, the signature it has.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    // SAFETY: the read end pipe2 just made, owned from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fds[0]) })
}
