//! (filled by the optim work)
