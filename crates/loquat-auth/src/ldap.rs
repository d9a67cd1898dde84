//! Sign-in against a directory (OpenLDAP, Active Directory, FreeIPA): bind as the service
//! account, find the person by the user filter with what they typed (escaped, RFC 4515), read
//! their name, email and groups (the entry's `memberOf` and, with a group base, the groups
//! naming them as a member), then bind as them with the typed password — the directory alone
//! judges it. LDAPS (`ldaps://`) and StartTLS verify the server's certificate against the
//! system's roots and an optional private CA; plain `ldap://` without StartTLS is for a
//! directory on the same host or network only.
//!
//! An empty password is refused before the directory is asked: to LDAP a simple bind with a
//! name and no password is an anonymous ("unauthenticated") bind that succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use loquat_core::Secret;

/// How long connecting, and then each operation, may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A login longer than this is refused unread.
const MAX_LOGIN_CHARS: usize = 256;
/// Groups read per person at most.
const MAX_GROUPS: usize = 1_000;

/// The directory to sign in against (`LOQUAT_LDAP__*`).
#[derive(Clone, Default)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// The service account that searches; unset, searches are anonymous.
    pub bind_dn: Option<String>,
    pub bind_password: Option<Secret>,
    /// Where people are, e.g. `ou=people,dc=example,dc=org`.
    pub user_base: String,
    /// `{login}` is what the person typed (escaped): e.g. `(|(uid={login})(mail={login}))`, or
    /// for Active Directory `(&(sAMAccountName={login})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`.
    pub user_filter: String,
    /// Where groups are; unset, only the entry's `memberOf` is read.
    pub group_base: Option<String>,
    /// `{dn}` is the person's DN (escaped).
    pub group_filter: String,
    /// Groups (their name or DN, any case) whose members administer Loquat; empty, roles are
    /// not the directory's.
    pub admin_groups: Vec<String>,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// A PEM file of the CA that signed the directory's certificate (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The attributes of the display name and the email.
    pub name_attribute: String,
    pub email_attribute: String,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password.as_ref().map(|_| "…"))
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .field("group_base", &self.group_base)
            .field("admin_groups", &self.admin_groups)
            .field("starttls", &self.starttls)
            .finish()
    }
}

/// A person the directory vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// The entry's stable id (`entryUUID`, Active Directory's `objectGUID`), else its DN.
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The groups' names (their first RDN's value).
    pub groups: Vec<String>,
    /// Whether the groups make the person an administrator; `None` without admin groups.
    pub admin: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// Unknown person, wrong password, disabled (filtered out) or ambiguous: the same answer.
    #[error("the directory refused the sign-in")]
    Rejected,
    /// The directory cannot be reached or refused the service account.
    #[error("the directory is unavailable: {0}")]
    Unavailable(String),
    #[error("LDAP settings: {0}")]
    Settings(String),
}

/// A directory client; cheap to clone.
#[derive(Clone)]
pub struct Ldap {
    settings: Arc<LdapSettings>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Ldap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ldap").field("url", &self.settings.url).finish()
    }
}

impl Ldap {
    /// Checks the settings and prepares TLS; connects to nothing yet.
    pub fn new(mut settings: LdapSettings) -> Result<Self, LdapError> {
        let url = settings.url.trim().to_owned();
        let secure = url.starts_with("ldaps://");
        if !secure && !url.starts_with("ldap://") {
            return Err(LdapError::Settings(format!("the URL must start with ldap:// or ldaps://, not {url:?}")));
        }
        if settings.user_base.trim().is_empty() {
            return Err(LdapError::Settings("LOQUAT_LDAP__USER_BASE is required".into()));
        }
        if settings.user_filter.trim().is_empty() {
            settings.user_filter = "(|(uid={login})(mail={login}))".into();
        }
        if !settings.user_filter.contains("{login}") {
            return Err(LdapError::Settings("the user filter must contain {login}".into()));
        }
        if settings.group_filter.trim().is_empty() {
            settings.group_filter = "(|(member={dn})(uniqueMember={dn}))".into();
        }
        if settings.name_attribute.trim().is_empty() {
            settings.name_attribute = "cn".into();
        }
        if settings.email_attribute.trim().is_empty() {
            settings.email_attribute = "mail".into();
        }
        let tls =
            if secure || settings.starttls { Some(Arc::new(tls_config(settings.ca_file.as_deref())?)) } else { None };
        settings.url = url;
        Ok(Self { settings: Arc::new(settings), tls })
    }

