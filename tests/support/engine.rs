//! One engine plugin on a node of its own, run by the shim's `run` command: what the
//! tests that hold for every engine built here (`conformance.rs`, `wasi_parity.rs`) share.

use super::{Node, Ran, engines};

/// A node with one engine installed, run by `run`.
pub struct Engine {
    pub name: &'static str,
    pub node: Node,
}

/// Runs `body` once for every engine plugin built here, each on a node of its own.
pub fn each_engine(test: &str, body: impl Fn(&Engine)) {
    for (name, plugin) in engines() {
        let node = Node::new(&format!("{test}-{name}"));
        node.install(name, &plugin);
        body(&Engine { name, node });
    }
}

impl Engine {
    /// The capabilities the plugin declares (`engines --json`).
    pub fn capabilities(&self) -> Vec<String> {
        let ran = self.node.run(&["engines", "--json"]);
        let listing: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        let caps = listing["plugins"][0]["capabilities"].as_array().cloned().unwrap_or_default();
        caps.iter().filter_map(|c| c.as_str().map(String::from)).collect()
    }

    pub fn has(&self, capability: &str) -> bool {
        self.capabilities().iter().any(|c| c == capability)
    }

    /// `run --engine <this engine> ARGS...`.
    pub fn run(&self, args: &[&str]) -> Ran {
        let mut all = vec!["run", "--engine", self.name];
        all.extend_from_slice(args);
        self.node.run(&all)
    }
}
