//! Which world a binary component implements, read from its top-level export section
//! without compiling it: a WASI 0.2 command (`wasi:cli/run`) or an HTTP handler
//! (`wasi:http/incoming-handler`, the `wasi:http/proxy` world), which the shim serves
//! through ABI 1.2's `serve`. Nested modules and components are skipped unread, so a
//! mapped file is only touched at its section headers.

use wasmparser::{Chunk, Parser, Payload};

/// The interface a component exports to be served over HTTP (any 0.2 version).
pub const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2";
/// The interface a WASI 0.2 command exports.
pub const CLI_RUN: &str = "wasi:cli/run@0.2";

/// What a component's top-level exports make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Exports `wasi:cli/run`: run to completion (also when it exports a handler too,
    /// as `wasmtime run` does).
    Command,
    /// Exports `wasi:http/incoming-handler` and not `wasi:cli/run`: served.
    HttpHandler,
    /// Neither (or not a binary component): whatever the engine makes of it.
    Other,
}

/// The world of the binary component `bytes`; [`World::Other`] for anything that is not
/// one, or that does not parse as far as its exports.
pub fn world(bytes: &[u8]) -> World {
    let (mut command, mut handler) = (false, false);
    let mut parser = Parser::new(0);
    let mut data = bytes;
    let mut depth = 0usize;
    loop {
        let Ok(Chunk::Parsed { consumed, payload }) = parser.parse(data, true) else { return World::Other };
        let skip = match &payload {
            Payload::Version { encoding: wasmparser::Encoding::Module, .. } if depth == 0 => {
                return World::Other;
            }
            Payload::ModuleSection { unchecked_range, .. }
            | Payload::ComponentSection { unchecked_range, .. } => {
                // The parent parser resumes after the nested one; never fed its bytes.
                usize::try_from(unchecked_range.end - unchecked_range.start).unwrap_or(usize::MAX)
            }
            Payload::ComponentExportSection(exports) => {
                for export in exports.clone().into_iter().flatten() {
                    command |= export.name.name.starts_with(CLI_RUN);
                    handler |= export.name.name.starts_with(HTTP_HANDLER);
                }
                0
            }
            Payload::End(_) => break,
            _ => 0,
        };
        depth = 1;
        // A nested section's length is the file's word, unchecked: past the end is no
        // component.
        let Some(rest) = consumed.checked_add(skip).and_then(|end| data.get(end..)) else {
            return World::Other;
        };
        data = rest;
    }
    match (command, handler) {
        (true, _) => World::Command,
        (false, true) => World::HttpHandler,
        (false, false) => World::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(exports: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component
                 (core module $m (func (export "f")))
                 (core instance $i (instantiate $m))
                 (func $f (canon lift (core func $i "f")))
                 (instance $inst (export "handle" (func $f)))
                 {exports})"#
        ))
        .unwrap()
    }

    #[test]
    fn handlers_are_told_from_commands() {
        let handler = component(r#"(export "wasi:http/incoming-handler@0.2.6" (instance $inst))"#);
        assert_eq!(world(&handler), World::HttpHandler);
        let both = component(
            r#"(export "wasi:http/incoming-handler@0.2.0" (instance $inst))
               (export "wasi:cli/run@0.2.0" (instance $inst))"#,
        );
        assert_eq!(world(&both), World::Command);
        assert_eq!(world(&component("")), World::Other);
        assert_eq!(world(&wat::parse_str("(module)").unwrap()), World::Other);
        assert_eq!(world(b"\0asm\x0d\0\x01\0garbage"), World::Other);
        // A nested core module claiming 65536 bytes of a 12-byte file.
        assert_eq!(world(b"\0asm\x0d\0\x01\0\x01\x80\x80\x04"), World::Other);
        let mut cut = handler.clone();
        cut.truncate(handler.len() - 3);
        assert_eq!(world(&cut), World::Other);
        assert_eq!(world(b""), World::Other);
    }
}
