//! Which URL a containerised worker dials.
//!
//! A container on a bridge network has its own loopback: the master's
//! `127.0.0.1` is not reachable from it. When the master advertises a
//! loopback (or unspecified, `0.0.0.0`) address, the worker is given the
//! bridge network's gateway instead, which is the Docker host itself; the
//! master must then listen on an address the bridge reaches (e.g. `0.0.0.0`).
//! A pool's `master_url` overrides all of this.

use std::net::IpAddr;

/// How the provider arrives at a worker's master URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Use this URL as it is.
    Use(String),
    /// Replace the URL's host by the gateway of the container's network.
    Gateway,
}

/// The host part of a URL, without IPv6 brackets.
pub fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_owned())
}

/// Loopback, unspecified or `localhost`: an address only this machine's
/// own network namespace reaches.
pub fn is_local_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Whether a master advertising `url` needs its address rewritten for a
/// container on a bridge network.
pub fn needs_rewrite(url: &str) -> bool {
    host_of(url).is_some_and(|h| is_local_host(&h))
}

/// Decides how a worker on `network` (None = default bridge), on an engine
/// that is (`engine_is_local`) or is not this machine, reaches a master that
/// advertises `advertised`.
pub fn plan(
    advertised: &str,
    override_url: Option<&str>,
    network: Option<&str>,
    engine_is_local: bool,
) -> Result<Plan, String> {
    if let Some(url) = override_url {
        return Ok(Plan::Use(url.to_owned()));
    }
    let Some(host) = host_of(advertised) else {
        return Err(format!(
            "failed to parse the master's advertised URL {advertised:?}"
        ));
    };
    if !is_local_host(&host) {
        return Ok(Plan::Use(advertised.to_owned()));
    }
    if !engine_is_local {
        return Err(format!(
            "the master advertises {advertised}, which containers on a remote Docker host \
             cannot reach: set master.advertise_url to an address that host reaches, or the \
             pool's docker.master_url"
        ));
    }
    match network {
        // The container shares the host's network namespace, loopback included.
        Some("host") => {
            let loopback = if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
                with_host(advertised, "127.0.0.1".parse().ok())?
            } else {
                advertised.to_owned()
            };
            Ok(Plan::Use(loopback))
        }
        Some("none") => {
            Err("network \"none\" has no route to the master: pick another network".to_owned())
        }
        _ => Ok(Plan::Gateway),
    }
}

/// The gateway of a network from its IPAM entries (gateway, subnet): the
/// one the engine reports, else the first address of an IPv4 subnet, which
/// is where Docker puts it (the default bridge often reports no gateway).
/// IPv4 first: the worker dials it more portably.
pub fn gateway_from_ipam(configs: &[(Option<String>, Option<String>)]) -> Option<IpAddr> {
    let reported = configs
        .iter()
        .filter_map(|(gateway, _)| gateway.as_deref()?.parse::<IpAddr>().ok());
    let derived = configs
        .iter()
        .filter_map(|(_, subnet)| first_host(subnet.as_deref()?));
    reported
        .clone()
        .find(IpAddr::is_ipv4)
        .or_else(|| derived.clone().next())
        .or_else(|| reported.clone().next())
}

/// `172.17.0.0/16` -> `172.17.0.1`.
fn first_host(subnet: &str) -> Option<IpAddr> {
    let (addr, prefix) = subnet.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    if prefix > 30 {
        return None;
    }
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    Some(IpAddr::V4((u32::from(addr) & mask).wrapping_add(1).into()))
}

