//! The entry function, checked once for every plugin against the module's own sections
//! before the engine runs it: it must be an exported function that takes no parameters
//! and returns nothing or one i32 (the exit status). An engine that calls it blindly
//! would pass zeroes for parameters or write more results than it has room for.

use wasmparser::{CompositeInnerType, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

use super::PluginError;

/// Checks the entry function `entry` (`_start` when `None`) of the binary core module
/// `module`. Anything else (a component, text, a module that does not parse) is left to
/// the engine, whose own message says more.
pub fn check(module: &[u8], entry: Option<&str>) -> Result<(), PluginError> {
    let name = entry.unwrap_or("_start");
    match entry_type(module, name) {
        Ok(Some(Some(ty))) if ty.params().is_empty() && matches!(ty.results(), [] | [ValType::I32]) => Ok(()),
        Ok(Some(Some(_))) => Err(PluginError::invalid_argument(format!(
            "entry function `{name}` must take no parameters and return nothing or an i32"
        ))),
        Ok(Some(None)) => {
            Err(PluginError::invalid_argument(format!("the module exports no function `{name}`")))
        }
        Ok(None) | Err(_) => Ok(()),
    }
}

/// `None`: not a core module; `Some(None)`: no such exported function.
fn entry_type(module: &[u8], name: &str) -> wasmparser::Result<Option<Option<FuncType>>> {
    if !wasmparser::Parser::is_core_wasm(module) {
        return Ok(None);
    }
    let mut types: Vec<Option<FuncType>> = Vec::new();
    // The type of every function, imported ones first (the function index space).
    let mut functions: Vec<u32> = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload? {
            Payload::TypeSection(section) => {
                for group in section {
                    for sub in group?.into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(ty) => Some(ty),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    if let TypeRef::Func(ty) | TypeRef::FuncExact(ty) = import?.ty {
                        functions.push(ty);
                    }
                }
            }
            Payload::FunctionSection(section) => {
                for ty in section {
                    functions.push(ty?);
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export?;
                    if export.name == name && export.kind == ExternalKind::Func {
                        let ty = functions.get(export.index as usize).and_then(|t| types.get(*t as usize));
                        return Ok(Some(ty.cloned().flatten()));
                    }
                }
                return Ok(Some(None));
            }
            // Exports come before the code; a module without an export section has none.
            Payload::CodeSectionStart { .. } | Payload::End(_) => return Ok(Some(None)),
            _ => {}
        }
    }
    Ok(Some(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn entry_functions_are_checked_by_their_type() {
        let m = module(
            r#"(module
                (import "env" "f" (func (param i64)))
                (func (export "_start"))
                (func (export "code") (result i32) (i32.const 3))
                (func (export "param") (param i32))
                (func (export "three") (result i64 i64 i64) (i64.const 1) (i64.const 2) (i64.const 3))
                (func (export "float") (result f32) (f32.const 1))
                (memory (export "mem") 1))"#,
        );
        assert!(check(&m, None).is_ok());
        assert!(check(&m, Some("code")).is_ok());
        for bad in ["param", "three", "float"] {
            let e = check(&m, Some(bad)).unwrap_err();
            assert!(
                e.message.contains("must take no parameters and return nothing or an i32"),
                "{bad}: {e:?}"
            );
        }
        for missing in ["nope", "mem"] {
            let e = check(&m, Some(missing)).unwrap_err();
            assert_eq!(e.message, format!("the module exports no function `{missing}`"));
        }
        assert!(check(&module("(module)"), None).unwrap_err().message.contains("`_start`"));
        // Not a core module, or not parseable: the engine decides.
        assert!(check(b"(module)", None).is_ok());
        assert!(check(b"\0asm\x01\0\0\0\x07\xff", None).is_ok());
    }
}
