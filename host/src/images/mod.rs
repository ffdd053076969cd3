//! The container's image as containerd's content store holds it: wasm layers (images
//! whose layers are the wasm binary itself, not a tar of files) and the precompile cache.
//!
//! Both run in the launcher's worker that creates the container, before libcontainer
//! clones its init process: [`client`] talks to containerd's gRPC socket (the address and
//! namespace containerd gave the shim); [`manifest`] finds the wasm layers; [`cache`]
//! finds or makes the engine's compiled artifact of the module and stores it as a blob
//! that a label on the image (or layer) references, so containerd's garbage collection
//! keeps it exactly as long as the image.

pub mod cache;
pub mod client;
pub mod manifest;

use std::fs::File;

use serde::{Deserialize, Serialize};

use client::{Client, ClientError};
use manifest::Blob;
use manifest::WasmLayer;

/// The containerd that asked for the container, from the shim's command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Containerd {
    /// Its gRPC socket.
    pub address: String,
    pub namespace: String,
}

/// The image a container was created from.
pub struct ContainerImage {
    pub client: Client,
    pub name: String,
    /// What the image record points at: a manifest or an index.
    pub target: Blob,
}

impl ContainerImage {
    /// The image of container `id`; `None` when containerd created it without one
    /// (`ctr run --rootfs`).
    pub fn open(containerd: &Containerd, id: &str) -> Result<Option<Self>, ClientError> {
        let client = Client::connect(&containerd.address, &containerd.namespace)?;
        let name = client.container_image(id)?;
        if name.is_empty() {
            return Ok(None);
        }
        let target = client.image_target(&name)?;
        Ok(Some(Self { client, name, target }))
    }

    /// The image's wasm layers (of the manifest for this node, in an index).
    pub fn wasm_layers(&self) -> Result<Vec<WasmLayer>, String> {
        let in_image = |e: String| format!("image {}: {e}", self.name);
        let read = |blob: &Blob| self.client.read_small(&blob.digest).map_err(|e| in_image(e.to_string()));
        let mut manifest = self.target.clone();
        if manifest::is_index(&manifest.media_type) {
            manifest = manifest::choose_manifest(&read(&manifest)?).map_err(in_image)?;
        }
        manifest::wasm_layers(&read(&manifest)?).map_err(in_image)
    }

    /// The blob of `layer`, in a file the container's init process inherits.
    pub fn read_layer(&self, layer: &WasmLayer) -> Result<File, String> {
        let check = client::Check::Size(layer.blob.size.max(0) as u64);
        let info = self.client.info(&layer.blob.digest);
        info.and_then(|info| self.client.blob_file(&info, check, u64::MAX, "wasm-layer")).map_err(|e| {
            format!(
                "image {}: cannot read wasm layer {} ({}): {e}; pull the image again (ctr images pull, crictl pull)",
                self.name, layer.blob.digest, layer.blob.media_type
            )
        })
    }
}

/// An anonymous file in memory (its descriptor survives the clone of the init process).
pub fn memory_file(name: &str) -> std::io::Result<File> {
    let name = std::ffi::CString::new(name).expect("no NUL in a memfd name");
    // SAFETY: memfd_create with a valid name; the descriptor is owned by the File.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    use std::os::fd::FromRawFd;
    // SAFETY: a fresh descriptor from memfd_create.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The whole content of `file` from its start, wherever its offset is.
pub fn read_whole(file: &File) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; file.metadata()?.len() as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// The BLAKE3 hash of `file` from its start (a large module is hashed in pieces, not
/// loaded whole).
pub fn blake3_of(file: &File) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    each_piece(file, |piece| {
        hasher.update(piece);
    })?;
    Ok(hasher.finalize())
}

/// Calls `use_piece` on the content of `file` from its start, a MiB at a time, wherever
/// its offset is.
pub fn each_piece(file: &File, mut use_piece: impl FnMut(&[u8])) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut piece = vec![0; 1 << 20];
    let mut offset = 0;
    loop {
        match file.read_at(&mut piece, offset)? {
            0 => return Ok(()),
            n => {
                use_piece(&piece[..n]);
                offset += n as u64;
            }
        }
    }
}

/// `sha256:<hex>`, the content store's name for `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", client::hex(&Sha256::digest(bytes)))
}
