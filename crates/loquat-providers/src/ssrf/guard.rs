//! The guard's reqwest side: [`Guard`] configures the guarded client (a resolver that drops
//! forbidden addresses, a redirect policy that re-checks every target) and checks each URL
//! before it is sent; [`refusal_in`] finds a refusal inside a reqwest error.
//!
//! Egress proxies: the configured `PROXY_URL` (or, when unset, `ALL_PROXY`/`HTTP_PROXY`/
//! `HTTPS_PROXY` as reqwest reads them) is the administrator's, so the resolver resolves its
//! host unfiltered. Requests through a proxy are resolved and connected by the proxy: the guard
//! cannot see the final address, and the proxy must enforce egress. The guard still refuses
//! schemes and literal IPs, and resolves host names locally before sending, refusing a name
//! that resolves to a forbidden address (a name it cannot resolve is left to the proxy).

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{ClientBuilder, Url, redirect};
use tokio::net::lookup_host;

use super::{MAX_REDIRECTS, Refusal, SsrfPolicy, UrlHost, host_name, url_host};

/// The environment variables reqwest reads for a proxy when none is configured.
const PROXY_VARIABLES: [&str; 6] = ["ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"];

/// How long the best-effort lookup before sending through a proxy may take.
const PROXIED_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The SSRF guard of one guarded client.
#[derive(Debug)]
pub(crate) struct Guard {
    policy: Arc<SsrfPolicy>,
    /// Host names of the egress proxies, resolved without filtering.
    proxy_hosts: Arc<[String]>,
    /// Whether requests may go through a proxy (then names are also checked before sending).
    proxied: bool,
}

impl Guard {
    /// The guard for a client configured with `proxy_url` (the environment's proxies otherwise).
    pub(crate) fn new(policy: SsrfPolicy, proxy_url: Option<&str>) -> Self {
        let proxy_urls: Vec<String> = match proxy_url.map(str::trim).filter(|url| !url.is_empty()) {
            Some(url) => vec![url.to_owned()],
            None => PROXY_VARIABLES.iter().filter_map(|name| std::env::var(name).ok()).collect(),
        };
        let proxy_urls: Vec<&str> = proxy_urls.iter().map(|url| url.trim()).filter(|url| !url.is_empty()).collect();
        let proxy_hosts = proxy_urls.iter().filter_map(|url| proxy_host(url)).collect();
        Self { policy: Arc::new(policy), proxy_hosts, proxied: !proxy_urls.is_empty() }
    }

    pub(crate) fn policy(&self) -> &SsrfPolicy {
        &self.policy
    }

    /// Installs the guarded resolver and the guarded redirect policy.
    pub(crate) fn configure(&self, builder: ClientBuilder) -> ClientBuilder {
        let resolver = GuardedResolver { policy: Arc::clone(&self.policy), proxy_hosts: Arc::clone(&self.proxy_hosts) };
        builder.dns_resolver(Arc::new(resolver)).redirect(redirect_policy(Arc::clone(&self.policy)))
    }

    /// The checks before a request is sent (see the module documentation of `ssrf`).
    pub(crate) async fn check(&self, url: &Url) -> Result<(), Refusal> {
        self.policy.check_url(url)?;
        if self.proxied
            && let Some(UrlHost::Name(name)) = url_host(url)
            && let Ok(Ok(addrs)) = tokio::time::timeout(PROXIED_LOOKUP_TIMEOUT, lookup_host((name.as_str(), 0))).await
        {
            for addr in addrs {
                let checked = self.policy.check_resolved(&name, addr.ip());
                checked.map_err(|reason| Refusal::Address { host: name.clone(), reason })?;
            }
        }
        Ok(())
    }
}

/// The host name of a proxy URL (`host:port` without a scheme is read as `http://`).
fn proxy_host(url: &str) -> Option<String> {
    let url = if url.contains("://") { Url::parse(url) } else { Url::parse(&format!("http://{url}")) };
    match url_host(&url.ok()?)? {
        UrlHost::Name(name) => Some(name),
        UrlHost::Ip(_) => None,
    }
}

/// Resolves host names for the guarded client and keeps only the addresses it may reach, so
/// the connection goes to an address that was checked.
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<SsrfPolicy>,
    proxy_hosts: Arc<[String]>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let name = host_name(name.as_str());
        let policy = Arc::clone(&self.policy);
        let is_proxy = self.proxy_hosts.contains(&name);
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = lookup_host((name.as_str(), 0)).await?.collect();
            let addrs = if is_proxy { resolved } else { allowed_addrs(&policy, &name, resolved)? };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `name` a guarded request may connect to; a refusal when every one of them
