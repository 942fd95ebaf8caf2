//! Berth Desktop as a library: what its views show ([`rows`]), what they do to the
//! engine ([`engine`]), and the names of its commands and events ([`names`]). The UI's
//! TypeScript types are generated from these and from [`crate::vm::VmState`] (`cargo
//! xtask codegen`), and checked for drift in the unit tier.

pub mod browser;
pub mod engine;
pub mod inspect;
pub mod names;
pub mod objects;
pub mod pulls;
pub mod rows;
pub mod settings;
pub mod streams;

use serde::{Deserialize, Serialize};

/// An error as the UI sees it: a stable code from the closed set of kinds, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct UiError {
    /// One of: not_found, already_exists, invalid_argument, conflict, unavailable, internal.
    pub code: String,
    pub message: String,
}

impl UiError {
    pub fn new(kind: berth_proto::ErrorKind, message: impl Into<String>) -> UiError {
        UiError { code: kind.ui_code().to_owned(), message: message.into() }
    }

    /// A refusal of what the window sent.
    pub fn invalid(message: impl Into<String>) -> UiError {
        UiError::new(berth_proto::ErrorKind::InvalidArgument, message)
    }

    /// An error with its chain of causes, as the window shows it.
    pub fn from_error(kind: berth_proto::ErrorKind, err: &dyn std::error::Error) -> UiError {
        UiError::new(kind, berth_proto::error_chain(err))
    }
}

/// The engine's refusal of `operation`, in its kind and words.
pub(crate) fn status(operation: &str) -> impl Fn(tonic::Status) -> UiError + '_ {
    move |s| UiError::new(berth_proto::ErrorKind::from_grpc_code(s.code()), format!("{operation}: {}", s.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_the_kind() {
        let e = UiError::new(berth_proto::ErrorKind::Conflict, "busy");
        assert_eq!(serde_json::to_value(&e).expect("json"), serde_json::json!({"code": "conflict", "message": "busy"}));
    }
}
