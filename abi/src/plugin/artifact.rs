//! The envelope around precompiled artifacts: a magic, the cache key the artifact was
//! built for, then the engine's own bytes. The export layer wraps on `precompile` and
//! checks the key before `run`, so an engine never loads an artifact from another
//! engine, version, setting or CPU.

use crate::Status;
use crate::plugin::PluginError;

use crate::types::ARTIFACT_MAGIC as MAGIC;

/// Whether `bytes` start with the artifact envelope.
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Wraps an engine artifact with the key it was built for.
pub fn wrap(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + key.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Returns the engine's bytes if the artifact was built for `expected_key`.
pub fn unwrap<'a>(bytes: &'a [u8], expected_key: &str) -> Result<&'a [u8], PluginError> {
    let corrupt = || {
        PluginError::new(
            Status::ArtifactMismatch,
            "the precompiled artifact is truncated or corrupt; precompile the module again",
        )
    };
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(corrupt)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(corrupt());
    }
    let (key, payload) = rest.split_at(len);
    let key = String::from_utf8_lossy(key);
    if key != expected_key {
        return Err(PluginError::new(
            Status::ArtifactMismatch,
            format!(
                "the precompiled artifact was built for `{key}` but this engine is `{expected_key}`; \
                 precompile the module again with this engine and settings"
            ),
        ));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let art = wrap("wasmtime/1/a", b"payload");
        assert!(is_artifact(&art));
        assert_eq!(unwrap(&art, "wasmtime/1/a").unwrap(), b"payload");
        let err = unwrap(&art, "wasmtime/1/b").unwrap_err();
        assert_eq!(err.status, Status::ArtifactMismatch);
        assert!(err.message.contains("built for `wasmtime/1/a`"), "{}", err.message);
        assert!(unwrap(&art[..18], "wasmtime/1/a").is_err());
        assert!(!is_artifact(b"\0asm\x01\0\0\0"));
    }
}
