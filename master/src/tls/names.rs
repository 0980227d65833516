//! The names the generated server certificate is valid for: every name a
//! CLI or a worker with `--master-ca` may dial the master by.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use crate::config::Config;

/// Loopback names, the listen addresses (every local interface address
/// when one is unspecified, as `0.0.0.0` is: Docker workers dial the
/// bridge's gateway, which is such an address), the hosts of the advertised
/// URL and of pools' own worker URLs (docker's `master_url`), and
/// `allowed_hosts`. Sorted, without duplicates.
pub fn server_names(config: &Config, http: SocketAddr, grpc: SocketAddr) -> Vec<String> {
    let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut unspecified = false;
    for addr in [http, grpc] {
        if addr.ip().is_unspecified() {
            unspecified = true;
        } else {
            names.insert(addr.ip().to_string());
        }
    }
    if unspecified {
        names.extend(interface_addresses().iter().map(ToString::to_string));
    }
    let pool_urls = config.pools.values().flat_map(|p| p.provider.worker_urls());
    let advertised = config.master.advertise_url.iter().map(ToString::to_string);
    for url in advertised.chain(pool_urls) {
        if let Some(host) = url_host(&url) {
            names.insert(host);
        }
    }
    for host in &config.master.allowed_hosts {
        names.insert(strip_port(host));
    }
    names.into_iter().filter(|n| usable(n)).collect()
}

fn url_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
}

/// `host:port` and `[v6]:port` without the port.
fn strip_port(host: &str) -> String {
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return addr.ip().to_string();
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return bare.to_owned();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => host.to_owned(),
    }
}

/// An IP address, or a name a certificate can carry.
fn usable(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok()
        || (!name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*'))
}

/// The addresses of this machine's interfaces (none when they cannot be
/// read: the loopback names still stand).
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let addr = a.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            // Link-local IPv6 needs a scope no URL here carries.
            let v6 = addr.as_sockaddr_in6()?.ip();
            (v6.segments()[0] & 0xffc0 != 0xfe80).then_some(IpAddr::V6(v6))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(strip_port("ci.example.com:8480"), "ci.example.com");
        assert_eq!(strip_port("ci.example.com"), "ci.example.com");
        assert_eq!(strip_port("10.0.0.1:80"), "10.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("fd00::1"), "fd00::1");
        assert!(!usable("bad name") && !usable("") && usable("fd00::1"));
    }

    #[test]
    fn names_cover_loopback_listen_addresses_and_the_advertised_host() {
        let mut config = crate::config::embedded_default().unwrap();
        config.master.advertise_url = Some(burst_providers::config::HttpUrl::new(
            "https://ci.example.com:8481",
        ));
        config.master.allowed_hosts = vec!["api.example.com:443".into()];
        let names = server_names(
            &config,
            "10.1.2.3:8480".parse().unwrap(),
            "127.0.0.1:8481".parse().unwrap(),
        );
        for want in [
            "localhost",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "ci.example.com",
            "api.example.com",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
    }

    #[test]
    fn a_docker_pools_own_master_url_is_covered() {
        let text = r#"
[master]
tls = "self-signed"

[pools.dk]
provider = "docker"

[pools.dk.docker]
master_url = "https://gw.example:8481"

[[builders]]
name = "b"

[[builders.steps]]
name = "s"
run = "true"
"#;
        let config = crate::config::load_str(
            text,
            std::path::Path::new("burst.toml"),
            &Default::default(),
        )
        .unwrap();
        let addr = "127.0.0.1:0".parse().unwrap();
        let names = server_names(&config, addr, addr);
        assert!(names.iter().any(|n| n == "gw.example"), "{names:?}");
    }
}
