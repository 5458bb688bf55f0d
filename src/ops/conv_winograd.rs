//! Winograd forward convolution (`shaders/conv2d_winograd.wgsl`) for 3×3,
//! stride-1 windows, F(2×2, 3×3) or F(4×4, 3×3): filter transform, then per
//! batch chunk the input transform, α² batched GEMMs [tiles, cin]·[cin, cout]
//! (α = 4 or 6) and the output transform with the fused epilogue, written
//! into the output's channel slice.

use crate::error::Result;
use crate::gpu::{Gpu, Kernel, Work};
use crate::{kernel, kernel_params};
use crate::ops::conv::{Geometry, blocked_layout, grid};
use crate::tensor::{DType, Tensor};

kernel!(WINOGRAD2_FILTER, "conv2d_winograd.wgsl", "winograd2_filter", reads = 1, writes = 1, params = Params, workgroup = GROUP as u32);
kernel!(WINOGRAD2_INPUT, "conv2d_winograd.wgsl", "winograd2_input", reads = 1, writes = 1, params = Params, workgroup = GROUP as u32);
kernel!(WINOGRAD2_OUTPUT, "conv2d_winograd.wgsl", "winograd2_output", reads = 3, writes = 1, params = Params, workgroup = GROUP as u32);
kernel!(WINOGRAD4_FILTER, "conv2d_winograd.wgsl", "winograd4_filter", reads = 1, writes = 1, params = Params, workgroup = GROUP as u32);
kernel!(WINOGRAD4_INPUT, "conv2d_winograd.wgsl", "winograd4_input", reads = 1, writes = 1, params = Params, workgroup = GROUP as u32);
kernel!(WINOGRAD4_OUTPUT, "conv2d_winograd.wgsl", "winograd4_output", reads = 3, writes = 1, params = Params, workgroup = GROUP as u32);
kernel!(WINOGRAD_GEMM, "conv2d_winograd.wgsl", "winograd_gemm", reads = 2, writes = 1, params = Params);

/// Output tile size: F(m×m, 3×3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputTile {
    /// F(2×2, 3×3): 4×4 transformed tiles.
    Two,
    /// F(4×4, 3×3): 6×6 transformed tiles.
    Four,
}

impl OutputTile {
    /// Outputs per tile side.
    fn size(self) -> usize {
        match self {
            OutputTile::Two => 2,
            OutputTile::Four => 4,
        }
    }

    /// Points of the transformed tile: one GEMM each.
    fn points(self) -> usize {
        (self.size() + 2).pow(2)
    }

    /// Filter, input and output transforms.
    fn kernels(self) -> [&'static Kernel; 3] {
        match self {
            OutputTile::Two => [&WINOGRAD2_FILTER, &WINOGRAD2_INPUT, &WINOGRAD2_OUTPUT],
            OutputTile::Four => [&WINOGRAD4_FILTER, &WINOGRAD4_INPUT, &WINOGRAD4_OUTPUT],
        }
    }
}

/// Invocations per workgroup of the transforms.
const GROUP: usize = 64;
/// Tiles and channels of one GEMM invocation (`ROWS`, `4 * VECS` in the shader).
const GEMM_ROWS: usize = 4;
const GEMM_COLS: usize = 8;

kernel_params! {
/// Mirrors `Params` in `shaders/conv2d_winograd.wgsl`.
struct Params {
    batch_offset: u32,
    in_h: u32,
    in_w: u32,
    cin: u32,
    out_h: u32,
    out_w: u32,
    cout: u32,
    pad_top: u32,
    pad_left: u32,
    tiles_h: u32,
    tiles_w: u32,
    tiles: u32,
    cin4: u32,
    cout4: u32,
    col_blocks: u32,
    out_stride: u32,
    out_offset: u32,
    epilogue: u32,
}
}

