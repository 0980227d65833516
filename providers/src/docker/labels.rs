//! The labels every burst container carries.

use std::collections::HashMap;

/// Every label burst sets starts so; pools may not set their own.
pub const LABEL_PREFIX: &str = "io.burst.";
/// The id of the master that launched the container.
pub const LABEL_MASTER: &str = "io.burst.master";
/// The pool the container's worker belongs to.
pub const LABEL_POOL: &str = "io.burst.pool";
/// The worker id the master gave the container.
pub const LABEL_WORKER: &str = "io.burst.worker";

/// On burst's cache volumes: the cache's key.
pub const LABEL_CACHE: &str = "io.burst.cache";

/// A `docker ps` filter that matches one pool of one master.
pub fn pool_filter(master_id: &str, pool: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_MASTER}={master_id}"),
            format!("{LABEL_POOL}={pool}"),
        ],
    )])
}

/// A `docker volume ls` filter for the cache volumes of one pool of one
/// master.
pub fn cache_volume_filter(master_id: &str, pool: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_MASTER}={master_id}"),
            format!("{LABEL_POOL}={pool}"),
            LABEL_CACHE.to_owned(),
        ],
    )])
}
