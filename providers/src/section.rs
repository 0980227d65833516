//! What a provider module offers the registry: its config section, how to
//! check it and how to build the provider from it.

use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::{Context, Path, Problem, Problems};
use crate::{Provider, ProviderError};

/// A provider's `[pools.NAME.<name>]` section. Implement it, add one line to
/// `registry.rs`, and pools can use the provider (docs/adding-a-provider.md).
pub trait Section: DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static {
    /// The section when the pool has none; `None` when it is required.
    fn absent() -> Option<Self>;

    /// Why a required section is missing; paths are relative to the pool.
    fn missing(name: &str, ctx: &Context) -> Problem {
        let mut out = Problems::new();
        out.push(
            &Path::root().key(name),
            format!(
                "required when provider = {name:?}: add [pools.{}.{name}]",
                ctx.pool
            ),
        );
        out.into_vec().remove(0)
    }

    /// Every problem of the section, with paths relative to the pool
    /// (`<name>.…`), or to the file for `Problems::push_root`.
    fn validate(&self, ctx: &Context, out: &mut Problems);

    /// The provider for a section that validation accepted.
    fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError>;

    /// URLs the section hands workers instead of the master's advertised
    /// one (e.g. docker's `master_url`): a TLS master's generated
    /// certificate covers their hosts too.
    fn worker_urls(&self) -> Vec<String> {
        Vec::new()
    }
}
