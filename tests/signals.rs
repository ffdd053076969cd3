//! Signals to a wasm container's process, through the shim's task API: which are accepted,
//! what a wasm PID 1 does with each (README, "Signals"): termination signals end it
//! (containerd_e2e has the statuses), the ones a PID 1 has no handler for leave it
//! running, SIGSTOP and SIGCONT stop and continue it, and fault signals sent with `kill`
//! leave the shim serving.

mod support;

use std::time::{Duration, Instant};

use support::stress::bundle::Workload;
use support::stress::shim::{CALL_BOUND, Runtime, ShimServer, WAIT_BOUND};

/// Every signal runc accepts (1 to 64, real-time ones included) is delivered to the
/// container's process; anything else is refused with one line. Signals a PID 1 has no
/// handler for leave the program running, also while the engine starts its threads (sent
/// without pause from the Start on: before the fix, one of them ended the program now and
/// then, when it came while glibc was creating a thread).
#[test]
fn signals_runc_accepts_and_one_it_does_not() {
    let shim = ShimServer::start("bad-signal", Runtime::Wasm { engine: "wasmtime" }, Workload::WasmLoop);
    let id = shim.task_id(1);
    shim.create(&id, Workload::WasmLoop).unwrap();
    let pid = shim.api.state(&id, CALL_BOUND).unwrap().pid as i32;
    let sender = std::thread::spawn(move || {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
        while std::time::Instant::now() < until {
            for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGWINCH, libc::SIGRTMIN() + 6]
            {
                // SAFETY: kill(2) on the container's init process; the loop stops once it
                // is gone (its pid must not be signalled after reuse).
                if unsafe { libc::kill(pid, signal) } != 0 {
                    return;
                }
            }
        }
    });
    shim.api.start(&id, CALL_BOUND).unwrap();
    sender.join().unwrap();
    assert!(shim.started(&id, pid), "the program must run on");
    // PID 1 without a handler for them: delivered, and the program goes on.
    for signal in [libc::SIGUSR1, libc::SIGRTMIN(), 40, 64] {
        shim.api.kill(&id, signal as u32, CALL_BOUND).unwrap_or_else(|e| panic!("signal {signal}: {e}"));
        shim.api
            .kill_all(&id, signal as u32, CALL_BOUND)
            .unwrap_or_else(|e| panic!("signal {signal}, all: {e}"));
    }
    let err = shim.api.kill(&id, 65, CALL_BOUND).unwrap_err();
    assert!(err.contains("invalid signal 65"), "{err}");
    let err = shim.api.kill(&id, 0, CALL_BOUND).unwrap_err();
    assert!(err.contains("invalid signal 0: signals are 1 to 64"), "{err}");
    for bad in [0, 65] {
        let err = shim.api.kill_all(&id, bad, CALL_BOUND).unwrap_err();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot kill"), "kill --all {bad}: {err}");
    }
    assert_eq!(shim.end_and_delete(&id, libc::SIGKILL), 137);
    shim.shutdown().unwrap();
}

/// The scheduler state of every thread of `pid` (`R`, `S`, `T`…).
fn thread_states(pid: i32) -> Vec<char> {
    support::stress::leaks::per_thread(pid, "stat")
        .iter()
        .filter_map(|stat| stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
        .collect()
}

/// Whether `condition` holds within 10 s.
fn within_10_s(condition: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while !condition() {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// SIGSTOP and SIGCONT stop and continue a wasm PID 1 as they do a native one (the kernel
/// acts on them whatever the handlers): every thread of the process stops, then runs
/// again, and SIGTERM still ends the program with 143.
#[test]
fn sigstop_and_sigcont_stop_and_continue_the_program() {
    let (shim, id, pid) = ShimServer::running_loop("sig-stop", "wasmtime");
    shim.api.kill(&id, libc::SIGSTOP as u32, CALL_BOUND).unwrap();
    let stopped = || {
        let states = thread_states(pid);
        !states.is_empty() && states.iter().all(|&s| s == 'T')
    };
    assert!(within_10_s(stopped), "not stopped: {:?}", thread_states(pid));
    shim.api.kill(&id, libc::SIGCONT as u32, CALL_BOUND).unwrap();
    assert!(
        within_10_s(|| thread_states(pid).iter().all(|&s| s != 'T')),
        "not continued: {:?}",
        thread_states(pid)
    );
    assert!(!thread_states(pid).is_empty(), "the program ended");
    assert_eq!(shim.end_and_delete(&id, libc::SIGTERM), 143);
    shim.shutdown().unwrap();
}

/// Fault signals another process sends (SIGSEGV, SIGBUS, SIGILL, SIGFPE) are dropped for a
/// wasm PID 1 on every engine, as the kernel drops them for a native PID 1 without handler:
/// a program running wasm code runs on (before the filter, Wasmer took a sent SIGSEGV or
/// SIGFPE for an out-of-bounds access or a stack overflow, and a SIGILL ended it with 139).
/// A program in a host call (a sleep) still ends with its own fault as a trap (134, with
/// the engine's message); WAMR's sleep ends early when a signal reaches a handler (EINTR).
#[test]
fn fault_signals_another_process_sends_are_dropped() {
    const FAULTS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];
    // Returns the first error: the program may have ended (only the sleeping one may).
    let send_faults = |shim: &ShimServer, id: &str| -> Result<(), String> {
        FAULTS
            .into_iter()
            .chain(FAULTS)
            .try_for_each(|signal| shim.api.kill(id, signal as u32, CALL_BOUND).map(drop))
    };
    for (engine, _) in support::engines() {
        let (shim, id, pid) = ShimServer::running_loop(&format!("sig-fault-{engine}"), engine);
        send_faults(&shim, &id).unwrap_or_else(|e| panic!("{engine}: {e}"));
        std::thread::sleep(Duration::from_millis(300));
        let stderr = shim.work().join("bundles").join(&id).join("stderr");
        assert!(
            !thread_states(pid).is_empty(),
            "{engine}: a sent fault signal ended the program: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        assert_eq!(shim.end_and_delete(&id, libc::SIGTERM), 143, "{engine}");
        shim.shutdown().unwrap();

        let mut shim = ShimServer::start(
            &format!("sig-fault-sleep-{engine}"),
            Runtime::Wasm { engine },
            Workload::WasmArgs,
        );
        shim.spec_edit =
            Some(Box::new(|_, spec| spec["process"]["args"] = serde_json::json!(["/sleep_then_trap.wasm"])));
        let id = shim.task_id(1);
        shim.create(&id, Workload::WasmArgs).unwrap();
        shim.api.start(&id, CALL_BOUND).unwrap();
        let pid = shim.api.state(&id, CALL_BOUND).unwrap().pid as i32;
        assert!(shim.started(&id, pid), "{engine}: the sleeping program did not start");
        let _ = send_faults(&shim, &id);
        let status = shim.api.wait(&id, WAIT_BOUND).unwrap().exit_status;
        let stderr =
            std::fs::read_to_string(shim.work().join("bundles").join(&id).join("stderr")).unwrap_or_default();
        assert_eq!(status, 134, "{engine}: the program's own fault after the sent ones: {stderr}");
        assert!(stderr.contains("trap"), "{engine}: {stderr}");
        shim.delete(&id).unwrap();
        assert!(shim.leftovers().is_empty(), "left behind: {}", shim.leftovers().summary());
        shim.shutdown().unwrap();
    }
}
