//! Reductions (`shaders/reduce.wgsl`): column sums of a matrix (bias
//! gradients) and the sum or mean of a whole tensor, as a tree of
//! barrier-free partial-sum passes.

use crate::error::{Error, Result};
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(SUM_ROWS_PARTIAL, "reduce.wgsl", "sum_rows_partial", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 64;

/// Rows added by one invocation per pass.
const CHUNK: usize = 256;
/// Columns of the matrix a flat vector is viewed as by `sum_all`.
const FLAT_COLS: usize = 256;

kernel_params! {
    struct Params {
        rows: u32,
        cols: u32,
        numel: u32,
        chunk: u32,
        chunks: u32,
        scale: f32,
    }
}

/// Column sums: `[M, N]` → `[N]`. A tensor of any rank ≥ 1 is viewed as
/// `[numel / N, N]` with N its last dimension.
pub fn sum_rows(x: &Tensor) -> Result<Tensor> {
    check_input("sum_rows", x)?;
    let cols = *x
        .shape()
        .last()
        .ok_or_else(|| Error::Shape("sum_rows: expected a tensor of rank ≥ 1, got a scalar shape []".into()))?;
    column_sums(x, x.numel().div_ceil(cols), cols, 1.0)
}

/// The sum of all elements, as a `[1]` tensor.
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    check_input("sum_all", x)?;
    flat_sum(x, 1.0)
}

/// The mean of all elements, as a `[1]` tensor.
pub fn mean_all(x: &Tensor) -> Result<Tensor> {
    check_input("mean_all", x)?;
    flat_sum(x, 1.0 / x.numel() as f32)
}

fn check_input(op: &str, x: &Tensor) -> Result<()> {
    if x.dtype() != DType::F32 {
        return Err(Error::Invalid(format!(
            "{op}: expected an f32 tensor, got {:?} of shape {:?}",
            x.dtype(),
            x.shape()
        )));
    }
    if x.numel() == 0 {
        return Err(Error::Shape(format!("{op}: tensor of shape {:?} is empty", x.shape())));
    }
    Ok(())
}

/// Sums a flat tensor: first as a padded `[len / 256, 256]` matrix, then the
/// 256 column sums as one column.
fn flat_sum(x: &Tensor, scale: f32) -> Result<Tensor> {
    let cols = x.numel().min(FLAT_COLS);
    let partial = column_sums(x, x.numel().div_ceil(cols), cols, if cols == 1 { scale } else { 1.0 })?;
    if cols == 1 {
        return Ok(partial);
    }
    column_sums(&partial, cols, 1, scale)
}

/// Sums `x`, viewed as `[rows, cols]` (elements past its end read as 0),
/// over the rows, into a `[cols]` tensor multiplied by `scale`.
fn column_sums(x: &Tensor, rows: usize, cols: usize, scale: f32) -> Result<Tensor> {
    let gpu = x.gpu();
    let (mut current, mut rows, mut numel) = (x.clone(), rows, x.numel());
    loop {
        let chunks = rows.div_ceil(CHUNK);
        let last = chunks == 1;
        let shape = if last { vec![cols] } else { vec![chunks, cols] };
        let out = Tensor::empty(gpu, &shape, DType::F32)?;
        let p = Params {
            rows: rows as u32,
            cols: cols as u32,
            numel: numel as u32,
            chunk: CHUNK as u32,
            chunks: chunks as u32,
            scale: if last { scale } else { 1.0 },
        };
        let groups = gpu.groups_1d(((chunks * cols) as u32).div_ceil(WORKGROUP));
        gpu.launch(&SUM_ROWS_PARTIAL, &[], &p, &[&current], &[&out], groups)?;
        if last {
            return Ok(out);
        }
        (current, rows, numel) = (out, chunks, chunks * cols);
    }
}
