//! Where a webhook may be sent: only to globally reachable addresses. A
//! merchant chooses the URL, so without this a webhook would let anyone
//! with a key make the gateway call its own network (the database host,
//! cloud metadata at 169.254.169.254, an admin port on loopback). Every
//! address in the IANA special-purpose registries for IPv4 and IPv6 is
//! refused, including those that reach IPv4 space through IPv6 (NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`, IPv4-compatible `::/96`, mapped
//! `::ffff:0:0/96`). The delivery worker connects only to the addresses it
//! checked (`workers::webhooks`), so a DNS answer that changes between the
//! check and the connection (rebinding) cannot slip through.

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;

/// The IANA special-purpose blocks (and multicast), with what each is.
const SPECIAL_PURPOSE: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112 direct delegation"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

static BLOCKS: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    SPECIAL_PURPOSE.iter().map(|(net, _)| net.parse().expect("the table holds CIDR blocks")).collect()
});

/// Whether a webhook must never reach `ip`.
pub fn is_special_purpose(ip: IpAddr) -> bool {
    BLOCKS.iter().any(|block| block.contains(&ip))
}

/// Whether a URL's host is literally special-purpose (such an IP, or
/// `localhost`). Names are checked again, resolved, at every send.
pub fn names_internal_host(url: &str) -> bool {
    let Some(host) = url.parse::<ureq::http::Uri>().ok().and_then(|u| u.host().map(str::to_ascii_lowercase)) else {
        return false;
    };
    let name = host.trim_end_matches('.');
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    name == "localhost" || name.ends_with(".localhost") || bare.parse().is_ok_and(is_special_purpose)
}

/// Whether a URL is `https` (live endpoints must be).
pub fn is_https(url: &str) -> bool {
    url.parse::<ureq::http::Uri>().ok().is_some_and(|u| u.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("https")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_refused_and_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "2002:a00:1::",
            "::a00:1",
            "2001::1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(is_special_purpose(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "41.57.96.1", "2001:4860::8888", "2c0f:f0c8::1"] {
            assert!(!is_special_purpose(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn internal_hosts_are_recognised_in_urls() {
        for url in [
            "http://127.0.0.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://localhost./",
            "http://[::1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://198.18.0.1/",
        ] {
            assert!(names_internal_host(url), "{url}");
        }
        for url in ["https://merchant.example/hooks", "http://8.8.8.8/", "http://[2001:4860::8888]/"] {
            assert!(!names_internal_host(url), "{url}");
        }
    }
}
