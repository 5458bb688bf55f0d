//! The crate's error type: every failure names what was wrong (tensor, file,
//! flag, limit) and what was expected.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// No adapter matched, or the device could not be created.
    Adapter(String),
    /// A buffer or binding larger than the adapter allows.
    Limit { what: String, bytes: u64, limit_name: &'static str, limit: u64 },
    /// The device ran out of memory while allocating `bytes`.
    OutOfMemory { what: String, bytes: u64 },
    /// The device was lost (driver reset, hang, removal).
    DeviceLost(String),
    /// A wgpu validation or internal error reported asynchronously.
    Gpu(String),
    /// Shapes or arguments that do not fit an op.
    Shape(String),
    /// A file could not be read or written, or had the wrong content.
    Io { path: String, reason: String },
    /// Anything else that a caller passed wrongly.
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Adapter(m) => write!(f, "GPU adapter: {m}"),
            Error::Limit { what, bytes, limit_name, limit } => write!(
                f,
                "{what} needs {bytes} bytes ({:.1} MiB) but the adapter's {limit_name} is {limit} bytes ({:.1} MiB); use a smaller batch or image size",
                *bytes as f64 / 1048576.0,
                *limit as f64 / 1048576.0
            ),
            Error::OutOfMemory { what, bytes } => write!(
                f,
                "out of GPU memory allocating {bytes} bytes ({:.1} MiB) for {what}",
                *bytes as f64 / 1048576.0
            ),
            Error::DeviceLost(m) => write!(f, "GPU device lost: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::Io { path, reason } => write!(f, "{path}: {reason}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for a shape error with a formatted message.
#[macro_export]
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::error::Error::Shape(format!($($arg)*)) };
}
