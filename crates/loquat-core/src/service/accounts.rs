//! Getting in: registration (first account becomes admin; then open, invite-only or closed),
//! password sign-in, SSO sign-in with account linking by verified email, sessions (stored
//! hashed, revocable, sliding) and password changes.

use std::time::Duration;

use std::sync::Arc;

use super::registration::{AccountRequest, Via};
use super::{Audit, Instance};
use crate::crypto::{hash_password, new_token, token_hash, verify_password};
use crate::domain::{Identity, Role, Session, User};
use crate::error::{CoreError, CoreResult};
use crate::id::UserId;
use crate::secret::Secret;
use crate::store::Store;
use crate::time::Timestamp;

/// How long a session lasts without use; each use (at most every few minutes) extends it.
const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often a session's and its user's "last seen" are written.
const TOUCH_EVERY: Duration = Duration::from_secs(5 * 60);
/// A pending SSO login expires after this.
const LOGIN_STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    Open,
    /// Only with an invite link from an admin.
    #[default]
    Invite,
    Closed,
}

impl RegistrationMode {
    pub const ALL: [RegistrationMode; 3] = [RegistrationMode::Open, RegistrationMode::Invite, RegistrationMode::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationMode::Open => "open",
            RegistrationMode::Invite => "invite",
            RegistrationMode::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// What the registration form submits.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: Secret,
    /// The code of an invite link, when registering through one.
    pub invite: Option<String>,
}

/// Where a request comes from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// A new session: the token goes into the cookie, once.
#[derive(Debug)]
pub struct NewSession {
    pub token: Secret,
    pub user: User,
}

/// A person the identity provider vouched for.
#[derive(Debug, Clone)]
pub struct SsoIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The directory's verdict from its groups: administrator or not; `None` when the provider
    /// does not decide roles.
    pub admin: Option<bool>,
    /// The person's groups when the provider sends them: a defined named role of the same name
    /// (any case) is given at sign-in, and taken back when the groups no longer have it.
    pub groups: Option<Vec<String>>,
}

/// Accounts, sign-in, sessions and single sign-on, API tokens, a user's profile and
/// preferences. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(super) store: Arc<dyn Store>,
    pub(super) audit: Audit,
    pub(super) instance: Instance,
    /// People sign in with a directory's accounts too (LDAP).
    pub(super) directory: Option<Arc<dyn Directory>>,
}

/// The identity provider name of a directory's people (their identities' `provider`).
pub const DIRECTORY_PROVIDER: &str = "ldap";

/// A directory people sign in against with its password (LDAP).
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    /// Who `login` is, when `password` is theirs.
    async fn authenticate(&self, login: &str, password: &Secret) -> Result<DirectoryPerson, DirectoryError>;
}

/// A person a directory vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPerson {
    /// Stable whatever the person's name or place in the directory.
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The verdict of the directory's groups; `None` when it does not decide roles.
    pub admin: Option<bool>,
    /// The person's groups' names.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// Unknown, wrong password, disabled: one answer.
    Rejected,
    /// It cannot be asked now (the reason is for the log).
    Unavailable(String),
}

impl Accounts {
    pub(crate) fn new(store: Arc<dyn Store>, audit: Audit, instance: Instance) -> Self {
        Self { store, audit, instance, directory: None }
    }

    /// The registration mode: the admin's choice, else the configured default. Before the
    /// first account exists, registration is always open (that account becomes admin).
    pub async fn registration_mode(&self) -> CoreResult<RegistrationMode> {
        self.instance.registration_mode().await
    }

    /// Whether an invite code is currently valid (for the registration page).
    pub async fn invite_is_valid(&self, code: &str) -> CoreResult<bool> {
        Ok(self.store.get_valid_invite(&token_hash(code.trim()), Timestamp::now()).await?.is_some())
    }

    /// Whether no account exists yet (the next one will be the admin).
    pub async fn needs_first_account(&self) -> CoreResult<bool> {
        Ok(self.store.count_accounts().await? == 0)
    }

