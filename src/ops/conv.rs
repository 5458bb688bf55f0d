//! (filled by the conv work)
