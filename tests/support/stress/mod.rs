//! The stress harness: many tasks, several at once, through one shim — over its ttrpc
//! task API the way containerd and a pod drive it ([`shim`]), or through a real
//! containerd with `ctr` ([`through_containerd`]) — and the same load on containerd's
//! `containerd-shim-runc-v2` with busybox `true`, measured in the same run so that the
//! figure is a ratio that holds on a noisy machine.
//!
//! A run reports tasks/s, create→exit latency (p50, p99), every failure with its error
//! line, and what was left behind ([`leaks`]). The CI tests (`tests/concurrency.rs`)
//! assert zero failures and nothing left; `make stress` and `make soak`
//! (`tests/stress.rs`) print the figures.

pub mod bundle;
pub mod events;
pub mod leaks;
pub mod shim;
pub mod task_api;
pub mod through_containerd;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leaks::{Leftovers, ServerSample};

/// How many tasks, and how many at once.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub tasks: usize,
    pub parallel: usize,
}

/// The result of one run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub label: String,
    pub tasks: usize,
    pub parallel: usize,
    pub elapsed: Duration,
    /// Create → exit seen by Wait, per successful task.
    pub latencies: Vec<Duration>,
    /// (task id, error line) per failed task.
    pub failures: Vec<(String, String)>,
    pub left: Leftovers,
    /// The shim server after the warm-up and at the end (and in between for a soak).
    pub server: Vec<ServerSample>,
}

impl Outcome {
    pub fn ok(&self) -> usize {
        self.latencies.len()
    }

    pub fn tasks_per_second(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1) of create→exit latency.
    pub fn latency(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    /// One paragraph: figures, failures, leftovers, the server's descriptors and memory.
    pub fn report(&self) -> String {
        let mut text = format!(
            "{}: {} tasks, {} in parallel: {} ok, {} failed, {:.1} tasks/s, create→exit p50 {:.1} ms p99 {:.1} ms; left behind: {}",
            self.label,
            self.tasks,
            self.parallel,
            self.ok(),
            self.failures.len(),
            self.tasks_per_second(),
            self.latency(0.5).as_secs_f64() * 1e3,
            self.latency(0.99).as_secs_f64() * 1e3,
            self.left.summary(),
        );
        if let (Some(first), Some(last)) = (self.server.first(), self.server.last()) {
            text += &format!(
                "; shim server fds {} → {}, RSS {:.1} → {:.1} MiB",
                first.fds,
                last.fds,
                first.rss_kib as f64 / 1024.0,
                last.rss_kib as f64 / 1024.0
            );
        }
        let mut errors: Vec<&str> = self.failures.iter().map(|(_, e)| e.as_str()).collect();
        errors.sort();
        errors.dedup();
        for error in errors.iter().take(8) {
            let count = self.failures.iter().filter(|(_, e)| e == error).count();
            text += &format!("\n    {count} × {error}");
        }
        text
    }

    /// Fails the test unless every task succeeded and nothing was left behind.
    pub fn assert_clean(&self) {
        assert!(self.failures.is_empty() && self.left.is_empty(), "{}", self.report());
    }
}

/// Runs `task(i)` for i in 0..load.tasks, `load.parallel` at a time; `after(done)` is
/// called after each task (samples, progress). Returns latencies, failures (by index)
/// and the wall time.
pub fn run_parallel(
    load: Load,
    task: impl Fn(usize) -> Result<Duration, String> + Sync,
    after: impl Fn(usize) + Sync,
) -> (Vec<Duration>, Vec<(usize, String)>, Duration) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(load.tasks));
    let failures = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..load.parallel {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= load.tasks {
                        return;
                    }
                    match task(i) {
                        Ok(latency) => latencies.lock().unwrap().push(latency),
                        Err(e) => failures.lock().unwrap().push((i, e)),
                    }
                    after(done.fetch_add(1, Ordering::SeqCst) + 1);
                }
            });
        }
    });
    (latencies.into_inner().unwrap(), failures.into_inner().unwrap(), start.elapsed())
}

/// Runs `load` (see [`run_parallel`]) and samples the shim server (`server()` finds it)
/// after the warm-up (a tenth of the tasks), every 1000 tasks and at the end; task `i`'s
/// id is `id(i)`, and `left(server)` reads what was left behind.
pub fn measure(
    label: &str,
    load: Load,
    task: impl Fn(usize) -> Result<Duration, String> + Sync,
    id: impl Fn(usize) -> String,
    server: impl Fn() -> Option<i32> + Sync,
    left: impl FnOnce(Option<i32>) -> Leftovers,
) -> Outcome {
    let samples = Mutex::new(Vec::new());
    let sample = |done: usize| {
        if let Some(pid) = server() {
            samples.lock().unwrap().push(leaks::sample(pid, done));
        }
    };
    let warm_up = (load.tasks / 10).max(1);
    let (latencies, failures, elapsed) = run_parallel(load, task, |done| {
        if done == warm_up || (done % 1000 == 0 && done < load.tasks) {
            sample(done);
        }
    });
    sample(load.tasks);
    let mut samples = samples.into_inner().unwrap();
    samples.sort_by_key(|s| s.tasks_done);
    Outcome {
        label: label.to_string(),
        tasks: load.tasks,
        parallel: load.parallel,
        elapsed,
        latencies,
        failures: failures.into_iter().map(|(i, e)| (id(i), e)).collect(),
        left: left(server()),
        server: samples,
    }
}

/// Removes what a killed shim server leaves: its socket, its group's lock and pending
/// starts, and this namespace's (empty) state directories.
pub fn remove_server_files(address: &str, namespace: &str) {
    let socket = std::path::Path::new(address.trim_start_matches("unix://"));
    let _ = std::fs::remove_file(socket);
    if let Some(name) = socket.file_name() {
        let groups = std::path::Path::new("/run/containerd-shim-wasm/groups");
        let _ = std::fs::remove_dir_all(groups.join(format!("{}.pending", name.to_string_lossy())));
        let _ = std::fs::remove_file(groups.join(format!("{}.lock", name.to_string_lossy())));
    }
    for instance in std::fs::read_dir("/run/containerd-shim-wasm").into_iter().flatten().flatten() {
        let _ = std::fs::remove_dir(instance.path().join(namespace));
        // Only if empty: another test's containerd may be using it.
        let _ = std::fs::remove_dir(instance.path());
    }
}

/// The load from the environment (`STRESS_TASKS`, `STRESS_PARALLEL` as a comma list),
/// or the defaults.
pub fn loads_from_env(tasks: usize, parallel: &[usize]) -> Vec<Load> {
    let tasks = std::env::var("STRESS_TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(tasks);
    let parallel: Vec<usize> = std::env::var("STRESS_PARALLEL")
        .ok()
        .map(|p| p.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| parallel.to_vec());
    parallel.into_iter().map(|parallel| Load { tasks, parallel }).collect()
}