    /// Creates an account through the registration form and signs it in.
    pub async fn register(&self, form: Registration, client: &ClientInfo) -> CoreResult<NewSession> {
        let request = AccountRequest {
            name: form.name,
            email: form.email,
            password: Some(form.password),
            via: Via::Registration { invite: form.invite },
        };
        let user = self.create_account(request, client).await?;
        self.start_session(user, client).await
    }

    /// Signs in with email and password — or, with a directory, with what the directory knows
    /// the person by and its password, unless the email is of a local account with a password
    /// (local accounts keep working when the directory is down). The error never says which of
    /// the two was wrong.
    pub async fn sign_in(&self, login: &str, password: Secret, client: &ClientInfo) -> CoreResult<NewSession> {
        let email = login.trim().to_lowercase();
        let user = self.store.find_user_by_email(&email).await?;
        let hash = match &user {
            Some(user) => self.store.password_hash(user.id).await?,
            None => None,
        };
        if let Some(directory) = self.directory.clone()
            && hash.is_none()
        {
            return self.sign_in_with_directory(directory.as_ref(), login, password, client).await;
        }
        self.instance.require_passwords()?;
        let verified = verify_off_thread(password, hash).await;
        match user {
            // A disabled account says so whatever the password: the answer must not tell a
            // guesser that a password was right.
            Some(user) if user.disabled => {
                let detail = if verified { "disabled" } else { "disabled, bad password" };
                self.audit.record(Some(user.id), "login_failed", &email, detail, client).await;
                Err(CoreError::invalid("account_disabled"))
            }
            Some(user) if verified => {
                self.audit.record(Some(user.id), "login", &email, "password", client).await;
                self.start_session(user, client).await
            }
            _ => {
                self.audit.record(None, "login_failed", &email, "bad credentials", client).await;
                Err(CoreError::invalid("bad_credentials"))
            }
        }
    }

    /// Signs in someone an SSO provider vouched for: the linked account, else the account with
    /// the same verified email (linked now), else a new account — only when registration is
    /// open, when `AUTH_ALLOWED_EMAILS` names the email, or with an invitation carried through
    /// the sign-in (`invite`). `allowed` restricts emails (addresses or `@domain`s; empty allows
    /// all).
    pub async fn sign_in_with_sso(
        &self,
        identity: SsoIdentity,
        allowed: &[String],
        invite: Option<String>,
        client: &ClientInfo,
    ) -> CoreResult<NewSession> {
        // Only a verified email may pass the allow-list: anyone can type any address.
        let email = identity.email.as_deref().map(str::trim).map(str::to_lowercase).filter(|e| !e.is_empty());
        let email_allowed =
            identity.email_verified && email.as_deref().is_some_and(|email| email_allowed(email, allowed));
        self.sign_in_identity(identity, allowed, email_allowed, invite, client).await
    }

    /// Signs in someone an identity provider or the directory vouched for; `admitted` lets a
    /// new account in on an invite-only instance (an allowed email, a directory's person).
    async fn sign_in_identity(
        &self,
        identity: SsoIdentity,
        allowed: &[String],
        email_allowed: bool,
        invite: Option<String>,
        client: &ClientInfo,
    ) -> CoreResult<NewSession> {
        let email = identity.email.as_deref().map(str::trim).map(str::to_lowercase).filter(|e| !e.is_empty());
        let provider = identity.provider.clone();
        let directory_admin = identity.admin;
        let directory_groups = identity.groups.clone();
        if !allowed.is_empty() && !email_allowed {
            self.audit.record(None, "login_failed", email.as_deref().unwrap_or(""), "email not allowed", client).await;
            return Err(CoreError::invalid("email_not_allowed"));
        }
        let user = if let Some(linked) = self.store.find_identity(&identity.provider, &identity.subject).await? {
            self.store.get_user(linked.user_id).await?.ok_or(CoreError::NotFound("user"))?
        } else {
            let existing = match (&email, identity.email_verified) {
                (Some(email), true) => self.store.find_user_by_email(email).await?,
                _ => None,
            };
            match existing {
                Some(user) => {
                    let link = Identity {
                        provider: identity.provider.clone(),
                        subject: identity.subject.clone(),
                        user_id: user.id,
                        email: email.clone(),
                        created_at: Timestamp::now(),
                    };
                    self.store.insert_identity(&link).await?;
                    user
                }
                None => {
                    let request = AccountRequest::sso(identity, email.clone(), invite, email_allowed);
                    match self.create_account(request, client).await {
                        Ok(user) => user,
                        Err(error) => {
                            let detail = format!("no account created: {error}");
                            self.audit
                                .record(None, "login_failed", email.as_deref().unwrap_or(""), &detail, client)
                                .await;
                            tracing::info!(%provider, %error, "single sign-on created no account");
                            return Err(error);
                        }
                    }
                }
            }
        };
        if user.disabled {
            self.audit.record(Some(user.id), "login_failed", email.as_deref().unwrap_or(""), "disabled", client).await;
            return Err(CoreError::invalid("account_disabled"));
        }
        let user = match directory_admin {
            Some(admin) => self.apply_directory_role(user, admin, &provider, client).await?,
            None => user,
        };
        let user = match directory_groups {
            Some(groups) => self.apply_named_role(user, &groups, &provider, client).await?,
            None => user,
        };
        self.audit.record(Some(user.id), "login", email.as_deref().unwrap_or(""), &provider, client).await;
        self.start_session(user, client).await
    }

