//! Adapter discovery and choice: `--adapter SUBSTRING` / `INCEPT_ADAPTER`
//! pick by name, otherwise the high-performance adapter wins.

use crate::error::{Error, Result};

/// Environment variable that selects an adapter by a substring of its name.
pub const ADAPTER_ENV: &str = "INCEPT_ADAPTER";

pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

pub(crate) fn all_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        // GL adapters lack the compute limits we need; keep them listed only if nothing else exists.
        .collect()
}

/// Picks an adapter: by case-insensitive name substring when given (argument
/// first, then `INCEPT_ADAPTER`), else discrete GPU > integrated > virtual > CPU.
pub(crate) fn choose(instance: &wgpu::Instance, wanted: Option<&str>) -> Result<wgpu::Adapter> {
    let env = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
    let wanted = wanted.map(str::to_owned).or(env);
    let adapters: Vec<_> = all_adapters(instance)
        .into_iter()
        .filter(|a| a.get_info().backend != wgpu::Backend::Gl || wanted.is_some())
        .collect();
    if adapters.is_empty() {
        return Err(Error::Adapter(
            "no Vulkan, Metal or DX12 adapter found; on a machine without a GPU install Mesa's lavapipe \
             (Debian: apt-get install mesa-vulkan-drivers, or run .ci/install-vulkan.sh)"
                .into(),
        ));
    }
    if let Some(w) = wanted {
        let needle = w.to_lowercase();
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&needle))
            .ok_or_else(|| {
                Error::Adapter(format!(
                    "no adapter name contains {w:?} (from --adapter or {ADAPTER_ENV}); available: {}",
                    names.join(", ")
                ))
            });
    }
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    Ok(adapters.into_iter().min_by_key(rank).expect("non-empty"))
}

/// A human-readable description of one adapter: the facts that matter for
/// this crate's kernels.
pub fn describe(adapter: &wgpu::Adapter) -> String {
    let info = adapter.get_info();
    let l = adapter.limits();
    let f = adapter.features();
    let mib = |b: u64| b as f64 / 1048576.0;
    format!(
        "{name}\n  backend: {backend:?}   type: {ty:?}   driver: {driver} {driver_info}\n  \
         max buffer: {mb:.0} MiB   max storage binding: {msb:.0} MiB   storage buffers/stage: {nsb}\n  \
         workgroup storage: {wgs} B   invocations/workgroup: {inv}   workgroup size: {wx}x{wy}x{wz}   workgroups/dim: {wpd}\n  \
         subgroup sizes: {smin}..{smax}   shader f16: {f16}   subgroups: {sg}   timestamps: {ts}\n  {coop}",
        name = info.name,
        backend = info.backend,
        ty = info.device_type,
        driver = info.driver,
        driver_info = info.driver_info,
        mb = mib(l.max_buffer_size),
        msb = mib(l.max_storage_buffer_binding_size),
        nsb = l.max_storage_buffers_per_shader_stage,
        wgs = l.max_compute_workgroup_storage_size,
        inv = l.max_compute_invocations_per_workgroup,
        wx = l.max_compute_workgroup_size_x,
        wy = l.max_compute_workgroup_size_y,
        wz = l.max_compute_workgroup_size_z,
        wpd = l.max_compute_workgroups_per_dimension,
        smin = info.subgroup_min_size,
        smax = info.subgroup_max_size,
        f16 = yes(f.contains(wgpu::Features::SHADER_F16)),
        sg = yes(f.contains(wgpu::Features::SUBGROUP)),
        ts = yes(f.contains(wgpu::Features::TIMESTAMP_QUERY)),
        coop = super::coop::describe(&super::coop::CoopCaps::of(adapter)),
    )
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Descriptions of every adapter wgpu can see, in enumeration order.
pub fn list() -> Vec<String> {
    all_adapters(&instance()).iter().map(describe).collect()
}
