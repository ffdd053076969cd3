//! Serving wasi:http components (ABI 1.2 `serve`, the wasmtime plugin): through `run` and
//! as a container through a private containerd, each in a network namespace the test
//! makes, so that traffic never leaves it. GET and POST with a streamed body, requests
//! at once, a trap answered 500 while the server goes on, SIGTERM with a request in
//! flight (it finishes, then the server exits 0), and engines that cannot serve refused
//! with one line.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::containerd::{Containerd, ImageSpec, build_image};
use support::netns_http::{NetNs, request, wait_for_listener};
use support::wasi_components::http_handler;
use support::{Node, c_plugin, path_str, wasmtime_plugin};

const ADDR: &str = "127.0.0.1:8080";

/// What every server must do, asked from inside `netns`; ends with a `/slow` request in
/// flight while `stop` runs, which must still be answered (a graceful stop), or must be
/// cut (`answered` false: the server was ended at once).
fn serves_requests(netns: &NetNs, answered: bool, stop: impl FnOnce() + Send) {
    netns.within(|| {
        wait_for_listener(ADDR);
        let hello = request(ADDR, "GET", "/", b"").unwrap();
        assert_eq!((hello.status, hello.body.as_slice()), (200, &b"hello from wasi:http\n"[..]));

        // A body of several chunks, streamed back.
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let echoed = request(ADDR, "POST", "/", &body).unwrap();
        assert_eq!(echoed.status, 200);
        assert!(echoed.body == body, "echoed {} bytes of {}", echoed.body.len(), body.len());

        // Requests at once, each on its own instance; one answered while a slow one waits.
        std::thread::scope(|scope| {
            let slow = scope.spawn(|| request(ADDR, "GET", "/slow", b""));
            std::thread::sleep(Duration::from_millis(300));
            let at_once: Vec<_> = (0..8).map(|_| scope.spawn(|| request(ADDR, "GET", "/", b""))).collect();
            for answer in at_once {
                assert_eq!(answer.join().unwrap().unwrap().status, 200);
            }
            assert!(!slow.is_finished(), "requests were answered one after another");
            assert_eq!(slow.join().unwrap().unwrap().status, 200);
        });

        // A trap answers its own request and nothing else.
        assert_eq!(request(ADDR, "GET", "/trap", b"").unwrap().status, 500);
        assert_eq!(request(ADDR, "GET", "/", b"").unwrap().status, 200);

        // Stopped with a request in flight: that request still gets its answer.
        std::thread::scope(|scope| {
            let slow = scope.spawn(|| request(ADDR, "GET", "/slow", b""));
            // Well inside the handler's second: accepted, not answered.
            std::thread::sleep(Duration::from_millis(500));
            stop();
            match (answered, slow.join().unwrap()) {
                (true, Ok(slow)) => {
                    assert_eq!((slow.status, slow.body.as_slice()), (200, &b"hello from wasi:http\n"[..]))
                }
                (true, Err(e)) => panic!("the request in flight was cut: {e}"),
                (false, answer) => assert!(answer.is_err(), "answered after a second signal: {answer:?}"),
            }
        });
    });
}

/// The engine process `run` (pid `run`) started.
fn engine_process_of(run: i32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{run}/task/{run}/children")).unwrap();
    children.split_whitespace().next().expect("run has no engine process").parse().unwrap()
}

fn wait_with_bound(child: &mut Child, what: &str) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("{what} did not end within 10 s of SIGTERM");
}

