//! (filled by the dropout work)