    /// The person `login` names, when `password` is theirs.
    pub async fn authenticate(&self, login: &str, password: &Secret) -> Result<DirectoryUser, LdapError> {
        let login = login.trim();
        if password.expose().is_empty() || login.is_empty() || login.chars().count() > MAX_LOGIN_CHARS {
            return Err(LdapError::Rejected);
        }
        let mut ldap = self.connect().await?;
        let result = self.find_and_bind(&mut ldap, login, password).await;
        let _ = ldap.unbind().await;
        result
    }

    /// Connects, binds as the service account and reads the people base: what `loquat doctor`
    /// checks.
    pub async fn probe(&self) -> Result<(), LdapError> {
        let mut ldap = self.connect().await?;
        let result = async {
            let s = &self.settings;
            self.bind_service(&mut ldap).await?;
            ldap.with_timeout(TIMEOUT)
                .search(&s.user_base, Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await
                .and_then(|result| result.success())
                .map_err(|error| LdapError::Unavailable(format!("reading {}: {error}", s.user_base)))?;
            Ok(())
        }
        .await;
        let _ = ldap.unbind().await;
        result
    }

    /// Binds as the service account (searches stay anonymous without one).
    async fn bind_service(&self, ldap: &mut ldap3::Ldap) -> Result<(), LdapError> {
        let Some(dn) = &self.settings.bind_dn else { return Ok(()) };
        let secret = self.settings.bind_password.as_ref().map(Secret::expose).unwrap_or_default();
        ldap.with_timeout(TIMEOUT)
            .simple_bind(dn, secret)
            .await
            .and_then(|result| result.success())
            .map(|_| ())
            .map_err(|error| LdapError::Unavailable(format!("the service account's bind: {error}")))
    }

    async fn connect(&self) -> Result<ldap3::Ldap, LdapError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(TIMEOUT).set_starttls(self.settings.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let (connection, ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(|error| LdapError::Unavailable(error.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.drive().await {
                tracing::debug!(%error, "the directory connection ended");
            }
        });
        Ok(ldap)
    }

    async fn find_and_bind(
        &self,
        ldap: &mut ldap3::Ldap,
        login: &str,
        password: &Secret,
    ) -> Result<DirectoryUser, LdapError> {
        let s = &self.settings;
        self.bind_service(ldap).await?;
        let filter = s.user_filter.replace("{login}", &ldap_escape(login));
        let attributes =
            vec![s.name_attribute.as_str(), s.email_attribute.as_str(), "memberOf", "entryUUID", "objectGUID"];
        let (entries, _) = ldap
            .with_timeout(TIMEOUT)
            .search(&s.user_base, Scope::Subtree, &filter, attributes)
            .await
            .and_then(|result| result.success())
            .map_err(|error| LdapError::Unavailable(format!("searching people: {error}")))?;
        // Nobody, or more than one person: never guess which.
        let [entry] = <[_; 1]>::try_from(entries).map_err(|_| LdapError::Rejected)?;
        let entry = SearchEntry::construct(entry);
        let mut groups: Vec<String> = values(&entry, "memberOf").into_iter().collect();
        if let Some(base) = s.group_base.as_deref().filter(|base| !base.trim().is_empty()) {
            let filter = s.group_filter.replace("{dn}", &ldap_escape(&entry.dn));
            let (found, _) = ldap
                .with_timeout(TIMEOUT)
                .search(base, Scope::Subtree, &filter, vec!["1.1"])
                .await
                .and_then(|result| result.success())
                .map_err(|error| LdapError::Unavailable(format!("searching groups: {error}")))?;
            groups.extend(found.into_iter().take(MAX_GROUPS).map(|group| SearchEntry::construct(group).dn));
        }
        // Last, the password: the person's own bind.
        let bound = ldap.with_timeout(TIMEOUT).simple_bind(&entry.dn, password.expose()).await;
        match bound.map(|result| result.rc) {
            Ok(0) => {}
            // invalidCredentials, and what locked or expired accounts answer.
            Ok(_) => return Err(LdapError::Rejected),
            Err(error) => return Err(LdapError::Unavailable(format!("binding as the person: {error}"))),
        }
        let admin = (!s.admin_groups.is_empty()).then(|| {
            groups.iter().any(|group| {
                let name = group_name(group);
                s.admin_groups
                    .iter()
                    .any(|admin| admin.eq_ignore_ascii_case(group) || admin.eq_ignore_ascii_case(&name))
            })
        });
        let subject = values(&entry, "entryUUID")
            .into_iter()
            .next()
            .or_else(|| binary(&entry, "objectGUID").map(hex_guid))
            .unwrap_or_else(|| entry.dn.to_lowercase());
        Ok(DirectoryUser {
            subject,
            email: values(&entry, &s.email_attribute).into_iter().next(),
            name: values(&entry, &s.name_attribute).into_iter().next(),
            groups: groups.iter().map(|group| group_name(group)).collect(),
            admin,
            dn: entry.dn,
        })
    }
}

#[async_trait::async_trait]
impl loquat_core::service::Directory for Ldap {
    async fn authenticate(
        &self,
        login: &str,
        password: &Secret,
    ) -> Result<loquat_core::service::DirectoryPerson, loquat_core::service::DirectoryError> {
        use loquat_core::service::{DirectoryError, DirectoryPerson};
        match Ldap::authenticate(self, login, password).await {
            Ok(user) => Ok(DirectoryPerson {
                subject: user.subject,
                email: user.email,
                name: user.name,
                admin: user.admin,
                groups: user.groups,
            }),
            Err(LdapError::Rejected) => Err(DirectoryError::Rejected),
            Err(error) => Err(DirectoryError::Unavailable(error.to_string())),
        }
    }
}

/// An attribute's values, whatever case the directory spells its name in.
fn values(entry: &SearchEntry, name: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, values)| values.iter().take(MAX_GROUPS).cloned().collect())
        .unwrap_or_default()
}

