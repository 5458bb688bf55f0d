//! (filled by the batchnorm work)
