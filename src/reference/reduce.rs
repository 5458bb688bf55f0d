//! (filled by the reduce work)
