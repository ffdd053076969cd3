//! A read-only OCI registry on loopback, over plain HTTP, serving one image from an OCI
//! image layout (the tarball `oci-image-builder` writes, unpacked): enough of the
//! distribution API for containerd to resolve a tag, fetch the index, the manifest and the
//! blobs. For pulls through CRI, which has no `ctr images import`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Registry {
    /// Serves the image of `tarball` (unpacked into `dir`) under any name and tag.
    pub fn serve(tarball: &Path, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("tar").arg("-xf").arg(tarball).arg("-C").arg(dir).status().unwrap();
        assert!(status.success(), "tar -xf {}", tarball.display());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let layout = dir.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let layout = layout.clone();
                std::thread::spawn(move || answer(stream, &layout));
            }
        });
        Self { addr }
    }
}

/// Answers the requests of one connection (keep-alive) until it closes.
fn answer(stream: TcpStream, layout: &Path) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // The headers: nothing in them matters here; requests carry no body.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, media_type, body) = route(path, layout);
        let digest = format!("sha256:{:x}", Sha256::digest(&body));
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\n\
             Docker-Content-Digest: {digest}\r\nDocker-Distribution-API-Version: registry/2.0\r\n\r\n",
            body.len()
        );
        let sent = stream.write_all(head.as_bytes()).and_then(|()| match method {
            "HEAD" => Ok(()),
            _ => stream.write_all(&body),
        });
        if sent.is_err() {
            return;
        }
    }
}

/// `/v2/`, `/v2/<name>/manifests/<tag or digest>`, `/v2/<name>/blobs/<digest>`.
fn route(path: &str, layout: &Path) -> (&'static str, String, Vec<u8>) {
    let not_found = ("404 Not Found", "application/json".to_string(), b"{}".to_vec());
    if path == "/v2/" {
        return ("200 OK", "application/json".into(), b"{}".to_vec());
    }
    let blob = |digest: &str| -> Option<Vec<u8>> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| std::fs::read(layout.join("blobs/sha256").join(hex)).ok())?
    };
    if let Some((_, reference)) = path.rsplit_once("/manifests/") {
        // Any tag names the layout's index, whose manifests carry their platforms; the
        // index is then asked for by the digest the tag's answer gave.
        let index = std::fs::read(layout.join("index.json")).unwrap();
        let index_digest = format!("sha256:{:x}", Sha256::digest(&index));
        let (bytes, media_type) = if reference.starts_with("sha256:") && reference != index_digest {
            let Some(bytes) = blob(reference) else { return not_found };
            let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(String::from))
                .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
            (bytes, media_type)
        } else {
            (index, "application/vnd.oci.image.index.v1+json".into())
        };
        return ("200 OK", media_type, bytes);
    }
    if let Some((_, digest)) = path.rsplit_once("/blobs/") {
        return match blob(digest) {
            Some(bytes) => ("200 OK", "application/octet-stream".into(), bytes),
            None => not_found,
        };
    }
    not_found
}
