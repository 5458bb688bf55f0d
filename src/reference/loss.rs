//! (filled by the loss work)
