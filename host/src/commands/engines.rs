//! `engines [--json]`: every plugin in the engine directories, described by an engine
//! process of its own, or the reason it is not used.

use std::path::Path;

use serde::Serialize;
use shimcfg::ShimConfig;

use crate::exit::Outcome;
use crate::plugins::discovery::{self, Verdict};
use crate::plugins::{PluginInfo, probe};

#[derive(Debug, Serialize)]
struct Listing {
    config: Option<String>,
    engine_dirs: Vec<DirEntry>,
    plugins: Vec<PluginEntry>,
}

#[derive(Debug, Serialize)]
struct DirEntry {
    path: String,
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct PluginEntry {
    file: String,
    /// "ok", "refused" or "shadowed".
    status: &'static str,
    #[serde(flatten)]
    info: Option<PluginInfo>,
    reason: Option<String>,
}

pub fn list(json: bool) -> Outcome {
    let config = ShimConfig::load()?;
    let (dirs, candidates) = discovery::scan(&config);
    let plugins = candidates
        .into_iter()
        .map(|c| {
            let file = c.file.display().to_string();
            let (status, info, reason) = match c.verdict {
                Verdict::Trusted => match probe::describe(&c.file) {
                    Ok(info) => ("ok", Some(info), None),
                    Err(reason) => ("refused", None, Some(reason)),
                },
                Verdict::Refused(reason) => ("refused", None, Some(reason)),
                Verdict::Shadowed(by) => ("shadowed", None, Some(format!("{} comes first", by.display()))),
            };
            PluginEntry { file, status, info, reason }
        })
        .collect();
    let listing = Listing {
        config: config.source.as_ref().map(|p| p.display().to_string()),
        engine_dirs: dirs
            .into_iter()
            .map(|d| DirEntry { path: d.dir.display().to_string(), problem: d.problem })
            .collect(),
        plugins,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print_table(&listing);
    }
    Ok(0)
}

fn print_table(listing: &Listing) {
    println!("config: {}", listing.config.as_deref().unwrap_or("(none; built-in defaults)"));
    for dir in &listing.engine_dirs {
        match &dir.problem {
            None => println!("engine dir: {}", dir.path),
            Some(problem) => println!("engine dir: {} ({problem})", dir.path),
        }
    }
    if listing.plugins.is_empty() {
        println!("no engine plugins found");
        return;
    }
    println!();
    println!("{:<12} {:<10} {:<12} {:<5} {:<56} FILE", "ENGINE", "STATUS", "VERSION", "ABI", "CAPABILITIES");
    for plugin in &listing.plugins {
        match &plugin.info {
            Some(info) => println!(
                "{:<12} {:<10} {:<12} {:<5} {:<56} {}",
                info.engine,
                plugin.status,
                info.engine_version,
                info.abi,
                info.capabilities.join(","),
                plugin.file
            ),
            None => println!(
                "{:<12} {:<10} {}",
                Path::new(&plugin.file).file_stem().map_or("-".into(), |s| s.to_string_lossy()),
                plugin.status,
                plugin.reason.as_deref().unwrap_or("")
            ),
        }
    }
}
