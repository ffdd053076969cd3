//! `oci-image-builder`: an OCI image tarball from local files, with no registry and no
//! docker. The result is an OCI image layout in a tar file that `ctr images import`
//! reads; the image has one uncompressed layer holding the given files, and with
//! `--wasm-layer`, layers that are wasm binaries themselves (runwasi's image format).
//!
//! ```text
//! oci-image-builder --name docker.io/library/hello-wasm:latest \
//!     --file target/corpus/hello.wasm:/hello.wasm --entrypoint /hello.wasm -o hello.tar
//! ctr images import hello.tar
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(Debug, Parser)]
#[command(about = "Build an OCI image tarball from local files, importable with `ctr images import`")]
struct Args {
    /// Image reference, e.g. docker.io/library/hello-wasm:latest
    #[arg(long)]
    name: String,
    /// HOST_PATH:IMAGE_PATH — a file to put in the image (mode kept); a `.wat` file put
    /// at a `.wasm` path is assembled into a binary module
    #[arg(long = "file", value_name = "HOST:IMAGE")]
    files: Vec<String>,
    /// TARGET:IMAGE_PATH — a symbolic link in the image
    #[arg(long = "symlink", value_name = "TARGET:IMAGE")]
    symlinks: Vec<String>,
    /// The image's entrypoint (repeat for arguments)
    #[arg(long = "entrypoint", value_name = "ARG", required = true, allow_hyphen_values = true)]
    entrypoint: Vec<String>,
    /// HOST_PATH — a wasm layer (runwasi's image format: the layer is the module or
    /// component itself, `.wat` assembled, other bytes as they are; the image's platform
    /// becomes wasip1/wasm)
    #[arg(long = "wasm-layer", value_name = "HOST")]
    wasm_layers: Vec<PathBuf>,
    /// OS/ARCH of the image instead (`linux/amd64`): wasm layers under the node's own
    /// platform, which is all containerd 2.1's CRI pulls
    #[arg(long = "platform", value_name = "OS/ARCH")]
    platform: Option<String>,
    /// Environment variable KEY=VALUE for the image config
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Where to write the tarball
    #[arg(short, long)]
    output: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    // The config's diff_ids list the filesystem layers only: containerd 2.x unpacks those
    // and leaves wasm layers to the runtime (runwasi's images are made so).
    let mut diff_ids = Vec::new();
    if args.wasm_layers.is_empty() || !args.files.is_empty() || !args.symlinks.is_empty() {
        let layer = layer(&args)?;
        descriptors.push(descriptor("application/vnd.oci.image.layer.v1.tar", &layer));
        diff_ids.push(sha256(&layer));
        blobs.push(layer);
    }
    for path in &args.wasm_layers {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        // Text is assembled (an error in it is an error here); bytes that are not text go
        // in as they are (binaries, and the bad layers of the tests: an artifact, say).
        let binary = match wat::parse_bytes(&bytes) {
            Ok(binary) => binary.into_owned(),
            Err(e) if std::str::from_utf8(&bytes).is_ok() => {
                bail!("{}: {e}", path.display())
            }
            Err(_) => bytes,
        };
        // A component's preamble has layer 1 (bytes 6..8) where a core module has 0.
        let media_type = if binary.get(6..8) == Some(&[1, 0]) {
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"
        } else {
            "application/wasm"
        };
        let mut wasm = descriptor(media_type, &binary);
        let title = path.with_extension("wasm");
        let title = title.file_name().and_then(|n| n.to_str()).unwrap_or("module.wasm");
        wasm["annotations"] = json!({ "org.opencontainers.image.title": title });
        descriptors.push(wasm);
        blobs.push(binary);
    }
    let (os, arch) = match &args.platform {
        Some(platform) => platform.split_once('/').context("--platform is OS/ARCH")?,
        None if args.wasm_layers.is_empty() => ("linux", go_arch()),
        None => ("wasip1", "wasm"),
    };
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": os,
        "config": {
            "Entrypoint": args.entrypoint,
            "Env": env(&args.env),
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [{ "created_by": "oci-image-builder" }],
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": descriptors,
    }))?;
    let mut manifest_descriptor = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    manifest_descriptor["annotations"] = json!({
        "io.containerd.image.name": args.name,
        "org.opencontainers.image.ref.name": args.name.rsplit_once(':').map_or("latest", |(_, tag)| tag),
    });
    manifest_descriptor["platform"] = json!({ "architecture": arch, "os": os });
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [manifest_descriptor] }))?;

    let out =
        std::fs::File::create(&args.output).with_context(|| format!("create {}", args.output.display()))?;
    let mut tar = tar::Builder::new(out);
    add(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add(&mut tar, "index.json", &index)?;
    for blob in [&config, &manifest].into_iter().chain(&blobs) {
        add(&mut tar, &format!("blobs/sha256/{}", hex(blob)), blob)?;
    }
    tar.finish()?;
    Ok(())
}

/// One layer with the files and links, in a stable order.
fn layer(args: &Args) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for spec in &args.files {
        let (host, image) = split(spec, "--file")?;
        let path = image.trim_start_matches('/');
        if host.ends_with(".wat") && image.ends_with(".wasm") {
            let binary = wat::parse_file(host).with_context(|| format!("assemble {host}"))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(binary.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, binary.as_slice()).with_context(|| format!("add {host}"))?;
            continue;
        }
        let mut file = std::fs::File::open(host).with_context(|| format!("open {host}"))?;
        tar.append_file(path, &mut file).with_context(|| format!("add {host}"))?;
    }
    for spec in &args.symlinks {
        let (target, image) = split(spec, "--symlink")?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        tar.append_link(&mut header, image.trim_start_matches('/'), target)?;
    }
    Ok(tar.into_inner()?)
}

fn split<'a>(spec: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    match spec.rsplit_once(':') {
        Some((a, b)) if !a.is_empty() && b.starts_with('/') => Ok((a, b)),
        _ => bail!("{flag} {spec:?}: expected SOURCE:/ABSOLUTE/IMAGE/PATH"),
    }
}

fn env(extra: &[String]) -> Vec<String> {
    let mut env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    env.extend(extra.iter().cloned());
    env
}

fn add(tar: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, path, data)?;
    Ok(())
}

fn descriptor(media_type: &str, blob: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": sha256(blob), "size": blob.len() })
}

fn sha256(blob: &[u8]) -> String {
    format!("sha256:{}", hex(blob))
}

fn hex(blob: &[u8]) -> String {
    Sha256::digest(blob).iter().map(|b| format!("{b:02x}")).collect()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