    async fn sign_in_with_directory(
        &self,
        directory: &dyn Directory,
        login: &str,
        password: Secret,
        client: &ClientInfo,
    ) -> CoreResult<NewSession> {
        let target: String = login.trim().chars().take(200).collect();
        match directory.authenticate(login, &password).await {
            Ok(person) => {
                // The directory's address must not take over an account that signs in with a
                // password of its own (a directory may let people edit their own `mail`).
                let email = person.email.as_deref().map(str::trim).map(str::to_lowercase).filter(|e| !e.is_empty());
                if let Some(email) = &email
                    && self.store.find_identity(DIRECTORY_PROVIDER, &person.subject).await?.is_none()
                    && let Some(local) = self.store.find_user_by_email(email).await?
                    && self.store.password_hash(local.id).await?.is_some()
                {
                    self.audit
                        .record(Some(local.id), "login_failed", email, "directory email of a password account", client)
                        .await;
                    return Err(CoreError::invalid("directory_email_taken"));
                }
                let identity = SsoIdentity {
                    provider: DIRECTORY_PROVIDER.to_owned(),
                    subject: person.subject,
                    email: person.email,
                    // The directory's administrators vouch for its addresses.
                    email_verified: true,
                    name: person.name,
                    admin: person.admin,
                    groups: Some(person.groups),
                };
                self.sign_in_identity(identity, &[], true, None, client).await
            }
            Err(DirectoryError::Rejected) => {
                self.audit.record(None, "login_failed", &target, "bad credentials (directory)", client).await;
                Err(CoreError::invalid("bad_credentials"))
            }
            Err(DirectoryError::Unavailable(reason)) => {
                tracing::warn!(%reason, "the directory could not be asked");
                self.audit.record(None, "login_failed", &target, "directory unavailable", client).await;
                Err(CoreError::invalid("directory_unavailable"))
            }
        }
    }

    /// Whether people sign in with a directory's accounts (LDAP).
    pub fn has_directory(&self) -> bool {
        self.directory.is_some()
    }

    /// The role the directory's groups give, at every sign-in (audited when it changes). The
    /// last enabled administrator is not demoted by it (the instance would have none).
    async fn apply_directory_role(
        &self,
        user: User,
        admin: bool,
        provider: &str,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        let role = if admin { Role::Admin } else { Role::User };
        if user.role == role {
            return Ok(user);
        }
        if user.role == Role::Admin {
            let admins = self.store.list_users("", 10_000, 0).await?;
            let enabled = admins.iter().filter(|u| u.role == Role::Admin && !u.disabled).count();
            if enabled <= 1 {
                let detail = format!("kept: the last administrator ({provider} groups say member)");
                self.audit.record(Some(user.id), "role_kept", &user.id.to_string(), &detail, client).await;
                return Ok(user);
            }
        }
        self.store.set_user_role(user.id, role).await?;
        let detail = format!("{} from {provider} groups", role.as_str());
        self.audit.record(Some(user.id), "role_changed", &user.id.to_string(), &detail, client).await;
        Ok(User { role, ..user })
    }

