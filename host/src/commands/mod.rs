//! The operator subcommands. Each resolves what it needs from the config, discovers the
//! plugin, and hands engine work to an engine process (see `engine_process`).

pub mod compile;
pub mod engines;
pub mod run;
pub mod version;

use std::path::PathBuf;

use shimcfg::{EngineName, ShimConfig};

use crate::cli::EngineArgs;
use crate::exit::{Failure, SHIM_FAILURE};
use crate::plugins::discovery;

/// The engine to use, its plugin file, and its settings as TOML text.
pub struct ChosenEngine {
    pub name: EngineName,
    pub plugin: PathBuf,
    pub settings: String,
}

/// `--engine`, else the config's `default_engine`; settings from the config's
/// `[engines.NAME]` table overridden by `--setting KEY=VALUE`.
pub fn choose_engine(args: &EngineArgs, config: &ShimConfig) -> Result<ChosenEngine, Failure> {
    let name = match (&args.engine, &config.default_engine) {
        (Some(name), _) => name.parse::<EngineName>()?,
        (None, Some(default)) => default.clone(),
        (None, None) => {
            return Err(Failure::new(
                SHIM_FAILURE,
                format!(
                    "no engine chosen: pass --engine NAME or set default_engine in the config file (plugins present: {})",
                    discovery::installed_names(config)
                ),
            ));
        }
    };
    let plugin = discovery::find(config, &name)?;
    let mut table = config.engine_settings(&name);
    for setting in &args.settings {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| Failure::new(SHIM_FAILURE, format!("--setting {setting:?} is not KEY=VALUE")))?;
        table.insert(key.trim().to_string(), toml_value(value));
    }
    Ok(ChosenEngine { name, plugin, settings: toml::to_string(&table)? })
}

/// A TOML literal (`3`, `true`, `"x"`), or else the text as a string.
fn toml_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_values_are_toml_or_strings() {
        assert_eq!(toml_value("3"), toml::Value::Integer(3));
        assert_eq!(toml_value("true"), toml::Value::Boolean(true));
        assert_eq!(toml_value("\"none\""), toml::Value::String("none".into()));
        assert_eq!(toml_value("none"), toml::Value::String("none".into()));
    }
}
