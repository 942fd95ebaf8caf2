use std::fmt;

/// The closed set of error kinds. Every error in Berth has one, and each boundary
/// (gRPC code, HTTP status, UI code) maps it; nothing matches on error strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// All kinds, for exhaustive tests of the mappings.
    pub const ALL: [ErrorKind; 6] =
        [ErrorKind::NotFound, ErrorKind::AlreadyExists, ErrorKind::InvalidArgument, ErrorKind::Conflict, ErrorKind::Unavailable, ErrorKind::Internal];

    /// The gRPC status code for this kind.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::AlreadyExists => tonic::Code::AlreadyExists,
            ErrorKind::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorKind::Conflict => tonic::Code::FailedPrecondition,
            ErrorKind::Unavailable => tonic::Code::Unavailable,
            ErrorKind::Internal => tonic::Code::Internal,
        }
    }

    /// The kind a gRPC status code stands for (the inverse of [`ErrorKind::grpc_code`]).
    pub fn from_grpc_code(code: tonic::Code) -> ErrorKind {
        match code {
            tonic::Code::NotFound => ErrorKind::NotFound,
            tonic::Code::AlreadyExists => ErrorKind::AlreadyExists,
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorKind::InvalidArgument,
            tonic::Code::FailedPrecondition | tonic::Code::Aborted => ErrorKind::Conflict,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// The HTTP status code for this kind (Docker Engine API).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The stable code the UI receives, in snake case.
    pub fn ui_code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The gRPC metadata key that says which object a NotFound is about, so a client can
/// act on "the image is missing" (pull, then create again) without reading the message.
pub const MISSING_KEY: &str = "berth-missing";

/// Marks `status` as "the image is missing".
pub fn mark_missing_image(mut status: tonic::Status) -> tonic::Status {
    status.metadata_mut().insert(MISSING_KEY, tonic::metadata::MetadataValue::from_static("image"));
    status
}

/// Whether `status` says the image is missing (see [`mark_missing_image`]).
pub fn is_missing_image(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::NotFound && status.metadata().get(MISSING_KEY).is_some_and(|v| v == "image")
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ui_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_mapping_round_trips_every_kind() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_grpc_code(kind.grpc_code()), kind);
        }
    }

    #[test]
    fn ui_codes_are_distinct() {
        let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.ui_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn http_statuses_are_errors() {
        for kind in ErrorKind::ALL {
            assert!((400..600).contains(&kind.http_status()), "{kind}");
        }
    }
}
