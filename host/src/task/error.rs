//! Task errors and the one place they become ttrpc status codes.

use containerd_shim::protos::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task {0} not found")]
    NotFound(String),
    #[error("task {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    Internal(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
}

impl From<TaskError> for ttrpc::Error {
    fn from(e: TaskError) -> Self {
        let code = match &e {
            TaskError::NotFound(_) => Code::NOT_FOUND,
            TaskError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            TaskError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            TaskError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            TaskError::Unimplemented(_) => Code::UNIMPLEMENTED,
            TaskError::Internal(_) => Code::INTERNAL,
            TaskError::DeadlineExceeded(_) => Code::DEADLINE_EXCEEDED,
        };
        // One line: containerd and the CRI show it to the user as is.
        let message = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        match code {
            // Routine answers (kill after exit, lookups of deleted tasks).
            Code::NOT_FOUND | Code::ALREADY_EXISTS | Code::DEADLINE_EXCEEDED => tracing::debug!("{message}"),
            _ => tracing::error!("{message}"),
        }
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
    }
}

impl From<crate::container::lifecycle::LifecycleError> for TaskError {
    fn from(e: crate::container::lifecycle::LifecycleError) -> Self {
        Self::Internal(e.to_string())
    }
}

pub fn unimplemented(what: &str) -> ttrpc::Error {
    TaskError::Unimplemented(what.to_string()).into()
}
