/* The C side of the layout check: the same sizes and offsets src/ffi.rs asserts in
 * Rust. Compiled (not run) by abi/tests/header.rs. */
#include <stddef.h>
#include "shim_wasm_abi.h"

#define SIZE(type, n) _Static_assert(sizeof(type) == (n), "sizeof " #type)
#define OFFSET(type, field, n) _Static_assert(offsetof(type, field) == (n), #type "." #field)

#if UINTPTR_MAX == UINT64_MAX
SIZE(ShimWasmAbiVersion, 8);
SIZE(ShimWasmStr, 16);
SIZE(ShimWasmBytes, 16);
SIZE(ShimWasmOwnedBytes, 16);
SIZE(ShimWasmErrorBuf, 24);
OFFSET(ShimWasmErrorBuf, len, 16);
SIZE(ShimWasmPreopen, 32);
OFFSET(ShimWasmPreopen, guest_path, 16);

SIZE(ShimWasmHostApi, 32);
OFFSET(ShimWasmHostApi, abi_version, 8);
OFFSET(ShimWasmHostApi, host_ctx, 16);
OFFSET(ShimWasmHostApi, log, 24);

SIZE(ShimWasmRunRequest, 120);
OFFSET(ShimWasmRunRequest, module, 8);
OFFSET(ShimWasmRunRequest, entry, 24);
OFFSET(ShimWasmRunRequest, args, 40);
OFFSET(ShimWasmRunRequest, args_len, 48);
OFFSET(ShimWasmRunRequest, env, 56);
OFFSET(ShimWasmRunRequest, env_len, 64);
OFFSET(ShimWasmRunRequest, preopens, 72);
OFFSET(ShimWasmRunRequest, preopens_len, 80);
OFFSET(ShimWasmRunRequest, stdin_fd, 88);
OFFSET(ShimWasmRunRequest, stdout_fd, 92);
OFFSET(ShimWasmRunRequest, stderr_fd, 96);
OFFSET(ShimWasmRunRequest, cwd, 104);

SIZE(ShimWasmServeRequest, 40);
OFFSET(ShimWasmServeRequest, run, 8);
OFFSET(ShimWasmServeRequest, listen, 16);
OFFSET(ShimWasmServeRequest, stop_fd, 32);

SIZE(ShimWasmPlugin, 136);
OFFSET(ShimWasmPlugin, abi_version, 8);
OFFSET(ShimWasmPlugin, engine_name, 16);
OFFSET(ShimWasmPlugin, engine_version, 32);
OFFSET(ShimWasmPlugin, plugin_version, 48);
OFFSET(ShimWasmPlugin, capabilities, 64);
OFFSET(ShimWasmPlugin, engine_new, 72);
OFFSET(ShimWasmPlugin, engine_free, 80);
OFFSET(ShimWasmPlugin, detect, 88);
OFFSET(ShimWasmPlugin, cache_key, 96);
OFFSET(ShimWasmPlugin, precompile, 104);
OFFSET(ShimWasmPlugin, run, 112);
OFFSET(ShimWasmPlugin, bytes_free, 120);
OFFSET(ShimWasmPlugin, serve, 128);
#endif

/* The entry prototype must match the function-pointer type. */
ShimWasmPluginEntryFn entry_type_check(void);
ShimWasmPluginEntryFn entry_type_check(void) { return shim_wasm_plugin_entry; }