#[test]
fn run_serves_a_wasi_http_component_until_sigterm_or_ctrl_c() {
    let node = Node::new("http-run");
    node.install("wasmtime", &wasmtime_plugin());
    let netns = NetNs::new("run");
    // SIGTERM to `run` itself, which forwards it; SIGINT to its whole process group, as
    // Ctrl-C sends it: the engine process gets it twice (directly and forwarded) and must
    // still stop gracefully; the two copies one after the other, in both orders; and a
    // second SIGTERM, which ends the server at once (143).
    let ways = [
        ("SIGTERM to run", 0),
        ("Ctrl-C", 0),
        ("forwarded copy first", 0),
        ("direct copy first", 0),
        ("a second SIGTERM", 143),
    ];
    for (how, code) in ways {
        let mut server = Command::new("ip")
            .args(["netns", "exec", &netns.name])
            .arg(support::shim_bin())
            .args(["run", "--engine", "wasmtime", "--env"])
            .arg(format!("WASMTIME_HTTP_PROXY_SOCKET_ADDR={ADDR}"))
            .arg(http_handler())
            .env("CONTAINERD_SHIM_WASM_CONFIG", node.config())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `ip netns exec` executes the shim in its own place: this is the shim's pid, and
        // the process group's id.
        let pid = server.id() as i32;
        serves_requests(&netns, code == 0, || {
            let engine = engine_process_of(pid);
            // SAFETY (all): kill(2) on the child this test spawned, its process group, or
            // its engine process.
            let (first, second, signal) = match how {
                "SIGTERM to run" => (pid, None, libc::SIGTERM),
                "Ctrl-C" => (-pid, None, libc::SIGINT),
                "forwarded copy first" => (pid, Some(engine), libc::SIGINT),
                "direct copy first" => (engine, Some(pid), libc::SIGINT),
                _ => (pid, Some(pid), libc::SIGTERM),
            };
            unsafe { libc::kill(first, signal) };
            if let Some(second) = second {
                std::thread::sleep(Duration::from_millis(100));
                unsafe { libc::kill(second, signal) };
            }
        });
        let status = wait_with_bound(&mut server, "run");
        let output = server.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(status.code(), Some(code), "{how}: exit status; stderr:\n{stderr}");
        assert!(stderr.contains(&format!("serving wasi:http on http://{ADDR}/")), "{stderr}");
        let traps: Vec<&str> = stderr.lines().filter(|l| l.contains("trapped")).collect();
        assert_eq!(traps.len(), 1, "one line per trapped request:\n{stderr}");
    }
}

#[test]
fn containerd_serves_a_wasi_http_component_in_the_pods_network() {
    let ctd = Containerd::start("http-ctd", "default_engine = \"wasmtime\"\n");
    let netns = NetNs::new("ctd");
    let image = "docker.io/library/http-handler:test";
    let spec = ImageSpec {
        name: image,
        files: vec![(http_handler(), "/handler.wasm")],
        symlinks: vec![],
        entrypoint: vec!["/handler.wasm"],
    };
    ctd.import(&build_image(&spec, ctd.node.root()));
    let with_ns = format!("network:{}", path_str(&netns.path()));
    // The default address (0.0.0.0:8080), as runwasi's images expect.
    ctd.ctr(&["run", "-d", "--runtime", "io.containerd.wasm.v1", "--with-ns", &with_ns, image, "web"])
        .assert_ok();
    ctd.wait_for_status("web", "RUNNING");
    serves_requests(&netns, true, || ctd.ctr(&["task", "kill", "-s", "SIGTERM", "web"]).assert_ok());
    ctd.wait_for_status("web", "STOPPED");
    // ctr names the exit code only when it is not 0 (143 for a SIGTERM that ends it).
    let removed = ctd.remove("web");
    assert!(!removed.contains("exit code"), "a stopped server ends with 0: {removed}");
    ctd.assert_nothing_left("web");

    // A wrong address fails the create with one line, and leaves nothing.
    let ran = ctd.run(
        &["--with-ns", &with_ns, "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=port-80"],
        image,
        "bad-addr",
        &[],
    );
    assert_ne!(ran.code, Some(0));
    assert!(
        ran.stderr.contains("WASMTIME_HTTP_PROXY_SOCKET_ADDR=port-80 is not an IP:PORT"),
        "{}",
        ran.stderr
    );
    ctd.assert_nothing_left("bad-addr");
}