/// `url` with its host replaced by `ip`, keeping scheme, port and path (and
/// adding no trailing slash).
pub fn with_host(url: &str, ip: Option<IpAddr>) -> Result<String, String> {
    let ip = ip.ok_or_else(|| format!("failed to rewrite {url}: no address"))?;
    let mut parsed =
        url::Url::parse(url).map_err(|e| format!("failed to parse URL {url:?}: {e}"))?;
    parsed
        .set_ip_host(ip)
        .map_err(|()| format!("failed to set host {ip} in {url:?}"))?;
    let mut out = parsed.to_string();
    if !url.ends_with('/') && parsed.path() == "/" && parsed.query().is_none() {
        out.pop();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Option<IpAddr> {
        "172.17.0.1".parse().ok()
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("http://127.0.0.1:8481").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(host_of("http://[::1]:8481").as_deref(), Some("::1"));
        assert_eq!(host_of("tcp://builder:2375").as_deref(), Some("builder"));
        assert_eq!(host_of("not a url"), None);
        assert!(is_local_host("127.0.0.1") && is_local_host("127.3.4.5"));
        assert!(is_local_host("::1") && is_local_host("0.0.0.0") && is_local_host("::"));
        assert!(is_local_host("LOCALHOST"));
        assert!(!is_local_host("172.17.0.1") && !is_local_host("ci.example.com"));
        assert!(needs_rewrite("http://0.0.0.0:1") && !needs_rewrite("http://10.1.2.3:1"));
    }

    #[test]
    fn loopback_goes_through_the_gateway() {
        for url in [
            "http://127.0.0.1:8481",
            "http://0.0.0.0:8481",
            "http://localhost:8481",
            "http://[::1]:8481",
        ] {
            assert_eq!(plan(url, None, None, true), Ok(Plan::Gateway), "{url}");
            assert_eq!(
                plan(url, None, Some("ci-net"), true),
                Ok(Plan::Gateway),
                "{url}"
            );
            assert_eq!(
                with_host(url, gateway()).as_deref(),
                Ok("http://172.17.0.1:8481")
            );
        }
        assert_eq!(
            with_host("https://127.0.0.1:8481/burst/", gateway()).as_deref(),
            Ok("https://172.17.0.1:8481/burst/")
        );
        assert!(with_host("http://127.0.0.1:1", None).is_err());
    }

    #[test]
    fn gateways_from_ipam() {
        let entry = |g: Option<&str>, s: Option<&str>| (g.map(Into::into), s.map(Into::into));
        // The default bridge: a subnet, no gateway.
        assert_eq!(
            gateway_from_ipam(&[entry(None, Some("172.17.0.0/16"))]),
            gateway()
        );
        assert_eq!(
            gateway_from_ipam(&[entry(None, Some("10.9.8.77/24"))]),
            "10.9.8.1".parse().ok()
        );
        assert_eq!(
            gateway_from_ipam(&[
                entry(Some("fd00::1"), Some("fd00::/64")),
                entry(Some("172.18.0.254"), Some("172.18.0.0/16"))
            ]),
            "172.18.0.254".parse().ok()
        );
        assert_eq!(
            gateway_from_ipam(&[entry(Some("fd00::1"), Some("fd00::/64"))]),
            "fd00::1".parse().ok()
        );
        assert_eq!(gateway_from_ipam(&[entry(None, Some("garbage"))]), None);
        assert_eq!(gateway_from_ipam(&[entry(None, Some("10.0.0.0/32"))]), None);
        assert_eq!(gateway_from_ipam(&[]), None);
    }

    #[test]
    fn routable_urls_and_overrides_are_kept() {
        assert_eq!(
            plan("http://10.0.0.2:8481", None, None, true),
            Ok(Plan::Use("http://10.0.0.2:8481".into()))
        );
        assert_eq!(
            plan("http://ci.example.com:8481", None, None, false),
            Ok(Plan::Use("http://ci.example.com:8481".into()))
        );
        assert_eq!(
            plan(
                "http://127.0.0.1:8481",
                Some("http://master:9"),
                None,
                false
            ),
            Ok(Plan::Use("http://master:9".into()))
        );
    }

    #[test]
    fn host_network_keeps_loopback() {
        assert_eq!(
            plan("http://127.0.0.1:8481", None, Some("host"), true),
            Ok(Plan::Use("http://127.0.0.1:8481".into()))
        );
        assert_eq!(
            plan("http://0.0.0.0:8481", None, Some("host"), true),
            Ok(Plan::Use("http://127.0.0.1:8481".into()))
        );
    }

    #[test]
    fn unreachable_setups_are_errors() {
        let remote = plan("http://127.0.0.1:8481", None, None, false);
        assert!(remote.is_err_and(|e| e.contains("remote Docker host")));
        let none = plan("http://127.0.0.1:8481", None, Some("none"), true);
        assert!(none.is_err_and(|e| e.contains("\"none\"")));
        assert!(plan("garbage", None, None, true).is_err());
    }
}
