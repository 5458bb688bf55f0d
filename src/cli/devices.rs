//! `incept devices`: every adapter and the one incept would pick.

use incept::gpu;

pub fn run(adapter: Option<String>) -> incept::Result<()> {
    let all = gpu::list_adapters();
    if all.is_empty() {
        println!("no adapters found");
    }
    for (i, d) in all.iter().enumerate() {
        println!("[{i}] {d}");
    }
    let chosen = super::open_gpu(adapter)?;
    println!("\nselected: {}", chosen.name());
    Ok(())
}
