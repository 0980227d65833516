//! The API carries bearer tokens and the worker endpoint launch tokens and
//! secrets, so neither may leave the loopback interface in clear text: off
//! loopback the master refuses to start without `master.tls`, unless
//! `master.allow_insecure_http` says a TLS proxy in front takes care of it.

use crate::config::Config;

pub fn check(config: &Config) -> anyhow::Result<()> {
    let m = &config.master;
    if m.tls.is_some() {
        return Ok(());
    }
    let listen = m.http_listen;
    if !listen.ip().is_loopback() {
        if !m.allow_insecure_http {
            anyhow::bail!(
                "refusing to serve the API on {listen} without TLS: master.http_listen is not \
                 a loopback address, and tokens would cross the network in clear text; set \
                 master.tls (tls = \"self-signed\", or tls = {{ cert = \"FILE\", key = \"FILE\" }}), \
                 or, behind a TLS proxy, master.allow_insecure_http = true"
            );
        }
        tracing::warn!(
            listen = %listen,
            "master.allow_insecure_http = true: the API is served over plain HTTP off loopback; \
             API tokens cross the network in clear text unless a TLS proxy is in front"
        );
    }
    if !m.grpc_listen.ip().is_loopback() {
        tracing::warn!(
            listen = %m.grpc_listen,
            "the worker endpoint is served without TLS off loopback: launch tokens and step \
             secrets cross the network in clear text; set master.tls"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::TlsConfig;

    #[test]
    fn off_loopback_needs_tls_and_the_error_names_master_tls() {
        let mut config = crate::config::embedded_default().unwrap();
        assert!(check(&config).is_ok(), "loopback is fine");
        config.master.http_listen = "0.0.0.0:8480".parse().unwrap();
        let err = check(&config).unwrap_err().to_string();
        assert!(err.contains("set master.tls"), "{err}");
        config.master.tls = Some(TlsConfig::SelfSigned);
        assert!(check(&config).is_ok());
        config.master.tls = None;
        config.master.allow_insecure_http = true;
        assert!(check(&config).is_ok());
    }
}
