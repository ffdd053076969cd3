//! Fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE) that another process sends to a wasm
//! PID 1 with `kill`: dropped, as the kernel drops them for a native PID 1 that has no
//! handler for them.
//!
//! Engines handle these signals to turn a fault of wasm code (an access past a memory's
//! end, a division by zero) into a trap. A sent one is no fault, but an engine may take it
//! for one: Wasmer reported "out of bounds memory access" or "call stack exhausted" (134),
//! or ended the program with 139 for a SIGILL; wasmtime gives a signal it does not claim
//! back to the default action, so the next one could end the process. So once the engine
//! has installed its handlers, a filter goes in front of each: a signal the kernel raised
//! for a fault (`si_code > 0`) goes on to the engine's handler, one a process sent
//! (`si_code <= 0`: `kill`, `sigqueue`, `tgkill`) ends there. (A sent signal still reaches
//! a handler, so a sleep in the engine may end early with EINTR, as WAMR's does.)
//!
//! A program that is not PID 1 (a pod sharing one PID namespace) gets no filter, as a
//! native program there would die of the signal.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

const FAULTS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// The engine's handler of each of [`FAULTS`] (its address, 0 for none) and its flags.
static ENGINE_HANDLER: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static ENGINE_FLAGS: [AtomicI32; 4] = [const { AtomicI32::new(0) }; 4];

/// Puts the filter in front of the handlers the engine installed (call after creating
/// the engine). Signals with no handler are left alone: the kernel drops them for PID 1.
pub fn filter_sent_faults() {
    if std::process::id() != 1 {
        return;
    }
    for (i, &signal) in FAULTS.iter().enumerate() {
        // SAFETY: an all-zero sigaction is a valid value to be filled in.
        let mut engine: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reads the disposition of one signal into `engine`.
        let filter_address = filter_signal as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void)
            as libc::sighandler_t;
        // The filter itself is never the engine's: it would call itself.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut engine) } != 0
            || [libc::SIG_DFL, libc::SIG_IGN, filter_address].contains(&engine.sa_sigaction)
        {
            continue;
        }
        ENGINE_HANDLER[i].store(engine.sa_sigaction, Ordering::Release);
        ENGINE_FLAGS[i].store(engine.sa_flags, Ordering::Release);
        // The engine's mask and flags (its alternate stack, say), with siginfo for the filter.
        let mut filter = engine;
        filter.sa_sigaction = filter_address;
        filter.sa_flags = engine.sa_flags | libc::SA_SIGINFO;
        // SAFETY: installs the filter, which only reads atomics and calls the engine's handler.
        unsafe { libc::sigaction(signal, &filter, std::ptr::null_mut()) };
    }
}

extern "C" fn filter_signal(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo.
    if info.is_null() || unsafe { (*info).si_code } <= 0 {
        return;
    }
    let Some(i) = FAULTS.iter().position(|&s| s == signal) else { return };
    let handler = ENGINE_HANDLER[i].load(Ordering::Acquire);
    if handler == 0 {
        return;
    }
    // SAFETY: the engine's own handler, called as the kernel would have called it (with
    // siginfo and context when it asked for them); it may change the context the kernel
    // resumes from, or jump out of this frame, as it does for a trap.
    unsafe {
        if ENGINE_FLAGS[i].load(Ordering::Acquire) & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(handler);
            handler(signal, info, context);
        } else {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            handler(signal);
        }
    }
}
