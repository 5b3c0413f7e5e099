//! The plugin-side error: the WIT `error` variant, with constructors that read well.

use crate::bindings::ferry::plugin::types::Error as WitError;

/// An error a plugin reports on purpose (the host tells it from a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Asked for a table or column that was not declared.
    Denied(String),
    /// A declared table or column is missing from the source.
    NotFound(String),
    /// A malformed request.
    InvalidArgument(String),
    /// A source value does not fit its field.
    BadData(String),
    /// A host limit was reached.
    LimitExceeded(String),
    /// Anything else.
    Other(String),
}

pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    pub fn bad_data(message: impl Into<String>) -> Self {
        Error::BadData(message.into())
    }

    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }

    pub(crate) fn into_wit(self) -> WitError {
        match self {
            Error::Denied(m) => WitError::Denied(m),
            Error::NotFound(m) => WitError::NotFound(m),
            Error::InvalidArgument(m) => WitError::InvalidArgument(m),
            Error::BadData(m) => WitError::BadData(m),
            Error::LimitExceeded(m) => WitError::LimitExceeded(m),
            Error::Other(m) => WitError::Other(m),
        }
    }

    /// The kit's error for one the host returned (for plugins calling the bindings directly).
    pub fn from_wit(e: WitError) -> Self {
        match e {
            WitError::Denied(m) => Error::Denied(m),
            WitError::NotFound(m) => Error::NotFound(m),
            WitError::InvalidArgument(m) => Error::InvalidArgument(m),
            WitError::BadData(m) => Error::BadData(m),
            WitError::LimitExceeded(m) => Error::LimitExceeded(m),
            WitError::Other(m) => Error::Other(m),
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (kind, m) = match self {
            Error::Denied(m) => ("denied", m),
            Error::NotFound(m) => ("not found", m),
            Error::InvalidArgument(m) => ("invalid argument", m),
            Error::BadData(m) => ("bad data", m),
            Error::LimitExceeded(m) => ("limit exceeded", m),
            Error::Other(m) => ("error", m),
        };
        write!(f, "{kind}: {m}")
    }
}

impl std::error::Error for Error {}
