//! cgroup statistics as containerd's `Metrics` messages, which `ctr task metrics` and the
//! kubelet read from `Stats`: `io.containerd.cgroups.v1.Metrics` on cgroup v1 (and hybrid)
//! hosts, `io.containerd.cgroups.v2.Metrics` on unified (v2) hosts.

use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::MessageDyn;
use libcgroups::common::{CgroupSetup, get_cgroup_setup};
use libcgroups::stats::{MemoryData, Stats};

/// The metrics message for this host's cgroup setup.
pub fn for_host(stats: &Stats) -> Box<dyn MessageDyn> {
    match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => Box::new(v2_metrics(stats)),
        _ => Box::new(v1_metrics(stats)),
    }
}

pub fn v1_metrics(stats: &Stats) -> Metrics {
    let mut metrics = Metrics::new();

    let mut pids = PidsStat::new();
    pids.current = stats.pids.current;
    pids.limit = stats.pids.limit;
    metrics.pids = Some(pids).into();

    let mut usage = CPUUsage::new();
    usage.total = stats.cpu.usage.usage_total;
    usage.kernel = stats.cpu.usage.usage_kernel;
    usage.user = stats.cpu.usage.usage_user;
    usage.per_cpu = stats.cpu.usage.per_core_usage_total.clone();
    let mut throttling = Throttle::new();
    throttling.periods = stats.cpu.throttling.periods;
    throttling.throttled_periods = stats.cpu.throttling.throttled_periods;
    throttling.throttled_time = stats.cpu.throttling.throttled_time;
    let mut cpu = CPUStat::new();
    cpu.usage = Some(usage).into();
    cpu.throttling = Some(throttling).into();
    metrics.cpu = Some(cpu).into();

    let mut memory = MemoryStat::new();
    let stat = |key: &str| stats.memory.stats.get(key).copied().unwrap_or_default();
    memory.cache = stats.memory.cache;
    memory.rss = stat("rss");
    memory.rss_huge = stat("rss_huge");
    memory.mapped_file = stat("mapped_file");
    memory.dirty = stat("dirty");
    memory.writeback = stat("writeback");
    memory.pg_fault = stat("pgfault");
    memory.pg_maj_fault = stat("pgmajfault");
    memory.inactive_anon = stat("inactive_anon");
    memory.active_anon = stat("active_anon");
    memory.inactive_file = stat("inactive_file");
    memory.active_file = stat("active_file");
    memory.unevictable = stat("unevictable");
    memory.total_cache = stat("total_cache");
    memory.total_rss = stat("total_rss");
    memory.usage = Some(entry(&stats.memory.memory)).into();
    memory.swap = Some(entry(&stats.memory.memswap)).into();
    memory.kernel = Some(entry(&stats.memory.kernel)).into();
    memory.kernel_tcp = Some(entry(&stats.memory.kernel_tcp)).into();
    metrics.memory = Some(memory).into();
    metrics
}

fn entry(data: &MemoryData) -> MemoryEntry {
    let mut entry = MemoryEntry::new();
    entry.limit = data.limit;
    entry.usage = data.usage;
    entry.max = data.max_usage;
    entry.failcnt = data.fail_count;
    entry
}

/// libcgroups reports CPU time in nanoseconds; cgroup v2 metrics are in microseconds.
pub fn v2_metrics(stats: &Stats) -> v2::Metrics {
    let mut metrics = v2::Metrics::new();
    let mut pids = v2::PidsStat::new();
    pids.current = stats.pids.current;
    pids.limit = stats.pids.limit;
    metrics.pids = Some(pids).into();

    let mut cpu = v2::CPUStat::new();
    cpu.usage_usec = stats.cpu.usage.usage_total / 1000;
    cpu.user_usec = stats.cpu.usage.usage_user / 1000;
    cpu.system_usec = stats.cpu.usage.usage_kernel / 1000;
    cpu.nr_periods = stats.cpu.throttling.periods;
    cpu.nr_throttled = stats.cpu.throttling.throttled_periods;
    cpu.throttled_usec = stats.cpu.throttling.throttled_time / 1000;
    metrics.cpu = Some(cpu).into();

    let mut memory = v2::MemoryStat::new();
    let stat = |key: &str| stats.memory.stats.get(key).copied().unwrap_or_default();
    memory.anon = stat("anon");
    memory.file = stat("file");
    memory.kernel_stack = stat("kernel_stack");
    memory.slab = stat("slab");
    memory.sock = stat("sock");
    memory.shmem = stat("shmem");
    memory.file_mapped = stat("file_mapped");
    memory.file_dirty = stat("file_dirty");
    memory.inactive_anon = stat("inactive_anon");
    memory.active_anon = stat("active_anon");
    memory.inactive_file = stat("inactive_file");
    memory.active_file = stat("active_file");
    memory.unevictable = stat("unevictable");
    memory.pgfault = stat("pgfault");
    memory.pgmajfault = stat("pgmajfault");
    memory.usage = stats.memory.memory.usage;
    memory.usage_limit = stats.memory.memory.limit;
    memory.max_usage = stats.memory.memory.max_usage;
    memory.swap_usage = stats.memory.memswap.usage;
    memory.swap_limit = stats.memory.memswap.limit;
    metrics.memory = Some(memory).into();
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        let mut stats = Stats::default();
        stats.pids.current = 3;
        stats.pids.limit = 100;
        stats.cpu.usage.usage_total = 5_000_000;
        stats.cpu.usage.usage_user = 3_000_000;
        stats.cpu.usage.usage_kernel = 2_000_000;
        stats.memory.memory.usage = 4096;
        stats.memory.memory.limit = 1 << 20;
        stats.memory.stats.insert("rss".into(), 2048);
        stats.memory.stats.insert("anon".into(), 1024);
        stats
    }

    #[test]
    fn v1_and_v2_carry_the_same_figures() {
        let v1 = v1_metrics(&sample());
        assert_eq!(v1.pids.current, 3);
        assert_eq!(v1.cpu.usage.total, 5_000_000);
        assert_eq!(v1.memory.usage.usage, 4096);
        assert_eq!(v1.memory.usage.limit, 1 << 20);
        assert_eq!(v1.memory.rss, 2048);

        let v2 = v2_metrics(&sample());
        assert_eq!(v2.pids.limit, 100);
        assert_eq!((v2.cpu.usage_usec, v2.cpu.user_usec, v2.cpu.system_usec), (5000, 3000, 2000));
        assert_eq!((v2.memory.usage, v2.memory.usage_limit, v2.memory.anon), (4096, 1 << 20, 1024));
    }
}
