//! Loading one plugin file: `dlopen` with local scope, the entry call, and the checks
//! on the table it returns (major version, size, required functions, descriptor).

use std::ffi::c_void;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Mutex, OnceLock};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use super::LoadError;
use crate::ffi::*;
use crate::{ABI_VERSION, AbiVersion, Capabilities};

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub engine_name: String,
    pub engine_version: String,
    pub plugin_version: String,
    /// The ABI version the plugin implements.
    pub abi_version: AbiVersion,
    pub capabilities: Capabilities,
}

/// A plugin loaded into this process. It is never unloaded.
#[derive(Debug)]
pub struct LoadedPlugin {
    path: PathBuf,
    pub(super) table: &'static ShimWasmPlugin,
    descriptor: Descriptor,
}

/// The file loaded into this process, if any (one engine per process).
static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);
/// The loaded engine's name, for log lines the plugin sends.
static ENGINE_NAME: OnceLock<String> = OnceLock::new();

static HOST_API: ShimWasmHostApi = ShimWasmHostApi {
    struct_size: size_of::<ShimWasmHostApi>(),
    abi_version: ShimWasmAbiVersion { major: SHIM_WASM_ABI_MAJOR, minor: SHIM_WASM_ABI_MINOR },
    host_ctx: ptr::null_mut(),
    log: Some(host_log),
};

impl LoadedPlugin {
    /// Loads the plugin at `path` and checks it.
    ///
    /// # Safety
    /// Loading a library runs its initialisers with this process's privileges: `path`
    /// must be a trusted file (the shim checks directory, owner and mode first).
    pub unsafe fn load(path: &Path) -> Result<Self, LoadError> {
        // SAFETY: the caller's promise, passed on.
        unsafe { Self::load_as(path, path) }
    }

    /// Loads the file open at `fd` — the very file the caller checked, whatever has
    /// happened to `path` since — through `/proc/self/fd`. Errors name `path`.
    ///
    /// # Safety
    /// As [`load`](Self::load): `fd` must be a trusted file.
    pub unsafe fn load_fd(path: &Path, fd: BorrowedFd<'_>) -> Result<Self, LoadError> {
        let open_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        // SAFETY: the caller's promise, passed on.
        unsafe { Self::load_as(path, &open_path) }
    }

