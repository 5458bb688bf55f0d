//! (filled by the matmul work)
