//! The config `burst` runs with when given none: `examples/quickstart.toml`,
//! compiled in so the quickstart and the default cannot drift apart.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::ConfigError;
use super::load::load_str;
use super::schema::Config;

pub const EMBEDDED_TOML: &str = include_str!("../../../examples/quickstart.toml");

/// What errors call the embedded file.
pub const EMBEDDED_NAME: &str = "<embedded examples/quickstart.toml>";

/// The embedded default, parsed and checked, without environment overrides
/// (apply those with `load_str(EMBEDDED_TOML, ..., &env_overrides())`). A unit
/// test keeps it valid, but callers still handle the error: no panics.
pub fn embedded_default() -> Result<Config, ConfigError> {
    load_str(EMBEDDED_TOML, Path::new(EMBEDDED_NAME), &BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate;
    use burst_providers::ProviderKind;

    #[test]
    fn embedded_default_parses_and_validates() {
        let config = match embedded_default() {
            Ok(c) => c,
            Err(e) => panic!("embedded default is broken:\n{e}"),
        };
        assert!(validate(&config).is_ok());
        let pool = &config.pools["local"];
        assert_eq!(pool.provider.kind(), ProviderKind::Local);
        assert_eq!(pool.labels, ["linux", "local"]);
        assert_eq!(
            (
                pool.max_workers.get(),
                pool.min_idle,
                pool.max_starting.get()
            ),
            (4, 0, 4)
        );
        assert_eq!(pool.idle_timeout, std::time::Duration::from_secs(10));
        assert_eq!(pool.start_timeout, std::time::Duration::from_secs(30));
        assert_eq!(config.master.http_listen.to_string(), "127.0.0.1:8480");
        assert_eq!(config.master.grpc_listen.to_string(), "127.0.0.1:8481");
        assert_eq!(config.master.state_dir, std::path::PathBuf::from(".burst"));
        let hello = &config.builders[0];
        assert_eq!(hello.name, "hello");
        assert_eq!(hello.matrix["greeting"], ["hello", "bonjour"]);
        let steps: Vec<&str> = hello.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(steps, ["greet", "system"]);
    }

    #[test]
    fn config_crate_and_toml_agree_on_the_default() {
        let strict: Result<Config, _> = toml::from_str(EMBEDDED_TOML);
        assert_eq!(strict.ok(), embedded_default().ok());
    }
}
