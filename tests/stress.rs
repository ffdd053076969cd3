//! `make stress` and `make soak`: the figures of the stress harness (`tests/support/stress`),
//! printed, never asserted on time. Ignored in a plain `cargo test`; the Makefile runs
//! them with `--ignored --nocapture` on a release build.
//!
//! - `stress`: `STRESS_TASKS` tasks (default 300) at each of `STRESS_PARALLEL` (default
//!   1,2,8,20) through one shim over ttrpc, and through a private containerd with `ctr`;
//!   each followed by containerd's runc shim with busybox `true` under the same load.
//! - `soak`: `SOAK_TASKS` (default 10000) at `SOAK_PARALLEL` (default 20) through one
//!   shim over ttrpc, the server's descriptors and memory sampled every 1000 tasks.
//! - `density`: `DENSITY_TASKS` (default 20) long-running tasks at once; memory per task
//!   (PSS of the shim's processes and the containers') and the server's RSS.
//!
//! Hello tasks run `STRESS_MODULE` (`hello_tiny` by default, or `hello`), see
//! [`hello_module`].
//!
//! With `STRESS_RUNWASI` naming runwasi's `containerd-shim-wasmtime-v1` (built by hand),
//! the ttrpc runs, `density` and `phases` measure it too, with the same module.

mod support;

use std::time::Duration;

use support::stress::bundle::{Workload, hello_module};
use support::stress::leaks::{self, pss_kib};
use support::stress::shim::{CALL_BOUND, Runtime, ShimServer};
use support::stress::{Load, Outcome, loads_from_env, through_containerd};

/// The engine under test (`STRESS_ENGINE`, default wasmtime: runwasi's most used).
fn engine() -> &'static str {
    match std::env::var("STRESS_ENGINE").as_deref() {
        Ok("wamr") => "wamr",
        Ok("wasmer") => "wasmer",
        Ok("wasmedge") => "wasmedge",
        _ => "wasmtime",
    }
}

fn print(outcome: &Outcome) {
    println!("{}", outcome.report());
}

fn ratio(ours: &Outcome, reference: &Outcome) {
    ratio_to("runc's shim", ours, reference);
}

fn ratio_to(what: &str, ours: &Outcome, reference: &Outcome) {
    println!(
        "    ratio at {} in parallel: {:.2}× {what}\n",
        ours.parallel,
        ours.tasks_per_second() / reference.tasks_per_second().max(1e-9)
    );
}

fn machine() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("machine: {cores} cores, kernel {}; hello tasks run {}.wasm", kernel.trim(), hello_module());
}

#[test]
#[ignore = "figures: make stress"]
fn stress_through_one_shim_over_ttrpc() {
    machine();
    for load in loads_from_env(300, &[1, 2, 8, 20]) {
        let shim = ShimServer::start("stress-wasm", Runtime::Wasm { engine: engine() }, Workload::WasmHello);
        let ours = shim.run(&format!("wasm shim ({}), ttrpc", engine()), load, Workload::WasmHello);
        let _ = shim.shutdown();
        print(&ours);
        drop(shim);
        let runc = ShimServer::start("stress-runc", Runtime::Runc, Workload::NativeTrue);
        let reference = runc.run("runc shim (busybox true), ttrpc", load, Workload::NativeTrue);
        let _ = runc.shutdown();
        print(&reference);
        ratio(&ours, &reference);
        if let Some(runwasi) = Runtime::runwasi_from_env() {
            let shim = ShimServer::start("stress-runwasi", runwasi, Workload::WasmHello);
            let theirs = shim.run("runwasi's wasmtime shim, ttrpc", load, Workload::WasmHello);
            let _ = shim.shutdown();
            print(&theirs);
            ratio_to("runwasi's wasmtime shim", &ours, &theirs);
        }
    }
}

#[test]
#[ignore = "figures: make stress"]
fn stress_through_containerd() {
    machine();
    let node = through_containerd::Node::start("stress-ctd", engine());
    for (n, load) in loads_from_env(300, &[1, 2, 8, 20]).into_iter().enumerate() {
        let ours = node.run(&format!("w{n}"), through_containerd::Runtime::Wasm, load);
        println!("wasm shim ({}), containerd 1.6 + ctr: {}", engine(), ours.report());
        let reference = node.run(&format!("r{n}"), through_containerd::Runtime::Runc, load);
        println!("runc shim (busybox true), containerd 1.6 + ctr: {}", reference.report());
        ratio(&ours, &reference);
        if Runtime::runwasi_from_env().is_some() {
            let theirs = node.run(&format!("x{n}"), through_containerd::Runtime::Runwasi, load);
            println!("runwasi's wasmtime shim, containerd 1.6 + ctr: {}", theirs.report());
            ratio_to("runwasi's wasmtime shim", &ours, &theirs);
        }
    }
}

