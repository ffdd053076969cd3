//! A blocking client for the parts of containerd's gRPC API the shim reads and writes:
//! containers, images, content and leases, in one namespace.
//!
//! It runs in a launcher's worker, which must be single-threaded again before
//! libcontainer clones the container from it: so a current-thread tokio runtime (no
//! worker threads, no blocking pool is used), dropped with the client. Every call is
//! bounded.
//!
//! Large blobs (wasm layers, artifacts) are opened as files of containerd's local
//! content store when containerd says where it keeps them, rather than streamed over
//! gRPC: reading an 80 MB artifact over the socket into memory took 230 ms here, opening
//! its file takes none, and the container's init process maps it.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    CreateRequest as CreateLease, DeleteContentRequest, DeleteRequest as DeleteLease, GetContainerRequest,
    GetImageRequest, Info, InfoRequest, PluginsRequest, ReadContentRequest, UpdateRequest, WriteAction,
    WriteContentRequest,
};
use containerd_client::tonic::codegen::tokio_stream;
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request};
use sha2::{Digest, Sha256};

use super::manifest::Blob;

/// A bound for one call (a blob of hundreds of MiB reads in well under this).
const CALL_BOUND: Duration = Duration::from_secs(20);
/// Bytes per write message (containerd accepts messages up to 16 MiB).
const WRITE_CHUNK: usize = 1 << 20;
/// How long a lease protects a blob that is written but not referenced yet, should the
/// worker die before it removes the lease.
const LEASE_LIFETIME: Duration = Duration::from_secs(3600);

/// How a read checks the blob it got.
#[derive(Debug, Clone, Copy)]
pub enum Check<'a> {
    /// Against its own SHA-256 digest (small blobs: manifests, indexes).
    Digest,
    /// Against the BLAKE3 hash recorded when it was written (artifacts: several times
    /// faster to check than SHA-256 on large blobs).
    Blake3(&'a str),
    /// Its size only (layers, whose digest containerd checked when it pulled them; it
    /// does not check again on reads either).
    Size(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach containerd at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("{what}: {status}")]
    Call { what: String, status: containerd_client::tonic::Status },
    #[error("{what}: no answer from containerd within {} s", CALL_BOUND.as_secs())]
    Timeout { what: String },
    #[error("blob {digest} read from containerd's content store is corrupt ({reason})")]
    Corrupt { digest: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Call { status, .. } if status.code() == Code::NotFound)
    }
}

pub struct Client {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    address: String,
    namespace: String,
    /// Where containerd's local content store keeps its blobs, once asked.
    content_root: OnceCell<Option<PathBuf>>,
}

impl Client {
    /// Connects to containerd's gRPC socket `address` for requests in `namespace`.
    pub fn connect(address: &str, namespace: &str) -> Result<Self, ClientError> {
        let connect_error = |reason: String| ClientError::Connect { address: address.to_string(), reason };
        if !Path::new(address).exists() {
            return Err(connect_error("no such socket".into()));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| connect_error(e.to_string()))?;
        let channel = runtime
            .block_on(async { tokio::time::timeout(CALL_BOUND, containerd_client::connect(address)).await })
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(|e| connect_error(e.to_string()))?;
        Ok(Self {
            runtime,
            channel,
            address: address.to_string(),
            namespace: namespace.to_string(),
            content_root: OnceCell::new(),
        })
    }

