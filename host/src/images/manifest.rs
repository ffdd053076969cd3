//! Reading an image's manifest for its wasm layers: the layers whose media type says they
//! are a WebAssembly module or component (runwasi's `oci-tar-builder` images, the CNCF
//! wasm OCI artifact), not a tar of files.

use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, MediaType, Os};

/// A descriptor of a blob in the content store. (Here, not with the client, so that this
/// parser of what images hold stands alone: `make fuzz` includes it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

/// Layer media types whose blob is the wasm binary itself.
pub const WASM_LAYER_TYPES: [&str; 3] = [
    "application/wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// The annotation that names a layer's file (`oci-tar-builder`, ORAS).
const TITLE: &str = "org.opencontainers.image.title";

/// A wasm layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmLayer {
    pub blob: Blob,
    /// The file name the image gives the layer, if any.
    pub title: Option<String>,
}

/// Whether `media_type` is an index (a list of manifests per platform).
pub fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// The manifest of `index` for this node: a wasm platform (`wasip1/wasm`, `wasi/wasm`)
/// first, then this machine's Linux platform, then the only one.
pub fn choose_manifest(index: &[u8]) -> Result<Blob, String> {
    let index = ImageIndex::from_reader(index).map_err(|e| format!("the image index is malformed: {e}"))?;
    let manifests = index.manifests();
    let is_wasm = |d: &&Descriptor| d.platform().as_ref().is_some_and(|p| *p.architecture() == Arch::Wasm);
    let is_host = |d: &&Descriptor| {
        d.platform().as_ref().is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::default())
    };
    let chosen = manifests
        .iter()
        .find(is_wasm)
        .or_else(|| manifests.iter().find(is_host))
        .or_else(|| if manifests.len() == 1 { manifests.first() } else { None })
        .ok_or_else(|| {
            format!(
                "the image index has no manifest for wasm or linux/{} among its {} manifests",
                Arch::default(),
                manifests.len()
            )
        })?;
    Ok(blob(chosen))
}

/// The wasm layers of `manifest`, in order.
pub fn wasm_layers(manifest: &[u8]) -> Result<Vec<WasmLayer>, String> {
    let manifest =
        ImageManifest::from_reader(manifest).map_err(|e| format!("the image manifest is malformed: {e}"))?;
    Ok(manifest
        .layers()
        .iter()
        .filter(|layer| WASM_LAYER_TYPES.contains(&layer.media_type().to_string().as_str()))
        .map(|layer| WasmLayer {
            blob: blob(layer),
            title: layer.annotations().as_ref().and_then(|a| a.get(TITLE)).cloned(),
        })
        .collect())
}

/// The layer that is the entry module: the one named like the container's first argument
/// (its file name), else the first.
pub fn entry_layer<'l>(layers: &'l [WasmLayer], argv0: &str) -> Option<&'l WasmLayer> {
    let name = argv0.rsplit('/').next().unwrap_or(argv0);
    layers.iter().find(|l| l.title.as_deref() == Some(name)).or_else(|| layers.first())
}

fn blob(descriptor: &Descriptor) -> Blob {
    let media_type = match descriptor.media_type() {
        MediaType::Other(other) => other.clone(),
        known => known.to_string(),
    };
    Blob { media_type, digest: descriptor.digest().to_string(), size: descriptor.size() as i64 }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn manifest(layers: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D3, "size": 10},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn wasm_layers_and_the_entry() {
        let bytes = manifest(json!([
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": D3, "size": 3},
            {"mediaType": "application/wasm", "digest": D1, "size": 1,
             "annotations": {"org.opencontainers.image.title": "lib.wasm"}},
            {"mediaType": "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", "digest": D2, "size": 2,
             "annotations": {"org.opencontainers.image.title": "app.wasm"}},
        ]));
        let layers = wasm_layers(&bytes).unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].blob.digest, D1);
        assert_eq!(layers[1].blob.media_type, WASM_LAYER_TYPES[1]);
        assert_eq!(entry_layer(&layers, "/app.wasm").unwrap().blob.digest, D2);
        assert_eq!(entry_layer(&layers, "/other.wasm").unwrap().blob.digest, D1);
        assert!(wasm_layers(&manifest(json!([]))).unwrap().is_empty());
        assert!(wasm_layers(b"{}").unwrap_err().contains("malformed"));
    }

    #[test]
    fn platform_choice() {
        let index = |platforms: &[(&str, &str, &str)]| {
            let manifests: Vec<_> = platforms
                .iter()
                .map(|(os, arch, digest)| {
                    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                           "size": 5, "platform": {"os": os, "architecture": arch}})
                })
                .collect();
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap()
        };
        let host = Arch::default().to_string();
        let both = index(&[("linux", &host, D1), ("wasip1", "wasm", D2)]);
        assert_eq!(choose_manifest(&both).unwrap().digest, D2);
        assert_eq!(
            choose_manifest(&index(&[("linux", &host, D1), ("linux", "s390x", D2)])).unwrap().digest,
            D1
        );
        assert_eq!(choose_manifest(&index(&[("windows", "arm64", D3)])).unwrap().digest, D3);
        let none = index(&[("windows", "arm64", D1), ("linux", "s390x", D2)]);
        assert!(choose_manifest(&none).unwrap_err().contains("no manifest"));
        assert!(is_index("application/vnd.oci.image.index.v1+json"));
        assert!(!is_index("application/vnd.oci.image.manifest.v1+json"));
    }
}