    /// The named role the directory's groups give (the first defined one, by name, that a
    /// group of the same name, any case, holds; none without such a group), at every sign-in,
    /// audited when it changes.
    async fn apply_named_role(
        &self,
        user: User,
        groups: &[String],
        provider: &str,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        let snapshot = self.instance.snapshot().await?;
        let wanted = snapshot
            .named_roles()
            .iter()
            .find(|name| groups.iter().any(|group| group.trim().eq_ignore_ascii_case(name)))
            .cloned();
        if user.named_role == wanted {
            return Ok(user);
        }
        self.store.set_user_named_role(user.id, wanted.as_deref()).await?;
        let detail = format!("{} from {provider} groups", wanted.as_deref().unwrap_or("none"));
        self.audit.record(Some(user.id), "named_role_changed", &user.id.to_string(), &detail, client).await;
        Ok(User { named_role: wanted, ..user })
    }

    async fn start_session(&self, user: User, client: &ClientInfo) -> CoreResult<NewSession> {
        let token = new_token("");
        let now = Timestamp::now();
        let session = Session {
            token_hash: token_hash(token.expose()),
            user_id: user.id,
            created_at: now,
            expires_at: Timestamp(now.0 + SESSION_LIFETIME.as_millis() as i64),
            last_seen_at: now,
            ip: client.ip.chars().take(64).collect(),
            user_agent: client.user_agent.chars().take(300).collect(),
        };
        self.store.insert_session(&session).await?;
        Ok(NewSession { token, user })
    }

    /// The signed-in user of a session cookie, or `None` (unknown, expired, or the user was
    /// disabled). Extends the session and records activity at most every few minutes.
    pub async fn session_user(&self, token: &str) -> CoreResult<Option<User>> {
        let hash = token_hash(token);
        let now = Timestamp::now();
        let Some((last_seen_at, user)) = self.store.session_user(&hash, now).await? else { return Ok(None) };
        if user.disabled {
            return Ok(None);
        }
        if now.0 - last_seen_at.0 > TOUCH_EVERY.as_millis() as i64 {
            self.store.touch_session(&hash, now).await?;
            self.store.touch_user(user.id, now).await?;
        }
        Ok(Some(user))
    }

    pub async fn sign_out(&self, token: &str) -> CoreResult<()> {
        self.store.delete_session(&token_hash(token)).await?;
        Ok(())
    }

    /// Ends every session of the user (all browsers, all devices) and, when asked, revokes
    /// their API tokens too.
    pub async fn sign_out_everywhere(&self, user: UserId, revoke_tokens: bool, client: &ClientInfo) -> CoreResult<u64> {
        let ended = self.store.delete_user_sessions(user).await?;
        let detail = format!("{ended} sessions{}", self.revoke_tokens_if(user, revoke_tokens).await?);
        self.audit.record(Some(user), "logout_everywhere", &user.to_string(), &detail, client).await;
        Ok(ended)
    }

    /// Revokes every API token of the user when `revoke`; a note for the audit log.
    pub(crate) async fn revoke_tokens_if(&self, user: UserId, revoke: bool) -> CoreResult<String> {
        if !revoke {
            return Ok(String::new());
        }
        let revoked = self.store.revoke_user_api_tokens(user, Timestamp::now()).await?;
        Ok(format!(", {revoked} API tokens revoked"))
    }

    pub async fn sessions(&self, user: UserId) -> CoreResult<Vec<Session>> {
        Ok(self.store.list_sessions(user, Timestamp::now()).await?)
    }

