//! The packaging metadata and shipped files agree with the code: the ABI major in the
//! package relations is the ABI's, every engine plugin has a package, the default config
//! and the runtime-options files parse with the shim's own parsers, and the containerd
//! snippets point at files the package ships. (The packages themselves are built and
//! installed by `make test-packages`.)

use std::fs;
use std::path::{Path, PathBuf};

use shimcfg::{RuntimeOptions, ShimConfig};

/// Engines the core package has `containerd-shim-<engine>-v1` links and options files for.
const ENGINES: [&str; 4] = ["wasmtime", "wasmer", "wamr", "wasmedge"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn deb_metadata(manifest: &Path) -> toml::Table {
    let text = fs::read_to_string(manifest).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["package"]["metadata"]["deb"].as_table().cloned().unwrap_or_else(|| panic!("{}", manifest.display()))
}

fn abi_package() -> String {
    format!("containerd-shim-wasm-abi-{}", shim_wasm_abi::ABI_VERSION.major)
}

#[test]
fn the_core_package_provides_the_abi_major_and_every_engine_link() {
    let deb = deb_metadata(&repo().join("host/Cargo.toml"));
    assert_eq!(deb["name"].as_str(), Some("containerd-shim-wasm"));
    let version = shim_wasm_abi::ABI_VERSION;
    let provides = format!("{} (= {}.{})", abi_package(), version.major, version.minor);
    assert_eq!(deb["provides"].as_str(), Some(provides.as_str()));
    let manifest: toml::Table =
        toml::from_str(&fs::read_to_string(repo().join("host/Cargo.toml")).unwrap()).unwrap();
    let rpm = &manifest["package"]["metadata"]["generate-rpm"]["provides"][&abi_package()];
    assert_eq!(rpm.as_str(), Some(format!("= {}.{}", version.major, version.minor).as_str()));
    let assets = deb["assets"].as_array().unwrap();
    for engine in ENGINES {
        let link = format!("usr/bin/containerd-shim-{engine}-v1");
        assert!(
            assets.iter().any(|a| a.get("dest").and_then(|d| d.as_str()) == Some(&link)
                && a.get("link_name").and_then(|l| l.as_str()) == Some("containerd-shim-wasm-v1")),
            "no {link} link in the core package"
        );
    }
}

#[test]
fn every_engine_plugin_has_a_package_that_needs_the_abi_major() {
    let mut plugins = 0;
    for dir in fs::read_dir(repo().join("plugins")).unwrap() {
        let dir = dir.unwrap().path();
        let engine = dir.file_name().unwrap().to_str().unwrap().to_string();
        let deb = deb_metadata(&dir.join("Cargo.toml"));
        assert_eq!(deb["name"].as_str(), Some(format!("containerd-shim-wasm-engine-{engine}").as_str()));
        let depends = deb["depends"].as_str().unwrap();
        assert!(depends.split(',').any(|d| d.trim() == abi_package()), "{engine}: depends = {depends}");
        let asset = deb["assets"][0].as_array().unwrap();
        assert_eq!(asset[0].as_str(), Some(format!("target/release/libengine_{engine}.so").as_str()));
        assert_eq!(
            asset[1].as_str(),
            Some(format!("usr/lib/containerd-shim-wasm/engines/{engine}.so").as_str())
        );
        assert!(ENGINES.contains(&engine.as_str()), "{engine} has no link in the core package");
        plugins += 1;
    }
    assert!(plugins >= 3, "plugins found: {plugins}");
}

#[test]
fn the_default_config_file_is_valid_and_means_the_defaults() {
    let path = repo().join("packaging/config.toml");
    let config = ShimConfig::parse(&fs::read_to_string(&path).unwrap(), &path).unwrap();
    let defaults = ShimConfig::default();
    assert_eq!(config.engine_dirs, defaults.engine_dirs);
    assert_eq!(config.default_engine, None);
    assert!(config.engines.is_empty());
    // The commented-out keys are themselves valid when uncommented.
    let uncommented: String = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let config = ShimConfig::parse(&uncommented, &path).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(config.default_engine.as_ref().map(|e| e.as_str()), Some("wasmtime"));
}

#[test]
fn runtime_option_files_select_their_engine() {
    for engine in ENGINES {
        let path = repo().join(format!("packaging/runtimes/{engine}.toml"));
        let options = RuntimeOptions::from_sources(None, Some(&path)).unwrap();
        assert_eq!(options.engine.as_ref().map(|e| e.as_str()), Some(engine), "{}", path.display());
    }
}

#[test]
fn containerd_snippets_name_every_engine_and_shipped_files() {
    let dir = repo().join("packaging/examples/containerd");
    for (file, key) in [("wasm-runtimes.toml", "engine"), ("wasm-runtimes-containerd-1.6.toml", "ConfigPath")]
    {
        let doc: toml::Table = toml::from_str(&fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let runtimes = &doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"];
        for engine in ENGINES {
            let runtime = &runtimes[engine];
            assert_eq!(runtime["runtime_type"].as_str(), Some("io.containerd.wasm.v1"), "{file} {engine}");
            let value = runtime["options"][key].as_str().unwrap();
            match key {
                "engine" => assert_eq!(value, engine),
                _ => assert_eq!(value, format!("/usr/share/containerd-shim-wasm/runtimes/{engine}.toml")),
            }
        }
    }
    let classes =
        fs::read_to_string(repo().join("packaging/examples/kubernetes/runtimeclasses.yaml")).unwrap();
    for engine in ENGINES {
        assert!(classes.contains(&format!("name: {engine}\nhandler: {engine}\n")), "RuntimeClass {engine}");
    }
}