    /// Opens `open_path`; `path` is the file's name in every message.
    unsafe fn load_as(path: &Path, open_path: &Path) -> Result<Self, LoadError> {
        {
            let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(loaded) = &*loaded {
                return Err(LoadError::AlreadyLoaded { path: path.into(), loaded: loaded.clone() });
            }
            *loaded = Some(path.into());
        }
        // SAFETY: the caller vouches for the file.
        let library = match unsafe { Library::open(Some(open_path), RTLD_NOW | RTLD_LOCAL) } {
            Ok(library) => library,
            Err(e) => {
                // Nothing was mapped: this process may still load another file.
                *LOADED.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Err(open_error(path, open_path, &e));
            }
        };
        // SAFETY: the symbol has the documented signature in every plugin.
        let entry =
            unsafe { library.get::<ShimWasmPluginEntryFn>(SHIM_WASM_ENTRY_SYMBOL) }.map(|symbol| *symbol);
        // Never unload: engines leave signal handlers and thread-locals behind.
        mem::forget(library);
        let entry = entry.map_err(|_| LoadError::MissingEntry { path: path.into() })?;

        // SAFETY: HOST_API lives for the whole process.
        let table = unsafe { entry(&HOST_API) };
        // SAFETY: the plugin returned NULL or a table valid for the process.
        let table = unsafe { checked_table(path, table) }?;
        let descriptor = descriptor(path, table)?;
        let _ = ENGINE_NAME.set(descriptor.engine_name.clone());
        Ok(Self { path: path.into(), table, descriptor })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The ABI both sides use: the plugin's major, the lower of the two minors.
    pub fn negotiated_abi(&self) -> AbiVersion {
        AbiVersion {
            major: ABI_VERSION.major,
            minor: ABI_VERSION.minor.min(self.descriptor.abi_version.minor),
        }
    }
}

fn open_error(path: &Path, open_path: &Path, e: &libloading::Error) -> LoadError {
    let text = e.to_string();
    // dlerror() repeats the path it opened; keep only the reason.
    let prefix = format!("{}: ", open_path.display());
    let reason = text.split_once(&prefix).map_or(text.as_str(), |(_, r)| r).to_string();
    LoadError::Open { path: path.into(), reason, arch: std::env::consts::ARCH }
}

/// Checks the table's version and size before reading anything past its first two
/// fields (which never move), then its required functions.
unsafe fn checked_table(
    path: &Path,
    raw: *const ShimWasmPlugin,
) -> Result<&'static ShimWasmPlugin, LoadError> {
    if raw.is_null() {
        return Err(LoadError::Refused { path: path.into(), host: ABI_VERSION });
    }
    // SAFETY: every plugin table, of any major, starts with these two fields.
    let (size, version) =
        unsafe { (ptr::addr_of!((*raw).struct_size).read(), ptr::addr_of!((*raw).abi_version).read()) };
    let plugin = AbiVersion::from(version);
    if plugin.major != ABI_VERSION.major {
        return Err(LoadError::MajorMismatch { path: path.into(), plugin, host: ABI_VERSION });
    }
    if size < SHIM_WASM_PLUGIN_V1_0_SIZE {
        return Err(LoadError::Truncated {
            path: path.into(),
            plugin,
            size,
            needed: SHIM_WASM_PLUGIN_V1_0_SIZE,
        });
    }
    // A copy as this minor's table: the fields the plugin declared, then zeroes (NULL
    // functions, no flags), never a read past its size. Leaked: plugins are never
    // unloaded, and a process loads at most one.
    // SAFETY: the plugin declared a table of `size` bytes, valid for the process; zeroes
    // are a valid table.
    let table: &'static mut ShimWasmPlugin = Box::leak(Box::new(unsafe { std::mem::zeroed() }));
    // SAFETY: as above; the copy stays within both tables.
    unsafe {
        ptr::copy_nonoverlapping(
            raw.cast::<u8>(),
            ptr::addr_of_mut!(*table).cast::<u8>(),
            size.min(size_of::<ShimWasmPlugin>()),
        )
    };
    // A flag or a function of a later minor means nothing without that minor's whole
    // table (a size between two minors' leaves a half-copied pointer).
    if size < SHIM_WASM_PLUGIN_V1_2_SIZE || plugin.minor < 2 {
        table.capabilities &= !SHIM_WASM_CAP_HTTP_SERVE;
        table.serve = None;
    }
    let flag = |cap: ShimWasmCapabilities| table.capabilities & cap != 0;
    let required = [
        ("engine_new", table.engine_new.is_some()),
        ("engine_free", table.engine_free.is_some()),
        ("detect", table.detect.is_some()),
        ("run", table.run.is_some()),
        ("bytes_free", table.bytes_free.is_some()),
        ("cache_key", table.cache_key.is_some() || !flag(SHIM_WASM_CAP_PRECOMPILE)),
        ("precompile", table.precompile.is_some() || !flag(SHIM_WASM_CAP_PRECOMPILE)),
        ("serve", table.serve.is_some() || !flag(SHIM_WASM_CAP_HTTP_SERVE)),
    ];
    if let Some((function, _)) = required.iter().find(|(_, present)| !present) {
        return Err(LoadError::MissingFunction { path: path.into(), plugin, function });
    }
    Ok(table)
}

fn descriptor(path: &Path, table: &ShimWasmPlugin) -> Result<Descriptor, LoadError> {
    let text = |s: ShimWasmStr, field| {
        // SAFETY: descriptor strings are static in the plugin.
        String::from_utf8(unsafe { s.as_bytes() }.to_vec())
            .map_err(|_| LoadError::BadDescriptor { path: path.into(), field })
    };
    Ok(Descriptor {
        engine_name: text(table.engine_name, "engine name")?,
        engine_version: text(table.engine_version, "engine version")?,
        plugin_version: text(table.plugin_version, "plugin version")?,
        abi_version: table.abi_version.into(),
        capabilities: Capabilities(table.capabilities),
    })
}

/// The host's log callback: plugin lines become `tracing` events with target `engine`.
unsafe extern "C" fn host_log(_ctx: *mut c_void, level: ShimWasmLogLevel, message: ShimWasmStr) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the plugin passes a view valid for the call.
        let message = String::from_utf8_lossy(unsafe { message.as_bytes() });
        let engine = ENGINE_NAME.get().map_or("plugin", String::as_str);
        match level {
            SHIM_WASM_LOG_ERROR => tracing::error!(target: "engine", engine, "{message}"),
            SHIM_WASM_LOG_WARN => tracing::warn!(target: "engine", engine, "{message}"),
            SHIM_WASM_LOG_INFO => tracing::info!(target: "engine", engine, "{message}"),
            SHIM_WASM_LOG_DEBUG => tracing::debug!(target: "engine", engine, "{message}"),
            _ => tracing::trace!(target: "engine", engine, "{message}"),
        }
    });
}
