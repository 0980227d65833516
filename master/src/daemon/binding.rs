//! The API carries bearer tokens, so it may leave the loopback interface
//! only over TLS. TLS is not built yet: off loopback the master refuses to
//! start unless `master.allow_insecure_http` says to accept clear text.

use crate::config::Config;

pub fn check(config: &Config) -> anyhow::Result<()> {
    let listen = config.master.http_listen;
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if !config.master.allow_insecure_http {
        anyhow::bail!(
            "refusing to serve the API on {listen}: master.http_listen is not a loopback \
             address, and tokens would cross the network in clear text; TLS (master.tls) is \
             not available yet: listen on 127.0.0.1 behind a TLS proxy, or set \
             master.allow_insecure_http = true to accept the risk"
        );
    }
    tracing::warn!(
        listen = %listen,
        "master.allow_insecure_http = true: the API is served over plain HTTP off loopback; \
         API tokens cross the network in clear text"
    );
    Ok(())
}
