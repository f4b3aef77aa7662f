//! Lambda's CPU as a function gets it from its first invocation on:
//! `memory / 1769 MB` of one vCPU, as a CFS quota per 20 ms period. A
//! cgroup (v1 `cpu.cfs_quota_us`, or v2 `cpu.max`) with that quota, which
//! the bench moves each function process into at its first `/next` poll:
//! init itself runs unthrottled, as on-demand init does.

use std::path::PathBuf;

const PERIOD_US: u64 = 20_000;
const FULL_VCPU_MB: u64 = 1769;

pub struct CpuShare {
    dir: PathBuf,
}

impl CpuShare {
    /// The share of `memory_mb`; `Err` says why cgroups cannot be used here.
    pub fn new(memory_mb: u64) -> Result<CpuShare, String> {
        let (period, quota) = (PERIOD_US.to_string(), (PERIOD_US * memory_mb / FULL_VCPU_MB).to_string());
        let name = format!("netbird-bench-{}-{memory_mb}", std::process::id());
        let write =
            |path: PathBuf, value: String| std::fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()));
        let (v1, v2) = (PathBuf::from("/sys/fs/cgroup/cpu"), PathBuf::from("/sys/fs/cgroup"));
        let (dir, limits) = if v1.join("cpu.cfs_quota_us").exists() {
            (v1.join(name), vec![("cpu.cfs_period_us", period), ("cpu.cfs_quota_us", quota)])
        } else if v2.join("cgroup.controllers").exists() {
            let _ = write(v2.join("cgroup.subtree_control"), "+cpu".into());
            (v2.join(name), vec![("cpu.max", format!("{quota} {period}"))])
        } else {
            return Err("no writable cpu cgroup (v1 /sys/fs/cgroup/cpu or v2 /sys/fs/cgroup)".into());
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (file, value) in limits {
            write(dir.join(file), value)?;
        }
        Ok(CpuShare { dir })
    }

    /// Moves process `pid`, every thread of it, under the quota.
    pub fn admit(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("moved into the cgroup");
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // Empty once its processes have exited; a group still in use stays.
        let _ = std::fs::remove_dir(&self.dir);
    }
}
