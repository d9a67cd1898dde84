//! The allow-list's syntax and the checks that need no network: schemes, literal IPs in every
//! notation the URL parser accepts, allow-listed hosts and ports, and the filtering of resolved
//! addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::guard::allowed_addrs;
use super::*;

fn policy(entries: &[&str]) -> SsrfPolicy {
    SsrfPolicy::from_entries(entries).expect("a valid allow-list")
}

fn check(policy: &SsrfPolicy, url: &str) -> Result<(), Refusal> {
    policy.check_url(&Url::parse(url).expect("a valid URL"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid address")
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|text| SocketAddr::new(ip(text), 0)).collect()
}

#[test]
fn allow_list_entries_parse_as_host_or_host_and_port() {
    let rule = |host, port| HostRule { host, port };
    let name = |name: &str| RuleHost::Name(name.to_owned());
    let cases = [
        ("127.0.0.1:11434", rule(RuleHost::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), Some(11434))),
        ("10.0.0.5", rule(RuleHost::Ip(ip("10.0.0.5")), None)),
        ("gpu-box.lan", rule(name("gpu-box.lan"), None)),
        (" GPU-Box.LAN.:8000 ", rule(name("gpu-box.lan"), Some(8000))),
        ("localhost:80", rule(name("localhost"), Some(80))),
        ("::1", rule(RuleHost::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), None)),
        ("[fd00::5]", rule(RuleHost::Ip(ip("fd00::5")), None)),
        ("[fd00::5]:8000", rule(RuleHost::Ip(ip("fd00::5")), Some(8000))),
        ("0x7f.1:11434", rule(RuleHost::Ip(ip("127.0.0.1")), Some(11434))),
        ("bücher.example", rule(name("xn--bcher-kva.example"), None)),
    ];
    for (entry, expected) in cases {
        assert_eq!(HostRule::parse(entry), Ok(expected), "{entry}");
    }
}

#[test]
fn invalid_allow_list_entries_are_errors() {
    for entry in [
        "http://gpu-box.lan",
        "gpu-box.lan/v1",
        "user@gpu-box.lan",
        "*.lan",
        "gpu box",
        "gpu-box.lan:",
        "gpu-box.lan:0",
        "gpu-box.lan:70000",
        "gpu-box.lan:http",
        "fd00::5:8000:x",
        "[fd00::5",
        "[fd00::5]8000",
        "[gpu-box]:80",
        "a..b",
        ":8000",
    ] {
        assert!(HostRule::parse(entry).is_err(), "{entry} should be refused");
    }
    let error = SsrfPolicy::from_entries(["10.0.0.5", "http://x"]).expect_err("an invalid entry");
    assert!(error.to_string().contains("`http://x`"), "{error}");
    assert_eq!(SsrfPolicy::from_entries(["", "  "]), Ok(SsrfPolicy::default()), "blank entries are ignored");
}

#[test]
fn only_http_and_https_are_allowed() {
    let policy = SsrfPolicy::default();
    assert_eq!(check(&policy, "https://api.example.com/v1"), Ok(()));
    assert_eq!(check(&policy, "http://api.example.com/v1"), Ok(()));
    for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://example.com/", "data:text/plain,x"] {
        assert!(matches!(check(&policy, url), Err(Refusal::Scheme(_))), "{url}");
    }
    let refusal = check(&policy, "ftp://example.com/").expect_err("refused");
    assert_eq!(refusal.to_string(), "the URL scheme `ftp` is not allowed (only http and https)");
}

#[test]
fn literal_ips_are_checked_in_every_notation() {
    let policy = SsrfPolicy::default();
    for url in [
        "http://127.0.0.1:11434/",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://2130706433/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://10.0.0.5:8000/v1",
        "http://0.0.0.0:8080/",
        "https://192.168.1.1/",
    ] {
        let refusal = check(&policy, url).expect_err(url);
        assert!(matches!(refusal, Refusal::Address { .. }), "{url}: {refusal:?}");
    }
    let refusal = check(&policy, "http://0x7f.0.0.1:8080/v1").expect_err("refused");
    assert_eq!(refusal.to_string(), "the address of 127.0.0.1 is not allowed (loopback)");
    let refusal = check(&policy, "http://169.254.169.254/").expect_err("refused");
    assert_eq!(refusal.to_string(), "the address of 169.254.169.254 is not allowed (cloud metadata service)");
    assert_eq!(check(&policy, "http://8.8.8.8/"), Ok(()));
    assert_eq!(check(&policy, "https://[2606:4700::1111]/"), Ok(()));
    // Names are left to the resolver.
    assert_eq!(check(&policy, "http://localhost:11434/"), Ok(()));
}

