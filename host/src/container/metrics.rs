//! cgroup statistics as containerd's cgroup v1 `Metrics`, the message `ctr task metrics`
//! and the kubelet read from `Stats`.

use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use libcgroups::stats::{MemoryData, Stats};

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