/// is forbidden.
pub(crate) fn allowed_addrs(
    policy: &SsrfPolicy,
    name: &str,
    resolved: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, Refusal> {
    let mut refused = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match policy.check_resolved(name, addr.ip()) {
            Ok(()) => true,
            Err(reason) => {
                refused.get_or_insert(reason);
                false
            }
        })
        .collect();
    match refused {
        Some(reason) if allowed.is_empty() => Err(Refusal::Address { host: name.to_owned(), reason }),
        _ => Ok(allowed),
    }
}

/// At most [`MAX_REDIRECTS`] redirects, each target checked like the first URL (its host name,
/// if any, is then checked by the resolver).
fn redirect_policy(policy: Arc<SsrfPolicy>) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        // `previous` starts with the first URL, which was not a redirect.
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

#[derive(Debug)]
struct TooManyRedirects;

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the provider redirected more than {MAX_REDIRECTS} times")
    }
}

impl StdError for TooManyRedirects {}

/// The guard's refusal behind a reqwest error (from the resolver or the redirect policy).
pub(crate) fn refusal_in(error: &reqwest::Error) -> Option<Refusal> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        // `io::Error::source` skips the error it wraps.
        if let Some(inner) = current.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
            && let Some(refusal) = inner.downcast_ref::<Refusal>()
        {
            return Some(refusal.clone());
        }
        cause = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(entries: &[&str]) -> GuardedResolver {
        let policy = SsrfPolicy::from_entries(entries).expect("a valid allow-list");
        GuardedResolver { policy: Arc::new(policy), proxy_hosts: Arc::from(Vec::new()) }
    }

    async fn resolve(resolver: &GuardedResolver, name: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = name.parse().expect("a valid name");
        resolver.resolve(name).await.map(Iterator::collect).map_err(|error| error.to_string())
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses_unless_the_name_is_allow_listed() {
        let refused = resolve(&resolver(&[]), "localhost").await.expect_err("refused");
        assert_eq!(refused, "the address of localhost is not allowed (loopback)");
        let refused = resolve(&resolver(&["localhost:11434"]), "LOCALHOST.").await;
        assert!(refused.is_ok(), "a listed name resolves on any port here; `check_url` pins the port");
        let addrs = resolve(&resolver(&["localhost"]), "localhost").await.expect("allowed");
        assert!(!addrs.is_empty() && addrs.iter().all(|addr| addr.ip().is_loopback()), "{addrs:?}");
        // The proxy's host is the administrator's.
        let proxied = GuardedResolver { proxy_hosts: Arc::from(vec!["localhost".to_owned()]), ..resolver(&[]) };
        assert!(resolve(&proxied, "localhost").await.is_ok());
    }

    #[test]
    fn proxy_hosts_are_read_from_proxy_urls() {
        assert_eq!(proxy_host("http://Proxy.Corp:3128"), Some("proxy.corp".to_owned()));
        assert_eq!(proxy_host("proxy.corp:3128"), Some("proxy.corp".to_owned()));
        assert_eq!(proxy_host("socks5://user:pw@egress.lan:1080"), Some("egress.lan".to_owned()));
        assert_eq!(proxy_host("http://10.0.0.1:3128"), None, "a literal IP needs no resolving");
    }

    #[tokio::test]
    async fn behind_a_proxy_names_are_also_checked_before_sending() {
        let guard = Guard::new(SsrfPolicy::default(), Some("http://proxy.corp:3128"));
        assert!(guard.proxied);
        let url = Url::parse("http://localhost:8080/v1").expect("a URL");
        let refusal = guard.check(&url).await.expect_err("refused before the proxy sees it");
        assert_eq!(refusal.to_string(), "the address of localhost is not allowed (loopback)");
        let unresolvable = Url::parse("http://name.invalid/v1").expect("a URL");
        assert_eq!(guard.check(&unresolvable).await, Ok(()), "left to the proxy");
        let direct = Guard::new(SsrfPolicy::default(), Some("http://proxy.corp:3128"));
        assert!(direct.check(&Url::parse("http://10.0.0.1/").expect("a URL")).await.is_err());
    }
}