fn binary<'a>(entry: &'a SearchEntry, name: &str) -> Option<&'a [u8]> {
    entry.bin_attrs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name))?.1.first().map(Vec::as_slice)
}

fn hex_guid(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A group's name: the value of its DN's first RDN (`cn=admins,ou=groups,…` → `admins`).
fn group_name(dn: &str) -> String {
    let first = dn.split(',').next().unwrap_or(dn);
    first.split_once('=').map_or(first, |(_, value)| value).trim().to_owned()
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, LdapError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(certificate);
    }
    if let Some(path) = ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|error| LdapError::Settings(format!("{}: {error}", path.display())))?;
        for certificate in certificates {
            let certificate =
                certificate.map_err(|error| LdapError::Settings(format!("{}: {error}", path.display())))?;
            roots.add(certificate).map_err(|error| LdapError::Settings(format!("{}: {error}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| LdapError::Settings(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_their_first_rdn() {
        assert_eq!(group_name("cn=Loquat Admins,ou=groups,dc=example,dc=org"), "Loquat Admins");
        assert_eq!(group_name("admins"), "admins");
    }

    #[test]
    fn settings_are_checked() {
        let base = LdapSettings { url: "ldap://127.0.0.1:389".into(), user_base: "dc=x".into(), ..Default::default() };
        assert!(Ldap::new(base.clone()).is_ok());
        assert!(matches!(
            Ldap::new(LdapSettings { url: "http://x".into(), ..base.clone() }),
            Err(LdapError::Settings(_))
        ));
        let filter = LdapSettings { user_filter: "(uid=admin)".into(), ..base.clone() };
        assert!(matches!(Ldap::new(filter), Err(LdapError::Settings(_))));
        assert!(matches!(Ldap::new(LdapSettings { user_base: String::new(), ..base }), Err(LdapError::Settings(_))));
    }

    #[tokio::test]
    async fn an_empty_password_is_never_sent() {
        // Nothing listens there: a refusal without a connection proves it was not asked.
        let ldap = Ldap::new(LdapSettings {
            url: "ldap://127.0.0.1:9".into(),
            user_base: "dc=x".into(),
            ..Default::default()
        })
        .expect("settings");
        assert!(matches!(ldap.authenticate("alice", &Secret::new("")).await, Err(LdapError::Rejected)));
        assert!(matches!(ldap.authenticate("alice", &Secret::new("pw")).await, Err(LdapError::Unavailable(_))));
    }
}
