//! `make bench`: start times through a private containerd 1.6 (`ctr run --rm`, create to
//! exit, as an operator sees it) with the precompile cache — cold (the first start
//! compiles and stores), warm (the artifact from the content store), and with the cache
//! off (compiled on every start, as before the cache) — for modules of several sizes, and
//! containerd's runc shim with busybox `true` in the same run as the reference. Figures
//! are printed, never asserted on; ignored in a plain `cargo test`.
//!
//! `BENCH_RUNS` (default 10) warm runs per figure; `BENCH_MODULE_KIB` (default
//! `100,1024,51200`) the sizes of the generated modules, besides the corpus's `hello`;
//! `BENCH_WASM` a program of your own to add (a `.wasm` file), run with the arguments in
//! `BENCH_WASM_ARGS` (split on spaces).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::containerd::{Containerd, ImageSpec, build_image};
use support::{corpus, generated_module};

const CONFIG: &str = "default_engine = \"wasmtime\"\n";

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn import(ctd: &Containerd, name: &str, host: PathBuf, entrypoint: Vec<&str>) {
    let spec = ImageSpec { name, files: vec![(host, entrypoint[0])], symlinks: vec![], entrypoint };
    ctd.import(&build_image(&spec, ctd.node.root()));
}

/// One `ctr run --rm`; its wall time.
fn start(ctd: &Containerd, runtime: &str, image: &str, id: &str) -> Duration {
    let began = Instant::now();
    let ran = ctd.ctr(&["run", "--rm", "--runtime", runtime, image, id]);
    let took = began.elapsed();
    assert_eq!(ran.code, Some(0), "{id}: {}", ran.stderr);
    took
}

/// Median of `runs` starts.
fn median(ctd: &Containerd, runtime: &str, image: &str, label: &str, runs: usize) -> Duration {
    let mut times: Vec<Duration> =
        (0..runs).map(|i| start(ctd, runtime, image, &format!("{label}-{i}"))).collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
#[ignore = "a benchmark: make bench"]
fn start_times_with_the_precompile_cache() {
    let runs = env_list("BENCH_RUNS", "10").first().copied().unwrap_or(10).max(1);
    let ctd = Containerd::start("bench-start", CONFIG);
    let work = ctd.node.root().to_path_buf();
    println!(
        "machine: {} cores, kernel {}; containerd 1.6 + ctr run --rm, median of {runs} warm starts",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()
    );
    import(&ctd, "docker.io/library/bench-busybox:1", PathBuf::from("/bin/busybox"), vec!["/bin/true"]);
    let runc = median(&ctd, "io.containerd.runc.v2", "docker.io/library/bench-busybox:1", "runc", runs);
    println!("{:<44} {:>9.1} ms", "runc shim, busybox true (reference)", ms(runc));

    let mut modules = vec![("hello".to_string(), corpus("hello"), Vec::new())];
    for kib in env_list("BENCH_MODULE_KIB", "100,1024,51200") {
        modules.push((format!("generated {kib} KiB"), generated_module(&work, kib), Vec::new()));
    }
    let own_args = std::env::var("BENCH_WASM_ARGS").unwrap_or_default();
    if let Some(own) = std::env::var_os("BENCH_WASM") {
        let own = PathBuf::from(own);
        let label = own.file_name().unwrap().to_string_lossy().into_owned();
        modules.push((label, own, own_args.split_whitespace().collect()));
    }
    println!(
        "{:<24} {:>10} {:>12} {:>12} {:>12} {:>10}",
        "module (wasmtime)", "size", "cold", "warm", "no cache", "cold/warm"
    );
    let mut phases = Vec::new();
    let mut warm_by_size = Vec::new();
    for (n, (label, path, args)) in modules.iter().enumerate() {
        let image = format!("docker.io/library/bench-module-{n}:1");
        import(&ctd, &image, path.clone(), [&["/app.wasm"][..], args].concat());
        let cold = start(&ctd, "io.containerd.wasm.v1", &image, &format!("cold-{n}"));
        let warm = median(&ctd, "io.containerd.wasm.v1", &image, &format!("warm-{n}"), runs);
        ctd.node.write_config(&format!("{CONFIG}precompile_cache = false\n"));
        let uncached = median(&ctd, "io.containerd.wasm.v1", &image, &format!("off-{n}"), runs.min(3));
        ctd.node.write_config(CONFIG);
        let size = std::fs::metadata(path).unwrap().len();
        warm_by_size.push((size, warm));
        phases.push((label.clone(), warm_phases(&ctd.log(), &format!("warm-{n}-{}", runs - 1))));
        println!(
            "{label:<24} {:>7} KiB {:>9.1} ms {:>9.1} ms {:>9.1} ms {:>9.1}×",
            size / 1024,
            ms(cold),
            ms(warm),
            ms(uncached),
            ms(cold) / ms(warm)
        );
    }
    // The largest module against the smallest of the generated ones (not `hello`).
    warm_by_size.sort();
    if let (Some((small, small_warm)), Some((large, large_warm))) =
        (warm_by_size.iter().find(|(size, _)| *size >= 64 << 10), warm_by_size.last())
        && large > small
    {
        println!(
            "warm start, {} KiB module / {} KiB module: {:.2}×",
            large / 1024,
            small / 1024,
            ms(*large_warm) / ms(*small_warm)
        );
    }
    println!("where the last warm start's time goes (shim log timestamps):");
    for (label, phases) in phases {
        println!("  {label:<22} {phases}");
    }
    let log = ctd.log();
    println!(
        "shim log: {} misses, {} hits, {} warnings about the cache",
        log.matches("precompile cache miss").count(),
        log.matches("precompile cache hit").count(),
        log.lines().filter(|l| l.contains("WARN") && l.contains("precompile cache")).count()
    );
}

/// Milliseconds between the shim's log lines for container `id`: entrypoint classified →
/// artifact read (cache key, lookup, read) → container created (libcontainer, the init
/// process ready) → exited (the engine loads the artifact and runs it).
fn warm_phases(log: &str, id: &str) -> String {
    let at = |message: &str| {
        log.lines()
            .filter(|l| {
                l.contains(message)
                    && (l.contains(&format!("id={id} ")) || l.contains(&format!("id=\"{id}\"")))
            })
            .find_map(seconds_of_day)
    };
    let marks = ["wasm container", "precompile cache hit", "container created", "container exited"].map(at);
    match marks {
        [Some(a), Some(b), Some(c), Some(d)] => format!(
            "artifact {:.1} ms, create {:.1} ms, load and run {:.1} ms",
            (b - a) * 1000.0,
            (c - b) * 1000.0,
            (d - c) * 1000.0
        ),
        _ => "(not in the log)".into(),
    }
}

/// The time of day of the first RFC 3339 timestamp in `line`, in seconds.
fn seconds_of_day(line: &str) -> Option<f64> {
    let t = line.find('T').filter(|&i| i >= 10 && line[..i].ends_with(|c: char| c.is_ascii_digit()))?;
    let time = line[t + 1..].split(['Z', ' ', '"']).next()?;
    let mut parts = time.split(':');
    let (h, m, s) = (
        parts.next()?.parse::<f64>().ok()?,
        parts.next()?.parse::<f64>().ok()?,
        parts.next()?.parse::<f64>().ok()?,
    );
    Some(h * 3600.0 + m * 60.0 + s)
}
