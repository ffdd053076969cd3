//! The `max_memory_bytes` setting every plugin with `MEMORY_LIMIT` takes: refused below
//! one WebAssembly page, and rounded the same way on every engine — a linear memory may
//! grow to `max_memory_bytes / 64 KiB` pages. (Before, a cap under 64 KiB gave Wasmer
//! 0 pages and WAMR and WasmEdge one, and `0` was accepted and the failure blamed the
//! module.)

use super::PluginError;

/// Bytes in a WebAssembly page.
const WASM_PAGE_BYTES: u64 = 65536;
/// Pages a 32-bit memory can have.
const MAX_PAGES: u64 = 65536;

/// A valid memory cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCap {
    bytes: u64,
}

impl MemoryCap {
    /// The cap from an engine's `max_memory_bytes` setting (`None`: no cap).
    pub fn from_setting(engine: &str, max_memory_bytes: Option<u64>) -> Result<Option<Self>, PluginError> {
        match max_memory_bytes {
            None => Ok(None),
            Some(bytes) if bytes < WASM_PAGE_BYTES => Err(PluginError::invalid_argument(format!(
                "invalid {engine} settings: max_memory_bytes = {bytes} is less than one WebAssembly page \
                 ({WASM_PAGE_BYTES} bytes); set at least {WASM_PAGE_BYTES}, or leave it out for no cap"
            ))),
            Some(bytes) => Ok(Some(Self { bytes })),
        }
    }

    /// The pages a 32-bit memory may grow to: at least one, at most 65536.
    pub fn pages(self) -> u64 {
        (self.bytes / WASM_PAGE_BYTES).min(MAX_PAGES)
    }

    /// The cap in bytes, whole pages, not limited to 4 GiB (for engines that count
    /// bytes and have 64-bit memories).
    pub fn bytes(self) -> u64 {
        self.bytes / WASM_PAGE_BYTES * WASM_PAGE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_whole_pages_and_at_least_one() {
        assert_eq!(MemoryCap::from_setting("e", None).unwrap(), None);
        for too_small in [0, 1, 65535] {
            let e = MemoryCap::from_setting("e", Some(too_small)).unwrap_err();
            assert!(e.message.contains("less than one WebAssembly page"), "{e:?}");
        }
        let cap = |bytes| MemoryCap::from_setting("e", Some(bytes)).unwrap().unwrap();
        assert_eq!((cap(65536).pages(), cap(65536).bytes()), (1, 65536));
        assert_eq!((cap(100_000).pages(), cap(100_000).bytes()), (1, 65536));
        assert_eq!(cap(1 << 20).pages(), 16);
        assert_eq!(cap(u64::MAX).pages(), 65536);
        // A 64-bit memory may be capped above 4 GiB.
        assert_eq!(cap(8 << 30).bytes(), 8 << 30);
    }
}