#[test]
#[ignore = "figures: make soak"]
fn soak_through_one_shim() {
    machine();
    let tasks = std::env::var("SOAK_TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(10_000);
    let parallel = std::env::var("SOAK_PARALLEL").ok().and_then(|t| t.parse().ok()).unwrap_or(20);
    let shim = ShimServer::start("soak", Runtime::Wasm { engine: engine() }, Workload::WasmHello);
    let outcome = shim.run(
        &format!("soak, wasm shim ({}), ttrpc", engine()),
        Load { tasks, parallel },
        Workload::WasmHello,
    );
    print(&outcome);
    println!("    shim server every 1000 tasks (tasks: fds, RSS KiB):");
    for sample in &outcome.server {
        println!("    {:>6}: {:>4} fds {:>8} KiB", sample.tasks_done, sample.fds, sample.rss_kib);
    }
    let _ = shim.shutdown();
}

/// Long-running tasks at once; PSS of every process of the shim (server and launchers)
/// and of every container process, per task.
#[test]
#[ignore = "figures: make stress"]
fn density() {
    machine();
    let tasks: usize = std::env::var("DENSITY_TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(20);
    for (runtime, workload, label) in [
        (
            Runtime::Wasm { engine: engine() },
            Workload::WasmLoop,
            format!("wasm shim ({}), loop.wasm", engine()),
        ),
        (Runtime::Runc, Workload::NativeSleep, "runc shim, busybox sleep".to_string()),
    ]
    .into_iter()
    .chain(
        Runtime::runwasi_from_env()
            .map(|r| (r, Workload::WasmLoop, "runwasi's wasmtime shim, loop.wasm".into())),
    ) {
        let shim = ShimServer::start("density", runtime, workload);
        let ids: Vec<String> = (0..tasks).map(|i| shim.task_id(i)).collect();
        for id in &ids {
            shim.create(id, workload).unwrap();
            shim.api.start(id, CALL_BOUND).unwrap();
        }
        // Let every container reach its steady state (the engine compiled, the loop running).
        std::thread::sleep(Duration::from_secs(3));
        let container_pids: Vec<i32> = leaks::cgroup_dirs(&shim.cgroup_parent)
            .iter()
            .find(|dir| dir.starts_with("/sys/fs/cgroup/pids") || dir.join("cgroup.controllers").exists())
            .map(|parent| {
                std::fs::read_dir(parent)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .flat_map(|e| {
                        let procs =
                            std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                        procs.lines().filter_map(|l| l.parse().ok()).collect::<Vec<i32>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The server and its launchers (container processes are the server's children
        // too, and inherit a launcher's command line).
        let shim_pids: Vec<i32> = std::iter::once(shim.pid)
            .chain(leaks::children(shim.pid).into_iter().filter(|p| !container_pids.contains(p)))
            .collect();
        let shim_pss: u64 = shim_pids.iter().map(|&p| pss_kib(p)).sum();
        let server_pss = pss_kib(shim.pid);
        let container_pss: u64 = container_pids.iter().map(|&p| pss_kib(p)).sum();
        let server_rss = leaks::status_kib(shim.pid, "VmRSS:").unwrap_or(0);
        println!(
            "{label}: {tasks} running tasks: per task {:.2} MiB PSS (shim processes {:.1} MiB in all: server {:.1}, {} others; containers {:.2} MiB each, {} container processes); shim server RSS {:.1} MiB",
            (shim_pss + container_pss) as f64 / 1024.0 / tasks as f64,
            shim_pss as f64 / 1024.0,
            server_pss as f64 / 1024.0,
            shim_pids.len() - 1,
            container_pss as f64 / 1024.0 / tasks as f64,
            container_pids.len(),
            server_rss as f64 / 1024.0,
        );
        for id in &ids {
            let _ = shim.api.kill(id, 9, CALL_BOUND);
            let _ = shim.api.wait(id, CALL_BOUND);
            let _ = shim.delete(id);
        }
        let _ = shim.shutdown();
    }
}

/// Where a task's time goes, one task at a time: mean Create, Start, Wait (start to exit
/// seen) and Delete.
#[test]
#[ignore = "figures: make stress"]
fn phases() {
    machine();
    let tasks: usize = std::env::var("STRESS_TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(100);
    for (runtime, workload, label) in [
        (
            Runtime::Wasm { engine: engine() },
            Workload::WasmHello,
            format!("wasm shim ({}), {}.wasm", engine(), hello_module()),
        ),
        (Runtime::Runc, Workload::NativeTrue, "runc shim, busybox true".to_string()),
    ]
    .into_iter()
    .chain(
        Runtime::runwasi_from_env()
            .map(|r| (r, Workload::WasmHello, format!("runwasi's wasmtime shim, {}.wasm", hello_module()))),
    ) {
        let shim = ShimServer::start("phases", runtime, workload);
        let mut sums = [Duration::ZERO; 4];
        for i in 0..tasks {
            let id = shim.task_id(i);
            let t0 = std::time::Instant::now();
            shim.create(&id, workload).unwrap();
            let t1 = std::time::Instant::now();
            shim.api.start(&id, CALL_BOUND).unwrap();
            let t2 = std::time::Instant::now();
            shim.api.wait(&id, CALL_BOUND).unwrap();
            let t3 = std::time::Instant::now();
            shim.delete(&id).unwrap();
            let t4 = std::time::Instant::now();
            for (sum, (a, b)) in sums.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)]) {
                *sum += b - a;
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / tasks as f64;
        println!(
            "{label}: {tasks} tasks one at a time: create {:.1} ms, start {:.1} ms, run to exit {:.1} ms, delete {:.1} ms",
            ms(sums[0]),
            ms(sums[1]),
            ms(sums[2]),
            ms(sums[3])
        );
        let _ = shim.shutdown();
    }
}
