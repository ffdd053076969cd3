//! The container's environment (`process.env`) as Create takes it: the entries that
//! libcontainer cannot set are refused with one line before the container exists (it
//! would panic in the init process). The wasm side gives an entry without `=` an empty
//! value ([`super::executor`]).

/// Entries libcontainer cannot set: an empty entry, an empty name, or a NUL byte. An entry
/// without `=` is a name with an empty value, as libcontainer takes it for native programs
/// (runc refuses it).
pub fn check(env: &[String]) -> Result<(), String> {
    match env.iter().find(|e| e.is_empty() || e.starts_with('=') || e.contains('\0')) {
        None => Ok(()),
        Some(bad) => Err(format!(
            "invalid environment variable {bad:?} in the container's process.env: each entry is \
             NAME=VALUE with a non-empty NAME and no NUL byte"
        )),
    }
}