    /// The socket and namespace this client talks to (for a forked process's own).
    pub fn address(&self) -> (&str, &str) {
        (&self.address, &self.namespace)
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "containerd-namespace",
            self.namespace.parse().expect("a namespace is a valid header value"),
        );
        request.set_timeout(CALL_BOUND);
        request
    }

    fn call<F, T>(&self, what: impl Fn() -> String, call: F) -> Result<T, ClientError>
    where
        F: std::future::Future<Output = Result<T, ClientError>>,
    {
        self.runtime
            .block_on(async { tokio::time::timeout(CALL_BOUND, call).await })
            .map_err(|_| ClientError::Timeout { what: what() })?
    }

    /// The name of the image container `id` was created from ("" when none).
    pub fn container_image(&self, id: &str) -> Result<String, ClientError> {
        let what = || format!("cannot look up container {id} in containerd");
        self.call(what, async {
            let mut client = ContainersClient::new(self.channel.clone());
            let reply = client
                .get(self.request(GetContainerRequest { id: id.to_string() }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(reply.into_inner().container.map(|c| c.image).unwrap_or_default())
        })
    }

    /// The descriptor image `name` points at (a manifest or an index).
    pub fn image_target(&self, name: &str) -> Result<Blob, ClientError> {
        let what = || format!("cannot look up image {name} in containerd");
        self.call(what, async {
            let mut client = ImagesClient::new(self.channel.clone());
            let reply = client
                .get(self.request(GetImageRequest { name: name.to_string() }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            let target =
                reply.into_inner().image.and_then(|image| image.target).ok_or_else(|| ClientError::Call {
                    what: what(),
                    status: containerd_client::tonic::Status::not_found("the image has no target"),
                })?;
            Ok(Blob { media_type: target.media_type, digest: target.digest, size: target.size })
        })
    }

    /// Reads blob `digest` into `out` (at most `limit` bytes), checked as `check` says.
    pub fn read(
        &self,
        digest: &str,
        check: Check<'_>,
        limit: u64,
        out: &mut dyn Write,
    ) -> Result<u64, ClientError> {
        let what = || format!("cannot read blob {digest} from containerd's content store");
        let corrupt = |reason: String| ClientError::Corrupt { digest: digest.to_string(), reason };
        let mut sha256 = matches!(check, Check::Digest).then(Sha256::new);
        let mut blake3 = matches!(check, Check::Blake3(_)).then(blake3::Hasher::new);
        let mut total = 0u64;
        self.call(what, async {
            let mut client = ContentClient::new(self.channel.clone());
            let request = ReadContentRequest { digest: digest.to_string(), offset: 0, size: 0 };
            let mut stream = client
                .read(self.request(request))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?
                .into_inner();
            while let Some(chunk) =
                stream.message().await.map_err(|status| ClientError::Call { what: what(), status })?
            {
                total += chunk.data.len() as u64;
                if total > limit {
                    return Err(corrupt(format!("larger than {limit} bytes")));
                }
                if let Some(hasher) = sha256.as_mut() {
                    hasher.update(&chunk.data);
                }
                if let Some(hasher) = blake3.as_mut() {
                    hasher.update(&chunk.data);
                }
                out.write_all(&chunk.data)?;
            }
            Ok(())
        })?;
        match check {
            Check::Digest => {
                let actual = format!("sha256:{}", hex(&sha256.unwrap_or_default().finalize()));
                if actual != digest {
                    return Err(corrupt(format!("its content hashes to {actual}")));
                }
            }
            Check::Blake3(expected) => {
                let actual = blake3.unwrap_or_default().finalize().to_hex();
                if actual.as_str() != expected {
                    return Err(corrupt(format!(
                        "its BLAKE3 hash is {actual}, not the {expected} it was written with"
                    )));
                }
            }
            Check::Size(size) if total != size => {
                return Err(corrupt(format!("{total} bytes where containerd recorded {size}")));
            }
            Check::Size(_) => {}
        }
        Ok(total)
    }

    /// The blob `info` describes, checked: the file of containerd's local content store
    /// when there is one, else read over gRPC into a memory file named `name`. `info` is
    /// containerd's answer for this namespace ([`Client::info`]): the blob files are shared
    /// by every namespace, and one removed from the content store stays on disk until the
    /// garbage collection, so the caller asks first, as a read would.
    pub fn blob_file(
        &self,
        info: &Info,
        check: Check<'_>,
        limit: u64,
        name: &str,
    ) -> Result<File, ClientError> {
        let digest = info.digest.as_str();
        if let Some(file) = self.open_blob(digest)
            && file.metadata().is_ok_and(|m| m.len() == info.size as u64)
        {
            check_file(&file, digest, check, limit)?;
            return Ok(file);
        }
        let mut file = super::memory_file(name)?;
        self.read(digest, check, limit, &mut file)?;
        Ok(file)
    }

    /// The file of blob `digest` in containerd's local content store, read-only:
    /// `<root>/blobs/<algorithm>/<hex>`, with the root its content plugin exports
    /// (containerd 1.6 and 2.x). Containerd writes a blob once, under another name, and
    /// renames it into place; it never changes one. `None` when containerd does not say
    /// where its store is, or the file is not there: the caller reads over gRPC.
    fn open_blob(&self, digest: &str) -> Option<File> {
        let (algorithm, encoded) = digest.split_once(':')?;
        let valid = algorithm == "sha256"
            && encoded.len() == 64
            && encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return None;
        }
        let root = self.content_root.get_or_init(|| self.ask_content_root()).as_ref()?;
        let file = File::open(root.join("blobs").join(algorithm).join(encoded)).ok()?;
        file.metadata().ok().filter(|m| m.is_file())?;
        Some(file)
    }

    fn ask_content_root(&self) -> Option<PathBuf> {
        let what = || "cannot ask containerd where its content store is".to_string();
        let asked = self.call(what, async {
            let mut client = IntrospectionClient::new(self.channel.clone());
            let filters = vec!["type==io.containerd.content.v1,id==content".to_string()];
            let reply = client
                .plugins(self.request(PluginsRequest { filters }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(reply.into_inner().plugins.into_iter().find_map(|p| p.exports.get("root").cloned()))
        });
        match asked {
            Ok(root) => root.map(PathBuf::from).filter(|root| root.is_absolute()),
            Err(e) => {
                tracing::debug!("{e}; blobs are read over gRPC");
                None
            }
        }
    }

    /// Reads a small blob (a manifest, an index, a config) whole.
    pub fn read_small(&self, digest: &str) -> Result<Vec<u8>, ClientError> {
        let mut bytes = Vec::new();
        self.read(digest, Check::Digest, 4 << 20, &mut bytes)?;
        Ok(bytes)
    }

    /// The labels of blob `digest`.
    pub fn labels(&self, digest: &str) -> Result<HashMap<String, String>, ClientError> {
        Ok(self.info(digest)?.labels)
    }

    /// What containerd records about blob `digest` in this namespace.
    pub fn info(&self, digest: &str) -> Result<Info, ClientError> {
        let what = || format!("cannot look up blob {digest} in containerd's content store");
        self.call(what, async {
            let mut client = ContentClient::new(self.channel.clone());
            let reply = client
                .info(self.request(InfoRequest { digest: digest.to_string() }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(reply.into_inner().info.unwrap_or_default())
        })
    }

    /// Sets `labels` on blob `digest`, leaving its other labels as they are.
    pub fn add_labels(&self, digest: &str, labels: HashMap<String, String>) -> Result<(), ClientError> {
        let what = || format!("cannot label blob {digest}");
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        let info = Info { digest: digest.to_string(), labels, ..Default::default() };
        let update = UpdateRequest { info: Some(info), update_mask: Some(prost_types::FieldMask { paths }) };
        self.call(what, async {
            let mut client = ContentClient::new(self.channel.clone());
            client
                .update(self.request(update))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(())
        })
    }

    /// Removes blob `digest` (one found corrupt) from this namespace, then has containerd
    /// collect garbage, which removes its file unless another namespace holds it: only
    /// then does a later write of the same digest write the file anew.
    pub fn remove(&self, digest: &str) -> Result<(), ClientError> {
        let what = || format!("cannot remove blob {digest}");
        self.call(what, async {
            let mut client = ContentClient::new(self.channel.clone());
            client
                .delete(self.request(DeleteContentRequest { digest: digest.to_string() }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(())
        })?;
        // Removing a lease with `sync` runs the garbage collection before it answers.
        let lease = self.lease(digest)?;
        lease.remove(true)
    }

    /// Writes `bytes` as a blob with `labels`, under a lease that keeps it from garbage
    /// collection until the caller has referenced it and calls [`Lease::release`].
    /// Returns the blob's digest; a blob already there is fine.
    pub fn write(
        &self,
        bytes: &[u8],
        labels: HashMap<String, String>,
    ) -> Result<(String, Lease<'_>), ClientError> {
        let digest = super::digest_of(bytes);
        let lease = self.lease(&digest)?;
        let what = || format!("cannot write blob {digest} to containerd's content store");
        let reference = format!("containerd-shim-wasm-{digest}");
        let total = bytes.len() as i64;
        let mut messages: Vec<WriteContentRequest> = bytes
            .chunks(WRITE_CHUNK)
            .enumerate()
            .map(|(i, chunk)| WriteContentRequest {
                action: WriteAction::Write.into(),
                r#ref: reference.clone(),
                total,
                expected: digest.clone(),
                offset: (i * WRITE_CHUNK) as i64,
                data: chunk.to_vec(),
                labels: HashMap::new(),
            })
            .collect();
        messages.push(WriteContentRequest {
            action: WriteAction::Commit.into(),
            r#ref: reference,
            total,
            expected: digest.clone(),
            offset: total,
            data: Vec::new(),
            labels,
        });
        let written = self.call(what, async {
            let mut client = ContentClient::new(self.channel.clone());
            let mut request = self.request(tokio_stream::iter(messages));
            request
                .metadata_mut()
                .insert("containerd-lease", lease.id.parse().expect("a lease id is a header value"));
            let mut replies = client
                .write(request)
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?
                .into_inner();
            while replies
                .message()
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?
                .is_some()
            {}
            Ok(())
        });
        match written {
            Err(ClientError::Call { status, .. }) if status.code() == Code::AlreadyExists => {}
            other => other?,
        }
        Ok((digest, lease))
    }

    fn lease(&self, digest: &str) -> Result<Lease<'_>, ClientError> {
        let id = format!("containerd-shim-wasm-{}-{}", std::process::id(), &digest[7..19]);
        let what = || format!("cannot create lease {id} in containerd");
        let expires = SystemTime::now() + LEASE_LIFETIME;
        let labels = HashMap::from([("containerd.io/gc.expire".to_string(), rfc3339(expires))]);
        self.call(what, async {
            let mut client = LeasesClient::new(self.channel.clone());
            client
                .create(self.request(CreateLease { id: id.clone(), labels }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(())
        })?;
        Ok(Lease { client: self, id })
    }
}

/// A lease on what a [`Client::write`] wrote. Dropping it without `release` leaves
/// containerd to expire it.
pub struct Lease<'c> {
    client: &'c Client,
    id: String,
}

impl Lease<'_> {
    /// Ends the lease once what it protects is referenced.
    pub fn release(self) {
        if let Err(e) = self.remove(false) {
            tracing::warn!("{e}; containerd removes it when it expires");
        }
    }

    /// With `collect`, containerd collects garbage before it answers.
    fn remove(self, collect: bool) -> Result<(), ClientError> {
        let what = || format!("cannot remove lease {}", self.id);
        let client = self.client;
        client.call(what, async {
            let mut leases = LeasesClient::new(client.channel.clone());
            leases
                .delete(client.request(DeleteLease { id: self.id.clone(), sync: collect }))
                .await
                .map_err(|status| ClientError::Call { what: what(), status })?;
            Ok(())
        })
    }
}

/// Checks blob `digest` in `file` as [`Client::read`] checks what it streams.
fn check_file(file: &File, digest: &str, check: Check<'_>, limit: u64) -> Result<(), ClientError> {
    let corrupt = |reason: String| ClientError::Corrupt { digest: digest.to_string(), reason };
    let size = file.metadata()?.len();
    if size > limit {
        return Err(corrupt(format!("larger than {limit} bytes")));
    }
    match check {
        Check::Digest => {
            let mut hasher = Sha256::new();
            super::each_piece(file, |piece| hasher.update(piece))?;
            let actual = format!("sha256:{}", hex(&hasher.finalize()));
            if actual != digest {
                return Err(corrupt(format!("its content hashes to {actual}")));
            }
        }
        Check::Blake3(expected) => {
            let record_path = Path::new(VERIFIED_DIR).join(digest.replace(':', "-"));
            let record = verified_record(file, expected)?;
            if std::fs::read_to_string(&record_path).is_ok_and(|kept| kept == record) {
                return Ok(());
            }
            let actual = super::blake3_of(file)?.to_hex();
            if actual.as_str() != expected {
                let _ = std::fs::remove_file(&record_path);
                return Err(corrupt(format!(
                    "its BLAKE3 hash is {actual}, not the {expected} it was written with"
                )));
            }
            // Best effort: without a record the next hit hashes again.
            let _ = std::fs::create_dir_all(VERIFIED_DIR).and_then(|()| write_record(&record_path, &record));
        }
        Check::Size(recorded) if size != recorded => {
            return Err(corrupt(format!("{size} bytes where containerd recorded {recorded}")));
        }
        Check::Size(_) => {}
    }
    Ok(())
}

/// Where the shim records blob files it hashed and found matching (tmpfs: gone at boot):
/// one file per blob, naming the file (device, inode), its size, modification and change
/// times and the hash. A hit whose blob file still has that record skips hashing it
/// (30 ms for an 80 MB artifact here). Any write to the file changes its change time,
/// which no process can set back, and a replaced file has another inode. Kept out of
/// containerd's own directories.
pub const VERIFIED_DIR: &str = "/run/containerd-shim-wasm/verified";

fn verified_record(file: &File, blake3: &str) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    Ok(format!(
        "blake3={blake3} dev={} ino={} size={} mtime={}.{:09} ctime={}.{:09}\n",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// Written whole under another name and renamed, so a reader never sees half a record.
fn write_record(path: &Path, record: &str) -> std::io::Result<()> {
    let partial = path.with_extension(format!("{}.partial", std::process::id()));
    std::fs::write(&partial, record)?;
    std::fs::rename(&partial, path)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `2026-11-26T17:05:00Z`, the form of containerd's `gc.expire` label. (Hand-written: the
/// one timestamp the shim formats does not warrant a date-time crate.)
fn rfc3339(time: SystemTime) -> String {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_712_700), "2026-11-26T17:05:00Z");
    }
}
