use thiserror::Error;

/// Why an artifact could not be stored or read. Each names the file.
#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error("artifact {path}: failed to {action} in {store}")]
    Store {
        action: &'static str,
        path: String,
        store: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("failed to open the artifact store in {dir}")]
    Open {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "artifact {path}: the build's artifacts would total {total} bytes, over the limit of \
         {limit} bytes ([artifacts] max_build_bytes)"
    )]
    OverLimit {
        path: String,
        total: u64,
        limit: u64,
    },
    #[error("artifact {path:?}: refused: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("artifact {path}: {got} bytes arrived, the worker announced {want}")]
    Size { path: String, got: u64, want: u64 },
    #[error("artifact {path}: its sha256 on arrival is {got}, the worker sent {want}")]
    Corrupt {
        path: String,
        got: String,
        want: String,
    },
    #[error("artifact {path}: its record in the store is unreadable")]
    Meta {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}
