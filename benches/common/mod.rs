//! Helpers the benchmarks share (`mod common;` in a bench file).

/// Peak resident memory of a process (VmHWM, kB): one reading at the end
/// of a run is its high-water mark. `None` where /proc is not readable.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
