//! The SSRF guard for provider URLs a user typed (their own providers, a base URL for a server
//! provider): such requests must not reach the server's own network — cloud metadata, the LAN,
//! localhost admin ports. The administrator's providers are trusted and bypass the guard.
//!
//! How a guarded request is checked, at every step where an address is chosen:
//! - before sending ([`SsrfPolicy::check_url`]): only `http`/`https`; a literal IP host (which
//!   reqwest connects to without resolving; `0x7f.1`-style and decimal forms are normalised to
//!   dotted IPv4 by the URL parser first) must not be [forbidden](is_forbidden);
//! - at connection time (`guard::GuardedResolver`): a host name is resolved by the guard itself,
//!   forbidden addresses are dropped and the connection goes to one of the checked addresses, so
//!   a DNS rebinding between check and connect is impossible; nothing left is a refusal;
//! - on redirects (at most [`MAX_REDIRECTS`]): each target is checked like the first URL.
//!
//! The administrator's allow-list ([`SsrfPolicy::allow`], `host` or `host:port`) opens holes:
//! a literal-IP URL matching `ip` or `ip:port`; a host name matching `name` (any address it
//! resolves to) or `name:port` (then that name is refused on other ports); a resolved address
//! matching a port-less `ip` rule. The resolver does not see the port, so `ip:port` rules apply
//! to literal-IP URLs only (allow-list `localhost:11434` for `http://localhost:11434`). Cloud
//! metadata addresses are refused even when allow-listed.
//!
//! Behind an egress proxy the guard cannot see the final address (the proxy resolves and
//! connects): the proxy must then enforce egress. The guard still refuses schemes and literal
//! IPs, and best-effort resolves host names locally before sending (see `guard`).

mod guard;
mod ip;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use reqwest::Url;

pub(crate) use self::guard::{Guard, refusal_in};
pub use self::ip::{ForbiddenRange, forbidden_range, is_forbidden};

/// The most redirects a guarded request follows.
pub const MAX_REDIRECTS: usize = 5;

/// What an allow-list entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleHost {
    Ip(IpAddr),
    /// Lowercase, without a trailing dot, as the URL parser normalises it (IDNA to punycode).
    Name(String),
}

/// One allow-list entry: `host` (any port) or `host:port`; IPv6 as `[::1]` or `[::1]:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    pub host: RuleHost,
    pub port: Option<u16>,
}

/// An allow-list entry that is not `host` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRule {
    pub entry: String,
    pub reason: &'static str,
}

impl fmt::Display for InvalidRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a valid allow-list entry: {}", self.entry, self.reason)
    }
}

impl std::error::Error for InvalidRule {}

impl HostRule {
    pub fn parse(entry: &str) -> Result<Self, InvalidRule> {
        let invalid = |reason| InvalidRule { entry: entry.to_owned(), reason };
        let text = entry.trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.contains("://") || text.contains(['/', '@', '?', '#', '*']) || text.contains(char::is_whitespace) {
            return Err(invalid("write a host or host:port, not a URL or a pattern"));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self { host: RuleHost::Ip(ip), port: None });
        }
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (inside, after) = rest.split_once(']').ok_or_else(|| invalid("a `[` without its `]`"))?;
                let ip = inside.parse::<Ipv6Addr>().map_err(|_| invalid("not an IPv6 address inside `[]`"))?;
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(|| invalid("expected `:port` after `]`"))?),
                };
                (RuleHost::Ip(IpAddr::V6(ip)), port)
            }
            None => {
                let (host, port) = match text.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (text, None),
                };
                if host.contains(':') {
                    return Err(invalid("an IPv6 address with a port must be written `[address]:port`"));
                }
                (normalize_host(host).ok_or_else(|| invalid("not a host name or IP address"))?, port)
            }
        };
        let port = match port {
            None => None,
            Some(port) => {
                Some(port.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(|| invalid("not a valid port"))?)
            }
        };
        Ok(Self { host, port })
    }

    fn matches_port(&self, port: Option<u16>) -> bool {
        self.port.is_none() || self.port == port
    }
}