#[test]
fn the_allow_list_opens_ips_and_ports_but_never_metadata() {
    let policy = policy(&["127.0.0.1:11434", "10.0.0.5", "[fd00::5]:8000", "169.254.169.254", "100.100.100.200:80"]);
    assert_eq!(check(&policy, "http://127.0.0.1:11434/api/chat"), Ok(()));
    assert!(check(&policy, "http://127.0.0.1:11435/").is_err(), "another port");
    assert!(check(&policy, "http://127.0.0.1/").is_err(), "the default port is not 11434");
    assert!(check(&policy, "http://127.0.0.2:11434/").is_err(), "another address");
    assert_eq!(check(&policy, "http://10.0.0.5/"), Ok(()));
    assert_eq!(check(&policy, "https://10.0.0.5:8443/"), Ok(()));
    assert_eq!(check(&policy, "http://[fd00::5]:8000/v1"), Ok(()));
    assert!(check(&policy, "http://[fd00::5]:22/").is_err());
    assert!(check(&policy, "http://169.254.169.254/").is_err(), "metadata even when listed");
    assert!(check(&policy, "http://100.100.100.200/").is_err(), "metadata even when listed");
    assert!(check(&policy, "ftp://10.0.0.5/").is_err(), "the scheme still counts");
}

#[test]
fn a_name_listed_with_ports_is_refused_on_other_ports() {
    let policy = policy(&["gpu-box.lan:8000", "gpu-box.lan:8001", "ollama.lan"]);
    assert_eq!(check(&policy, "http://gpu-box.lan:8000/v1"), Ok(()));
    assert_eq!(check(&policy, "http://GPU-BOX.lan.:8001/v1"), Ok(()));
    let refusal = check(&policy, "http://gpu-box.lan:22/").expect_err("refused");
    assert_eq!(
        refusal.to_string(),
        "the address of gpu-box.lan is not allowed (not an allow-listed port of this host)"
    );
    assert_eq!(check(&policy, "http://ollama.lan:1234/"), Ok(()));
}

#[test]
fn resolved_addresses_are_filtered() {
    let open = SsrfPolicy::default();
    let mixed = addrs(&["127.0.0.1", "93.184.215.14", "::1", "2606:4700::1111"]);
    assert_eq!(allowed_addrs(&open, "mixed.example", mixed), Ok(addrs(&["93.184.215.14", "2606:4700::1111"])));
    let refusal = allowed_addrs(&open, "rebind.example", addrs(&["10.1.2.3", "::1"])).expect_err("refused");
    assert_eq!(refusal.to_string(), "the address of rebind.example is not allowed (private network)");
    assert_eq!(allowed_addrs(&open, "nothing.example", Vec::new()), Ok(Vec::new()));

    let listed = policy(&["gpu-box.lan:8000", "10.0.0.9", "127.0.0.1:11434"]);
    let private = addrs(&["10.0.0.7", "fd00::7"]);
    assert_eq!(allowed_addrs(&listed, "gpu-box.lan", private.clone()), Ok(private));
    let refusal = allowed_addrs(&listed, "gpu-box.lan", addrs(&["169.254.169.254"])).expect_err("metadata");
    assert!(refusal.to_string().contains("cloud metadata"), "{refusal}");
    assert_eq!(allowed_addrs(&listed, "other.lan", addrs(&["10.0.0.9"])), Ok(addrs(&["10.0.0.9"])));
    assert!(allowed_addrs(&listed, "other.lan", addrs(&["10.0.0.7"])).is_err());
    // An `ip:port` rule does not apply to names: the resolver does not know the port.
    assert!(allowed_addrs(&listed, "localhost", addrs(&["127.0.0.1"])).is_err());
}
