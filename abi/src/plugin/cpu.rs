//! A fingerprint of the host CPU's features, for engines whose compiled code may use
//! them: part of the artifact cache key, so code compiled on another CPU is never run.

use std::hash::{DefaultHasher, Hash, Hasher};

/// A hash of the CPU features code generators may use on this host.
pub fn cpu_fingerprint() -> u64 {
    let mut hasher = DefaultHasher::new();
    #[cfg(target_arch = "x86_64")]
    {
        let features = [
            std::is_x86_feature_detected!("sse3"),
            std::is_x86_feature_detected!("ssse3"),
            std::is_x86_feature_detected!("sse4.1"),
            std::is_x86_feature_detected!("sse4.2"),
            std::is_x86_feature_detected!("popcnt"),
            std::is_x86_feature_detected!("avx"),
            std::is_x86_feature_detected!("avx2"),
            std::is_x86_feature_detected!("bmi1"),
            std::is_x86_feature_detected!("bmi2"),
            std::is_x86_feature_detected!("lzcnt"),
            std::is_x86_feature_detected!("fma"),
            std::is_x86_feature_detected!("avx512f"),
        ];
        features.hash(&mut hasher);
    }
    #[cfg(target_arch = "aarch64")]
    {
        let features = [
            std::arch::is_aarch64_feature_detected!("lse"),
            std::arch::is_aarch64_feature_detected!("pauth"),
            std::arch::is_aarch64_feature_detected!("fp16"),
        ];
        features.hash(&mut hasher);
    }
    hasher.finish()
}

/// `<arch>-<fingerprint>`, the usual first part of an engine's cache key.
pub fn host_key() -> String {
    format!("{}-{:016x}", std::env::consts::ARCH, cpu_fingerprint())
}
