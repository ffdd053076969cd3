//! The official WASI test suite's preview-1 tests through a private containerd, for one
//! engine (wasmtime unless `WASI_TESTSUITE_ENGINE` names another): each test runs as a
//! container of an image holding the test's fixture directory as its root, and must end
//! as it ends through `run` (exit status, output) given what every container has: its
//! root preopened as `/` and containerd's default PATH. (Four tests pass through `run`
//! and not in a container for that reason alone: three count the environment variables,
//! one expects fd 3 to be no descriptor at all.) The suite is not part of this
//! repository and no registry ships it (docs/engines.md): with `WASI_TESTSUITE` unset,
//! a SKIPPED line says so. `make wasi-testsuite` counts the passes through `run`.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::containerd::{Containerd, ImageSpec, build_image};
use support::{Node, engines, path_str};

const LANGS: [&str; 3] = ["c", "rust", "assemblyscript"];

/// The environment variable every container of `ctr run` gets (containerd's default spec).
const CONTAINER_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One test: its module, its JSON spec, and what the spec gives.
struct Case {
    wasm: PathBuf,
    spec: serde_json::Value,
    args: Vec<String>,
    env: Vec<String>,
    root: Option<PathBuf>,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut wasm: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension() == Some("wasm".as_ref()))
        .collect();
    wasm.sort();
    wasm.into_iter()
        .map(|wasm| {
            let spec: serde_json::Value = fs::read_to_string(wasm.with_extension("json"))
                .map(|text| serde_json::from_str(&text).unwrap())
                .unwrap_or_default();
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from)).collect()
            };
            let env = spec["env"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            let root = spec["root"].as_str().map(|r| dir.join(r));
            Case { args: strings(&spec["args"]), env, root, wasm, spec }
        })
        .collect()
}

/// Every file and symlink under `dir`, as (host path, path in the image) and (target, path).
fn tree(dir: &Path, prefix: &str, files: &mut Vec<(PathBuf, String)>, links: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let inside = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            links.push((fs::read_link(&path).unwrap().to_string_lossy().into_owned(), inside));
        } else if kind.is_dir() {
            tree(&path, &inside, files, links);
        } else {
            files.push((path, inside));
        }
    }
}

/// How one run ended, as the suite's runner looks at it: the exit status, and whether
/// stdout and stderr begin with what the test's spec expects, where it expects anything.
fn outcome(ran: &support::Ran, spec: &serde_json::Value) -> (Option<i32>, Option<bool>, Option<bool>) {
    let begins = |stream: &str, got: &str| spec[stream].as_str().map(|want| got.starts_with(want));
    (ran.code, begins("stdout", &ran.stdout), begins("stderr", &ran.stderr))
}

#[test]
fn the_wasi_test_suite_through_containerd_as_through_run() {
    let Some(suite) = std::env::var_os("WASI_TESTSUITE").map(PathBuf::from) else {
        support::skipped(
            "the WASI test suite through containerd: set WASI_TESTSUITE to a checkout of \
             wasi-testsuite's prod/testsuite-base branch (docs/engines.md)",
        );
        return;
    };
    let engine = std::env::var("WASI_TESTSUITE_ENGINE").unwrap_or_else(|_| "wasmtime".into());
    let (_, plugin) =
        engines().into_iter().find(|(name, _)| *name == engine).expect("that engine's plugin is built");
    let node = Node::new(&format!("wasi-testsuite-run-{engine}"));
    node.install(&engine, &plugin);
    let ctd = Containerd::start("wasi-testsuite", &format!("default_engine = \"{engine}\"\n"));

    let (mut same, mut passed, mut total) = (0, 0, 0);
    let mut differ = Vec::new();
    for lang in LANGS {
        let dir = suite.join("tests").join(lang).join("testsuite/wasm32-wasip1");
        let cases = cases(&dir);
        // One image per language: the fixture directory as its root, the modules in /tests.
        let (mut files, mut links) = (Vec::new(), Vec::new());
        // The suite gives every test of a language the same fixture directory, or none.
        let fixture = cases.iter().find_map(|c| c.root.clone());
        assert!(
            cases.iter().all(|c| c.root.is_none() || c.root == fixture),
            "{lang}: more than one fixture directory"
        );
        if let Some(root) = &fixture {
            tree(root, "", &mut files, &mut links);
        }
        for case in &cases {
            files.push((
                case.wasm.clone(),
                format!("/tests/{}", case.wasm.file_name().unwrap().to_string_lossy()),
            ));
        }
        let name = format!("docker.io/library/wasi-testsuite-{lang}:1");
        let spec = ImageSpec {
            name: &name,
            files: files.iter().map(|(host, image)| (host.clone(), image.as_str())).collect(),
            symlinks: links.iter().map(|(target, image)| (target.as_str(), image.as_str())).collect(),
            entrypoint: vec!["/tests/none.wasm"],
        };
        ctd.import(&build_image(&spec, ctd.node.root()));

        for (i, case) in cases.iter().enumerate() {
            let test = case.wasm.file_stem().unwrap().to_string_lossy().into_owned();
            let want_code = case.spec["exit_code"].as_i64().unwrap_or(0) as i32;

            // Through `run`, given what the container has: the image's root preopened as `/`
            // (the fixture directory copied, with an empty `tests` where the image keeps the
            // modules) and containerd's default PATH.
            let scratch = node.root().join(format!("{lang}-{test}"));
            match &fixture {
                Some(root) => {
                    let copied =
                        std::process::Command::new("cp").arg("-a").arg(root).arg(&scratch).status().unwrap();
                    assert!(copied.success());
                }
                None => fs::create_dir(&scratch).unwrap(),
            }
            fs::create_dir(scratch.join("tests")).unwrap();
            let mut args = vec!["run".to_string(), "--engine".into(), engine.clone()];
            for var in std::iter::once(CONTAINER_PATH).chain(case.env.iter().map(String::as_str)) {
                args.extend(["--env".into(), var.to_string()]);
            }
            args.extend(["--dir".into(), format!("{}:/", scratch.display())]);
            args.push(path_str(&case.wasm).to_string());
            args.extend(case.args.iter().cloned());
            let through_run = node.run(&args.iter().map(String::as_str).collect::<Vec<_>>());

            // Through containerd: the image's root is the fixture directory.
            let wasm = format!("/tests/{test}.wasm");
            let mut extra = Vec::new();
            for var in &case.env {
                extra.extend(["--env", var.as_str()]);
            }
            let mut ctr_args = vec![wasm.as_str()];
            ctr_args.extend(case.args.iter().map(String::as_str));
            let through_ctd = ctd.run(&extra, &name, &format!("{lang}-{i}"), &ctr_args);

            total += 1;
            passed += usize::from(through_ctd.code == Some(want_code));
            if outcome(&through_run, &case.spec) == outcome(&through_ctd, &case.spec) {
                same += 1;
            } else {
                differ.push(format!(
                    "{lang}/{test}: run {:?} {:?}, containerd {:?} {:?} {}",
                    through_run.code,
                    through_run.stdout.lines().next().unwrap_or(""),
                    through_ctd.code,
                    through_ctd.stdout.lines().next().unwrap_or(""),
                    through_ctd.stderr.lines().next().unwrap_or("")
                ));
            }
        }
    }
    println!(
        "the WASI test suite through containerd, {engine}: {passed}/{total} exit as expected, {same}/{total} as through run"
    );
    assert!(
        differ.is_empty(),
        "{} tests end otherwise through containerd:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