/// A host as the URL parser normalises it: IPv4 in any form, lowercase, punycode.
fn normalize_host(host: &str) -> Option<RuleHost> {
    let url = Url::parse(&format!("http://{host}/")).ok()?;
    match url_host(&url)? {
        UrlHost::Ip(ip) => Some(RuleHost::Ip(ip)),
        UrlHost::Name(name) if is_dns_name(&name) => Some(RuleHost::Name(name)),
        UrlHost::Name(_) => None,
    }
}

/// Letters, digits, `-` and `_` in labels of 1 to 63 characters, 253 in all.
fn is_dns_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    (1..=253).contains(&name.len()) && name.split('.').all(label_ok)
}

/// A URL's host, parsed: an address, or a name (lowercase, without a trailing dot).
pub(crate) enum UrlHost {
    Ip(IpAddr),
    Name(String),
}

pub(crate) fn url_host(url: &Url) -> Option<UrlHost> {
    let host = url.host_str()?;
    let bare = host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(host);
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => UrlHost::Ip(ip),
        Err(_) => UrlHost::Name(host_name(bare)),
    })
}

/// A host name as the allow-list compares it.
pub(crate) fn host_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a guarded request was not sent. Its text names the host, never more of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A scheme other than `http` or `https`.
    Scheme(String),
    /// The URL has no host.
    NoHost,
    /// The host is, or resolves only to, a forbidden address; `reason` describes the range.
    Address { host: String, reason: &'static str },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Scheme(scheme) => write!(f, "the URL scheme `{scheme}` is not allowed (only http and https)"),
            Refusal::NoHost => f.write_str("the URL has no host"),
            Refusal::Address { host, reason } => write!(f, "the address of {host} is not allowed ({reason})"),
        }
    }
}

impl std::error::Error for Refusal {}

/// The administrator's exceptions to the guard (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsrfPolicy {
    pub allow: Vec<HostRule>,
}

impl SsrfPolicy {
    /// Parses the allow-list; blank entries are ignored, any other invalid one is an error.
    pub fn from_entries<I, S>(entries: I) -> Result<Self, InvalidRule>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries.into_iter().filter(|entry| !entry.as_ref().trim().is_empty());
        let allow = entries.map(|entry| HostRule::parse(entry.as_ref())).collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// The checks that need no DNS: the scheme, a literal IP host, a name allow-listed on other
    /// ports only. Host names are checked again when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme(url.scheme().to_owned()));
        }
        let port = url.port_or_known_default();
        match url_host(url).ok_or(Refusal::NoHost)? {
            UrlHost::Ip(ip) => {
                self.check_ip(ip, port).map_err(|reason| Refusal::Address { host: ip.to_string(), reason })
            }
            UrlHost::Name(name) => {
                let listed = self.name_rules(&name).next().is_some();
                if listed && !self.name_rules(&name).any(|rule| rule.matches_port(port)) {
                    let reason = "not an allow-listed port of this host";
                    return Err(Refusal::Address { host: name, reason });
                }
                Ok(())
            }
        }
    }

    /// Whether a connection to `ip` (on `port`, when known) is allowed; the refused range if not.
    fn check_ip(&self, ip: IpAddr, port: Option<u16>) -> Result<(), &'static str> {
        let Some(range) = forbidden_range(ip) else { return Ok(()) };
        let listed = self.allow.iter().any(|rule| rule.host == RuleHost::Ip(ip) && rule.matches_port(port));
        if listed && range != ForbiddenRange::Metadata { Ok(()) } else { Err(range.describe()) }
    }

    fn name_rules<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a HostRule> + 'a {
        self.allow.iter().filter(move |rule| matches!(&rule.host, RuleHost::Name(listed) if listed == name))
    }

    /// Whether a resolved address of `name` may be connected to (the port is unknown here).
    pub(crate) fn check_resolved(&self, name: &str, ip: IpAddr) -> Result<(), &'static str> {
        match forbidden_range(ip) {
            Some(ForbiddenRange::Metadata) => Err(ForbiddenRange::Metadata.describe()),
            Some(_) if self.name_rules(name).next().is_some() => Ok(()),
            _ => self.check_ip(ip, None),
        }
    }
}

#[cfg(test)]
mod tests;
