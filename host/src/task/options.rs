//! `runtimeoptions.v1.Options`, the message containerd hands a non-runc shim, decoded by
//! hand: three string fields, not worth generated code.
//!
//! ```proto
//! message Options {
//!   string type_url = 1;
//!   string config_path = 2;   // all containerd versions; ctr --runtime-config-path
//!   string config_body = 3;   // containerd 1.7+: the CRI options table as TOML
//! }
//! ```

use std::path::PathBuf;

use containerd_shim::protos::protobuf::CodedInputStream;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use shimcfg::RuntimeOptions;

const TYPE_NAME: &str = "runtimeoptions.v1.Options";

/// Runtime options from `start`'s stdin, kept in the bundle for `create` (containerd 1.6
/// sends them only there for some clients).
pub const SAVED_OPTIONS_FILE: &str = ".shim-wasm-runtime-options";

/// The two sources of runtime options.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawRuntimeOptions {
    pub config_path: Option<PathBuf>,
    pub config_body: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("malformed runtime options ({TYPE_NAME}): {0}")]
    Malformed(String),
    #[error(
        "unsupported runtime options type {0:?}: the wasm shim takes {TYPE_NAME} \
         (in CRI, `engine = \"NAME\"` under the runtime's options table)"
    )]
    Unsupported(String),
    #[error(transparent)]
    Invalid(#[from] shimcfg::ConfigError),
}

impl RawRuntimeOptions {
    /// Decodes an `Any`; an empty one means no options.
    pub fn from_any(any: &Any) -> Result<Self, OptionsError> {
        if any.type_url.is_empty() && any.value.is_empty() {
            return Ok(Self::default());
        }
        if any.type_url.rsplit('/').next() != Some(TYPE_NAME) {
            return Err(OptionsError::Unsupported(any.type_url.clone()));
        }
        Self::decode(&any.value)
    }

    /// Decodes the message bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, OptionsError> {
        let malformed = |e: containerd_shim::protos::protobuf::Error| OptionsError::Malformed(e.to_string());
        let mut input = CodedInputStream::from_bytes(bytes);
        let mut options = Self::default();
        while let Some(tag) = input.read_raw_tag_or_eof().map_err(malformed)? {
            let (field, wire_type) = (tag >> 3, tag & 7);
            match (field, wire_type) {
                (2, 2) => options.config_path = Some(input.read_string().map_err(malformed)?.into()),
                (3, 2) => options.config_body = Some(input.read_string().map_err(malformed)?),
                _ => {
                    let wire_type = containerd_shim::protos::protobuf::rt::WireType::new(wire_type)
                        .ok_or_else(|| OptionsError::Malformed(format!("bad wire type {wire_type}")))?;
                    input.skip_field(wire_type).map_err(malformed)?;
                }
            }
        }
        options.config_path = options.config_path.filter(|p| !p.as_os_str().is_empty());
        options.config_body = options.config_body.filter(|b| !b.trim().is_empty());
        Ok(options)
    }

    pub fn is_empty(&self) -> bool {
        self.config_path.is_none() && self.config_body.is_none()
    }

    /// The validated options table.
    pub fn parse(&self) -> Result<RuntimeOptions, OptionsError> {
        Ok(RuntimeOptions::from_sources(self.config_body.as_deref(), self.config_path.as_deref())?)
    }

    /// Encodes the message (tests and the protocol-level client).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut field = |number: u8, text: &str| {
            out.push((number << 3) | 2);
            let mut len = text.len();
            while len >= 0x80 {
                out.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend_from_slice(text.as_bytes());
        };
        field(1, TYPE_NAME);
        if let Some(path) = &self.config_path {
            field(2, &path.to_string_lossy());
        }
        if let Some(body) = &self.config_body {
            field(3, body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_any() {
        let options = RawRuntimeOptions {
            config_path: Some("/etc/x.toml".into()),
            config_body: Some("engine = 'wasmtime'\n".repeat(20)),
        };
        let bytes = options.encode();
        assert_eq!(RawRuntimeOptions::decode(&bytes).unwrap(), options);
        let mut any = Any::new();
        any.type_url = "runtimeoptions.v1.Options".into();
        any.value = bytes;
        assert_eq!(RawRuntimeOptions::from_any(&any).unwrap(), options);
        assert!(RawRuntimeOptions::from_any(&Any::new()).unwrap().is_empty());

        any.type_url = "containerd.runc.v1.Options".into();
        let err = RawRuntimeOptions::from_any(&any).unwrap_err().to_string();
        assert!(err.contains("unsupported runtime options type"), "{err}");
        assert!(RawRuntimeOptions::decode(&[0x1a, 0x05, b'a']).is_err(), "truncated field");
    }
}