/// `reads` = [x, w, scale, bias] as `conv::launch` binds them (absent
/// epilogue operands replaced by another tensor, their `epilogue` bit clear).
/// The caller has checked the geometry: a 3×3 window, stride 1.
pub(crate) fn launch(tile: OutputTile, g: &Geometry, reads: &[&Tensor; 4], out: &Tensor, out_stride: usize, out_offset: usize, epilogue: u32) -> Result<()> {
    let [x, w, scale, bias] = *reads;
    let gpu = x.gpu();
    let [filter_kernel, input_kernel, output_kernel] = tile.kernels();
    let points = tile.points();
    let (cin4, cout4) = (g.cin.div_ceil(4), g.cout.div_ceil(4));
    let (tiles_h, tiles_w) = (g.out_h.div_ceil(tile.size()), g.out_w.div_ceil(tile.size()));
    let chunk = images_per_chunk(gpu.limits().max_storage_buffer_binding_size, points * tiles_h * tiles_w * 4 * cin4.max(cout4), g.batch);
    let (row_groups, lanes_m, lanes_n) = blocked_layout(chunk * tiles_h * tiles_w, 4 * cout4);
    let col_blocks = (4 * cout4).div_ceil(GEMM_COLS * lanes_n);
    let mut params = Params {
        batch_offset: 0,
        in_h: g.in_h as u32,
        in_w: g.in_w as u32,
        cin: g.cin as u32,
        out_h: g.out_h as u32,
        out_w: g.out_w as u32,
        cout: g.cout as u32,
        pad_top: g.pad_top as u32,
        pad_left: g.pad_left as u32,
        tiles_h: tiles_h as u32,
        tiles_w: tiles_w as u32,
        tiles: 0,
        cin4: cin4 as u32,
        cout4: cout4 as u32,
        col_blocks: col_blocks as u32,
        out_stride: out_stride as u32,
        out_offset: out_offset as u32,
        epilogue,
    };
    let transform_groups = |n: usize| gpu.groups_1d(n.div_ceil(GROUP) as u32);

    let u = Tensor::empty(gpu, &[points, 4 * cin4, 4 * cout4], DType::F32)?;
    gpu.launch(filter_kernel, &[], &params, &[w], &[&u], transform_groups(16 * cin4 * cout4))?;

    let lanes = [("LANES_M", lanes_m as f64), ("LANES_N", lanes_n as f64), ("ROW_GROUPS", row_groups as f64)];
    for first in (0..g.batch).step_by(chunk) {
        let tiles = chunk.min(g.batch - first) * tiles_h * tiles_w;
        params.batch_offset = first as u32;
        params.tiles = tiles as u32;
        let v = Tensor::empty(gpu, &[points, tiles, 4 * cin4], DType::F32)?;
        gpu.launch(input_kernel, &[], &params, &[x], &[&v], transform_groups(tiles * cin4))?;
        let m = Tensor::empty(gpu, &[points, tiles, 4 * cout4], DType::F32)?;
        let gemm_groups = grid(gpu, tiles.div_ceil(GEMM_ROWS * row_groups * lanes_m), points * col_blocks);
        // The profile counts the multiply-adds the GEMM does (α² products of
        // [tiles, 4·cin4]·[4·cin4, 4·cout4]), not those of the direct conv it replaces.
        let gemm = Work::new(
            2.0 * (points * tiles) as f64 * (4 * cin4) as f64 * (4 * cout4) as f64,
            (v.byte_size() + u.byte_size() + m.byte_size()) as f64,
        );
        gpu.with_work(gemm).launch(&WINOGRAD_GEMM, &lanes, &params, &[&v, &u], &[&m], gemm_groups)?;
        gpu.launch(output_kernel, &[], &params, &[&m, scale, bias], &[out], transform_groups(tiles * cout4))?;
    }
    Ok(())
}

/// Whether the transformed filter [points, 4·cin4, 4·cout4] fits a storage
/// binding (the batch is chunked, the filter is not).
pub(crate) fn filter_fits(gpu: &Gpu, tile: OutputTile, g: &Geometry) -> bool {
    (tile.points() * 16 * g.cin.div_ceil(4) * g.cout.div_ceil(4) * 4) as u64 <= gpu.limits().max_storage_buffer_binding_size
}

/// Images per batch chunk when one image's transformed input or output (the
/// larger, `image_floats` f32s) must fit a storage binding of
/// `binding_bytes`: at least 1 (an image too large for a binding is then
/// reported by the binding check of `Gpu::launch`), at most `batch` (≥ 1).
fn images_per_chunk(binding_bytes: u64, image_floats: usize, batch: usize) -> usize {
    ((binding_bytes / (4 * image_floats as u64)) as usize).clamp(1, batch)
}

#[cfg(test)]
mod tests {
    use super::images_per_chunk;
    use crate::ops::conv::{blocked_lanes, blocked_layout};

    #[test]
    fn blocked_lanes_waste_least() {
        assert_eq!(blocked_lanes(800, 192), (8, 8));
        assert_eq!(blocked_lanes(1024, 192), (64, 1));
        // 2816 rows with 64 lanes along tiles: 8.6 % more than 2592, kept.
        assert_eq!(blocked_lanes(2592, 64), (64, 1));
        assert_eq!(blocked_lanes(392, 96), (16, 4));
        // Few tiles: the register-blocked rule (32 row lanes for 128 tiles).
        assert_eq!(blocked_lanes(128, 384), (32, 1));
    }

    #[test]
    fn two_row_groups_where_they_waste_little() {
        // 35×35 at batch 32: 64 lanes of 8 rows, 0.1 % clamped.
        assert_eq!(blocked_layout(39200, 64), (2, 64, 1));
        // 3×3 at batch 32 (288 rows): 8 × 8 lanes of 8 rows compute 320 rows, against 288 with 4-row lanes.
        assert_eq!(blocked_layout(288, 192), (2, 8, 8));
        // 1×1 at batch 32: two groups would compute twice the rows.
        assert_eq!(blocked_layout(32, 192), (1, 8, 1));
    }

    #[test]
    fn chunks_fit_the_binding() {
        // 299² batch 32, the 147² 3×3 conv 32 → 64: 74² tiles × 16 points × 64 channels per image.
        let image = 16 * 74 * 74 * 64;
        let chunk = images_per_chunk(128 << 20, image, 32);
        assert!(chunk * image * 4 <= 128 << 20 && (chunk + 1) * image * 4 > 128 << 20, "{chunk}");
        assert_eq!(images_per_chunk(128 << 20, 1000, 32), 32);
        assert_eq!(images_per_chunk(1000, 1000, 32), 1);
    }
}