    /// Changes the password after checking the current one; other sessions end, and the API
    /// tokens too when `revoke_tokens`.
    pub async fn change_password(
        &self,
        user: UserId,
        current: Secret,
        new: Secret,
        keep_session: Option<&str>,
        revoke_tokens: bool,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.instance.require_passwords()?;
        check_password(&new)?;
        let stored = self.store.password_hash(user).await?;
        // SSO-only accounts have no password yet: they may set one without a current one.
        if stored.is_some() && !verify_off_thread(current, stored).await {
            return Err(CoreError::invalid("bad_password"));
        }
        let hash = hash_off_thread(new).await?;
        self.store.set_password_hash(user, &hash).await?;
        self.store.delete_user_sessions(user).await?;
        if let Some(token) = keep_session
            && let Some(me) = self.store.get_user(user).await?
        {
            // Re-issue the current browser's session under the same token.
            let now = Timestamp::now();
            let session = Session {
                token_hash: token_hash(token),
                user_id: me.id,
                created_at: now,
                expires_at: Timestamp(now.0 + SESSION_LIFETIME.as_millis() as i64),
                last_seen_at: now,
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
            };
            self.store.insert_session(&session).await?;
        }
        let detail = self.revoke_tokens_if(user, revoke_tokens).await?;
        self.audit
            .record(Some(user), "password_changed", &user.to_string(), detail.trim_start_matches(", "), client)
            .await;
        Ok(())
    }

    /// Deletes expired sessions and abandoned SSO logins (run periodically).
    pub async fn purge_expired(&self) -> CoreResult<u64> {
        let now = Timestamp::now();
        let logins_before = Timestamp(now.0 - LOGIN_STATE_LIFETIME.as_millis() as i64);
        Ok(self.store.purge_expired(now, logins_before).await?)
    }

    /// Remembers a pending SSO login (opaque to core) under its state, for one use.
    pub async fn save_login_state(&self, state: &str, data: &str) -> CoreResult<()> {
        Ok(self.store.put_login_state(state, data, Timestamp::now()).await?)
    }

    /// Takes a pending SSO login; `None` when unknown, used, or older than ten minutes.
    pub async fn take_login_state(&self, state: &str) -> CoreResult<Option<String>> {
        let Some((data, created)) = self.store.take_login_state(state).await? else { return Ok(None) };
        let fresh = Timestamp::now().0 - created.0 <= LOGIN_STATE_LIFETIME.as_millis() as i64;
        Ok(fresh.then_some(data))
    }
}

pub(crate) fn normalize_email(email: &str) -> CoreResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(CoreError::invalid("email_invalid")) }
}

pub(crate) fn check_password(password: &Secret) -> CoreResult<()> {
    let length = password.expose().chars().count();
    if !(8..=256).contains(&length) {
        return Err(CoreError::invalid("password_length"));
    }
    Ok(())
}

/// Whether `email` matches an entry of `AUTH_ALLOWED_EMAILS` (an address, or a domain as
/// `example.com` or `@example.com`).
pub(crate) fn email_allowed(email: &str, allowed: &[String]) -> bool {
    let domain = email.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default();
    allowed
        .iter()
        .map(|entry| entry.trim().to_lowercase())
        .any(|entry| entry == email || entry.trim_start_matches('@') == domain)
}

pub(crate) async fn hash_off_thread(password: Secret) -> CoreResult<String> {
    tokio::task::spawn_blocking(move || hash_password(password.expose()))
        .await
        .map_err(|_| CoreError::invalid("password_length"))?
        .map_err(CoreError::from)
}

/// Verifies off the runtime; without a stored hash it still does the work (a dummy hash) so
/// that timing does not reveal which emails have accounts.
async fn verify_off_thread(password: Secret, hash: Option<String>) -> bool {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("no account has this password").unwrap_or_default());
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY.clone());
    let matched = tokio::task::spawn_blocking(move || verify_password(password.expose(), &hash)).await.unwrap_or(false);
    known && matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").expect("valid"), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@", "ada@example", "a da@example.com", "ada@.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_emails_match_addresses_and_domains() {
        let allowed = vec!["boss@other.org".to_owned(), "@example.com".to_owned(), "team.cn".to_owned()];
        assert!(email_allowed("ada@example.com", &allowed));
        assert!(email_allowed("boss@other.org", &allowed));
        assert!(email_allowed("li@team.cn", &allowed));
        assert!(!email_allowed("eve@other.org", &allowed));
        assert!(!email_allowed("eve@example.com.evil", &allowed));
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(check_password(&Secret::new("1234567")).is_err());
        assert!(check_password(&Secret::new("12345678")).is_ok());
        assert!(check_password(&Secret::new("密码密码密码密码")).is_ok());
    }
}
