//! (filled by the pool work)
