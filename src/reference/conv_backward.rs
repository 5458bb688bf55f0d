//! (filled by the conv_backward work)
