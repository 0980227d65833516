//! The one list of providers. Everything that depends on which providers
//! exist is generated from it: the `provider = "…"` values, reading a pool's
//! section, validation and construction.

use std::sync::Arc;

use serde::de::MapAccess;
use serde::Deserialize;

use crate::config::{Context, Path, Problem, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

macro_rules! registry {
    ($( $(#[$attr:meta])* $variant:ident($config:ty) = $name:literal; )*) => {
        /// Which provider a pool uses: its `provider` key, and the name of
        /// its `[pools.NAME.<provider>]` section.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProviderKind {
            $( $(#[$attr])* $variant, )*
        }

        impl ProviderKind {
            /// Every registered provider, in registry order.
            // Pushes, not `vec![]`: a `#[cfg]` can only drop a statement.
            #[allow(clippy::vec_init_then_push)]
            pub fn all() -> Vec<ProviderKind> {
                let mut all = Vec::new();
                $( $(#[$attr])* all.push(ProviderKind::$variant); )*
                all
            }

            /// Every provider's name, for "expected one of" messages.
            pub fn names() -> &'static [&'static str] {
                static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
                    ProviderKind::all().into_iter().map(ProviderKind::name).collect()
                });
                &NAMES
            }

            pub fn name(self) -> &'static str {
                match self {
                    $( $(#[$attr])* ProviderKind::$variant => $name, )*
                }
            }

            /// The provider a section key or `provider` value names.
            pub fn from_name(name: &str) -> Option<ProviderKind> {
                match name {
                    $( $(#[$attr])* $name => Some(ProviderKind::$variant), )*
                    _ => None,
                }
            }
        }

        /// One provider's section, typed.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ProviderConfig {
            $( $(#[$attr])* $variant($config), )*
        }

        impl ProviderConfig {
            pub fn kind(&self) -> ProviderKind {
                match self {
                    $( $(#[$attr])* ProviderConfig::$variant(_) => ProviderKind::$variant, )*
                }
            }

            /// Reads the value of the section key `kind` from a map.
            pub fn next_value<'de, A: MapAccess<'de>>(
                kind: ProviderKind,
                map: &mut A,
            ) -> Result<ProviderConfig, A::Error> {
                match kind {
                    $( $(#[$attr])* ProviderKind::$variant => {
                        map.next_value::<$config>().map(ProviderConfig::$variant)
                    } )*
                }
            }

            fn absent(kind: ProviderKind) -> Option<ProviderConfig> {
                match kind {
                    $( $(#[$attr])* ProviderKind::$variant => {
                        <$config as Section>::absent().map(ProviderConfig::$variant)
                    } )*
                }
            }

            fn missing(kind: ProviderKind, ctx: &Context) -> Problem {
                match kind {
                    $( $(#[$attr])* ProviderKind::$variant => {
                        <$config as Section>::missing($name, ctx)
                    } )*
                }
            }

            pub fn validate(&self, ctx: &Context, out: &mut Problems) {
                match self {
                    $( $(#[$attr])* ProviderConfig::$variant(c) => c.validate(ctx, out), )*
                }
            }

            pub fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
                match self {
                    $( $(#[$attr])* ProviderConfig::$variant(c) => c.build(ctx), )*
                }
            }

            pub fn worker_urls(&self) -> Vec<String> {
                match self {
                    $( $(#[$attr])* ProviderConfig::$variant(c) => c.worker_urls(), )*
                }
            }
        }

        $( $(#[$attr])* impl From<$config> for ProviderConfig {
            fn from(c: $config) -> Self {
                ProviderConfig::$variant(c)
            }
        } )*
    };
}

// One line per provider.
registry! {
    Local(crate::local::LocalPoolConfig) = "local";
    Ec2(crate::ec2::Ec2PoolConfig) = "ec2";
    Docker(crate::docker::DockerPoolConfig) = "docker";
    Ssh(crate::ssh::SshPoolConfig) = "ssh";
    #[cfg(feature = "fake")]
    Fake(crate::fake::FakePoolConfig) = "fake";
    #[cfg(all(feature = "sim", unix))]
    Sim(crate::sim::SimPoolConfig) = "sim";
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ProviderKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, ProviderKind::names()))
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A pool's provider: the kind its `provider` key names and that provider's
/// section, plus what was written that does not fit (reported by
/// `validate`, so it joins every other problem).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSection {
    kind: ProviderKind,
    /// `None` when a required section is missing.
    config: Option<ProviderConfig>,
    /// Sections of providers this pool does not use.
    stray: Vec<ProviderKind>,
}

impl ProviderSection {
    /// A section built in code.
    pub fn new(config: impl Into<ProviderConfig>) -> Self {
        let config = config.into();
        Self {
            kind: config.kind(),
            config: Some(config),
            stray: Vec::new(),
        }
    }

    /// From the sections a pool's table holds: the one `kind` names (or its
    /// default), the others kept as strays.
    pub fn from_sections(kind: ProviderKind, sections: Vec<ProviderConfig>) -> Self {
        let mut config = None;
        let mut stray = Vec::new();
        for section in sections {
            if section.kind() == kind {
                config = Some(section);
            } else {
                stray.push(section.kind());
            }
        }
        Self {
            kind,
            config: config.or_else(|| ProviderConfig::absent(kind)),
            stray,
        }
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The section; `None` when a required one is missing.
    pub fn config(&self) -> Option<&ProviderConfig> {
        self.config.as_ref()
    }

    /// Every problem of the pool's provider part, paths relative to the pool.
    pub fn validate(&self, ctx: &Context) -> Vec<Problem> {
        let mut out = Problems::new();
        for stray in &self.stray {
            let name = stray.name();
            out.push(
                &Path::root().key(name),
                format!(
                    "only used when provider = {name:?}; this pool's provider is {:?}: \
                     remove [pools.{}.{name}] or change the provider",
                    self.kind.name(),
                    ctx.pool
                ),
            );
        }
        match &self.config {
            Some(config) => config.validate(ctx, &mut out),
            None => out.push_problem(ProviderConfig::missing(self.kind, ctx)),
        }
        out.into_vec()
    }

    /// URLs this pool's workers dial instead of the advertised one.
    pub fn worker_urls(&self) -> Vec<String> {
        self.config
            .as_ref()
            .map(ProviderConfig::worker_urls)
            .unwrap_or_default()
    }

    /// The pool's provider, from a section validation accepted.
    pub fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        match &self.config {
            Some(config) => config.build(ctx),
            None => Err(ProviderError::permanent(format!(
                "failed to set up pool {}: no [pools.{}.{}] section",
                ctx.pool,
                ctx.pool,
                self.kind.name()
            ))),
        }
    }
}
