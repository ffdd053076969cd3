//! Where a wasm container's module comes from, and its precompiled artifact.
//!
//! The module is the entrypoint file in the container's root filesystem
//! ([`super::entrypoint`]) or, when the image has no such file but has wasm layers
//! (runwasi's image format), the wasm layer read from containerd's content store. For an
//! engine that can precompile, the precompile cache ([`crate::images::cache`]) finds or
//! makes the artifact. Both layer and artifact are files (blobs of containerd's content
//! store, or memory files) the container's init process inherits.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use shim_wasm_abi::host::LoadedPlugin;
use shim_wasm_abi::{Capabilities, ModuleKind};

use super::create::EngineChoice;
use super::view::{ContainerView, Located};
use crate::images::{self, ContainerImage, Containerd, cache, manifest};

/// The module's bytes as the init process finds them.
#[derive(Debug, Clone)]
pub enum WasmSource {
    /// A file, by its path inside the container.
    File(PathBuf),
    /// A wasm layer of the image, as a file (see [`crate::images::client`]).
    Layer { digest: String, file: Arc<File> },
}

impl WasmSource {
    /// How the module is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Layer { digest, .. } => format!("wasm layer {digest}"),
        }
    }
}

/// Why a precompiled artifact from the container's files or image is refused: an engine
/// loads an artifact as native code, so only the shim's own cache may make one.
pub const ARTIFACTS_COME_FROM_THE_CACHE: &str =
    "a container runs modules: the shim compiles them and keeps the artifacts in its own cache";

/// The container's image, opened on first use (native containers never need it).
pub struct ImageLookup<'a> {
    containerd: Option<&'a Containerd>,
    id: &'a str,
    opened: Option<Result<Option<ContainerImage>, String>>,
}

impl<'a> ImageLookup<'a> {
    pub fn new(containerd: Option<&'a Containerd>, id: &'a str) -> Self {
        Self { containerd, id, opened: None }
    }

    /// The image, `Ok(None)` when the container has none or the shim was not given
    /// containerd's address.
    fn get(&mut self) -> Result<Option<&ContainerImage>, String> {
        let (containerd, id) = (self.containerd, self.id);
        let opened = self.opened.get_or_insert_with(|| match containerd {
            None => Ok(None),
            Some(containerd) => ContainerImage::open(containerd, id).map_err(|e| e.to_string()),
        });
        match opened {
            Ok(image) => Ok(image.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The entry module from the image's wasm layers: `Ok(None)` when it has none.
    pub fn wasm_layer(&mut self, argv0: &str) -> Result<Option<(WasmSource, ModuleKind)>, String> {
        let id = self.id;
        let Some(image) = self.get()? else { return Ok(None) };
        let layers = image.wasm_layers()?;
        let Some(layer) = manifest::entry_layer(&layers, argv0) else { return Ok(None) };
        let file = image.read_layer(layer)?;
        let mut head = [0; 4096];
        let n = file.read_at(&mut head, 0).map_err(|e| e.to_string())?;
        tracing::info!(id, image = %image.name, layer = %layer.blob.digest, "module from a wasm layer");
        Ok(Some((
            WasmSource::Layer { digest: layer.blob.digest.clone(), file: Arc::new(file) },
            ModuleKind::sniff(&head[..n]),
        )))
    }

    /// The precompiled artifact for `source` (see [`cache`]); `None` when the cache is
    /// off, the engine cannot precompile, the container has no image, or it failed.
    pub fn artifact(
        &mut self,
        source: &WasmSource,
        view: &ContainerView,
        engine: &EngineChoice,
        plugin: &LoadedPlugin,
        deadline: Instant,
    ) -> Option<Arc<File>> {
        if !engine.precompile_cache || !plugin.descriptor().capabilities.contains(Capabilities::PRECOMPILE) {
            return None;
        }
        let id = self.id;
        let image = match self.get() {
            Ok(Some(image)) => image,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%id, "precompile cache: {e}; the module is compiled when the container starts");
                return None;
            }
        };
        let opened;
        let (file, digest, label_on) = match source {
            WasmSource::File(path) => {
                // The cache follows images: a module on a volume is not the image's.
                let located @ Located::Root { .. } = view.locate(path) else {
                    tracing::info!(%id, module = %path.display(), "module on a volume: compiled when the container starts, not cached");
                    return None;
                };
                // Non-blocking: a FIFO put in the module's place must not hold the create.
                opened = File::options()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(located.host_path()?)
                    .ok()
                    .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
                // BLAKE3: several times faster than SHA-256 on a large module.
                let digest = format!("blake3:{}", images::blake3_of(&opened).ok()?.to_hex());
                (&opened, digest, image.target.digest.clone())
            }
            WasmSource::Layer { digest, file } => (&**file, digest.clone(), digest.clone()),
        };
        let module = cache::Module {
            id,
            engine: &engine.name,
            settings: &engine.settings,
            plugin,
            file,
            digest,
            source: &label_on,
        };
        cache::artifact(image, &module, deadline).map(Arc::new)
    }
}
