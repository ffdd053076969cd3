//! The error a plugin returns: a status code and a message for the operator.

use std::fmt;

use crate::Status;

/// A failed plugin operation: a [`Status`] and a message that says what is wrong and,
/// where it can, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub status: Status,
    pub message: String,
}

impl PluginError {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Status::InvalidArgument, message)
    }

    /// `feature` is not supported by `engine`.
    pub fn unsupported(engine: &str, feature: &str) -> Self {
        Self::new(Status::Unsupported, format!("engine {engine} does not support {feature}"))
    }

    pub fn invalid_module(message: impl Into<String>) -> Self {
        Self::new(Status::InvalidModule, message)
    }

    /// The module imports a function the engine does not provide: every engine refuses it
    /// before it runs with this line (wasmtime's own wording).
    pub fn unknown_import(module: &str, name: &str) -> Self {
        Self::invalid_module(format!(
            "cannot instantiate the module: unknown import: `{module}::{name}` has not been defined"
        ))
    }

    pub fn trap(message: impl Into<String>) -> Self {
        Self::new(Status::Trap, message)
    }

    pub fn io(message: impl Into<String>) -> Self {
        Self::new(Status::Io, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Status::Internal, message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for PluginError {}
