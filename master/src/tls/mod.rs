//! TLS for both of the master's endpoints (the HTTP API and the gRPC worker
//! endpoint): certificate files, or a CA and server certificate generated
//! into the state dir, and the pin workers check (`burst_common::cert_pin`).

mod error;
mod names;
mod pem;
mod self_signed;
mod server;

pub use error::TlsError;
pub use names::server_names;
pub use pem::{check_files, FileProblem};
pub use server::ServerTls;