#[test]
fn engines_that_cannot_serve_are_refused_with_one_line() {
    let node = Node::new("http-refused");
    // A 1.0 plugin: its table has no `serve`, and its bit 5 is not 1.2's http-serve.
    node.install("echo_1_0", &c_plugin("echo_1_0"));
    let listed = node.run(&["engines"]);
    let line = listed.stdout.lines().find(|l| l.starts_with("echo_1_0")).expect(&listed.stdout);
    assert!(!line.contains("http-serve"), "{line}");
    let component = http_handler();
    let ran = node.run(&["run", "--engine", "echo_1_0", path_str(&component)]);
    ran.assert_error(126, &["the echo_1_0 engine cannot serve wasi:http components", "http-serve"]);
    // A wrong address, and one taken by another server: one line each.
    node.install("wasmtime", &wasmtime_plugin());
    let serve_on = |addr: &str| {
        let env = format!("WASMTIME_HTTP_PROXY_SOCKET_ADDR={addr}");
        node.run(&["run", "--engine", "wasmtime", "--env", &env, path_str(&component)])
    };
    serve_on("localhost").assert_error(126, &["WASMTIME_HTTP_PROXY_SOCKET_ADDR=localhost is not an IP:PORT"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    serve_on(&addr).assert_error(125, &[&format!("cannot listen on {addr}"), "in use"]);

    // The other engines run no components at all, and say so first.
    for (engine, plugin) in support::engines().into_iter().filter(|(name, _)| *name != "wasmtime") {
        node.install(engine, &plugin);
        let ran = node.run(&["run", "--engine", engine, path_str(&component)]);
        ran.assert_error(126, &[&format!("the {engine} engine does not support components")]);
    }
}

/// `make bench`: requests per second and latency of the hello handler, served through
/// `run` on the wasmtime plugin, against busybox's httpd serving the same bytes (a
/// native server, a process per connection) and, when `HTTP_BENCH_WASMTIME` names a
/// wasmtime CLI binary, `wasmtime serve` with the same component; all in a test network
/// namespace, a new connection per request (busybox's httpd keeps none alive).
/// `HTTP_BENCH_SECONDS` (10) per server, `HTTP_BENCH_CONNECTIONS` (8) at once.
#[test]
#[ignore]
fn bench_requests_per_second() {
    let seconds: u64 = std::env::var("HTTP_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: usize =
        std::env::var("HTTP_BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let node = Node::new("http-bench");
    node.install("wasmtime", &wasmtime_plugin());
    let netns = NetNs::new("bench");
    let docroot = node.root().join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    std::fs::write(docroot.join("index.html"), "hello from wasi:http\n").unwrap();
    let in_netns = |program: &std::path::Path| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &netns.name]).arg(program).stdin(Stdio::null()).stdout(Stdio::null());
        cmd.env("CONTAINERD_SHIM_WASM_CONFIG", node.config());
        cmd
    };
    let mut servers: Vec<(String, &str, Command)> = Vec::new();
    let mut ours = in_netns(&support::shim_bin());
    ours.args(["run", "--engine", "wasmtime", "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080"])
        .arg(http_handler());
    servers.push(("this shim (run, wasmtime plugin)".into(), "127.0.0.1:8080", ours));
    let mut httpd = in_netns(std::path::Path::new("busybox"));
    httpd.args(["httpd", "-f", "-p", "127.0.0.1:8081", "-h"]).arg(&docroot);
    servers.push(("busybox httpd (native)".into(), "127.0.0.1:8081", httpd));
    match std::env::var_os("HTTP_BENCH_WASMTIME") {
        Some(wasmtime) => {
            let mut serve = in_netns(std::path::Path::new(&wasmtime));
            serve.args(["serve", "--addr", "127.0.0.1:8082"]).arg(http_handler());
            servers.push(("wasmtime serve (CLI)".into(), "127.0.0.1:8082", serve));
        }
        None => {
            support::skipped("wasmtime serve reference: set HTTP_BENCH_WASMTIME to a wasmtime CLI binary")
        }
    }
    println!("| server | requests/s | p50 | p99 | errors |\n| --- | --- | --- | --- | --- |");
    for (name, addr, mut command) in servers {
        let mut child = command.spawn().unwrap();
        let (count, errors, mut latencies, elapsed) = netns.within(|| {
            wait_for_listener(addr);
            for _ in 0..200 {
                let _ = request(addr, "GET", "/", b"");
            }
            let until = std::time::Instant::now() + Duration::from_secs(seconds);
            let start = std::time::Instant::now();
            let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..connections)
                    .map(|_| {
                        scope.spawn(move || {
                            let (mut latencies, mut errors) = (Vec::new(), 0);
                            while std::time::Instant::now() < until {
                                let sent = std::time::Instant::now();
                                match request(addr, "GET", "/", b"") {
                                    Ok(r) if r.status == 200 => latencies.push(sent.elapsed()),
                                    _ => errors += 1,
                                }
                            }
                            (latencies, errors)
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            let elapsed = start.elapsed();
            let errors = results.iter().map(|r| r.1).sum::<usize>();
            let latencies: Vec<Duration> = results.into_iter().flat_map(|r| r.0).collect();
            (latencies.len(), errors, latencies, elapsed)
        });
        // SAFETY: kill(2) on the server this bench started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_with_bound(&mut child, &name);
        latencies.sort();
        let at = |q: f64| {
            latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
        };
        let ms = |d: Option<&Duration>| d.map_or("-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3));
        println!(
            "| {name} | {:.0} | {} | {} | {errors} |",
            count as f64 / elapsed.as_secs_f64(),
            ms(at(0.50)),
            ms(at(0.99))
        );
    }
}
