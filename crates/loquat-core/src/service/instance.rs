//! The administrator's run-time settings of the instance — registration mode, users' own keys,
//! models per role, quotas per role and per person — read on almost every request, so kept as
//! one snapshot in process. A change made here is seen at once by this process; other replicas
//! see it within [`FRESH_FOR`] (each reloads its snapshot, two small queries, when it is older).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::Limits;
use super::accounts::RegistrationMode;
use crate::domain::{Quota, QuotaScope, Role};
use crate::error::CoreResult;
use crate::id::UserId;
use crate::store::Store;

/// How long a snapshot is trusted: the longest another replica's change takes to show here.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

const REGISTRATION_MODE: &str = "registration_mode";
const ALLOW_USER_KEYS: &str = "allow_user_keys";
const EMBEDDING_MODEL: &str = "embedding_model";
const SHARING: &str = "sharing";
const REQUEST_AUDIT: &str = "request_audit";

/// What the audit log keeps of each model request (the administrator's choice; people are told
/// on their account page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestAudit {
    #[default]
    Off,
    /// Who, when, which model, the outcome and the token counts.
    Metadata,
    /// That, and the question and the answer.
    Content,
}

impl RequestAudit {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestAudit::Off => "off",
            RequestAudit::Metadata => "metadata",
            RequestAudit::Content => "content",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(RequestAudit::Off),
            "metadata" => Some(RequestAudit::Metadata),
            "content" => Some(RequestAudit::Content),
            _ => None,
        }
    }
}

/// The settings as one consistent value.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    registration: Option<RegistrationMode>,
    allow_user_keys: Option<bool>,
    /// Whether people may share topics by link (absent: yes).
    sharing: Option<bool>,
    request_audit: RequestAudit,
    /// The administrator's embedding model: `provider/model`, or `none` for keyword search
    /// only; absent, the configured one (`DEFAULT_FILES_CONFIG`).
    embedding_model: Option<String>,
    /// `provider::model` patterns per role (empty or absent = all models).
    role_models: HashMap<Role, Vec<String>>,
    /// Tool names per role (absent = every tool).
    role_tools: HashMap<Role, Vec<String>>,
    role_quotas: HashMap<Role, Quota>,
    user_quotas: HashMap<UserId, Quota>,
}

impl Snapshot {
    fn load(settings: Vec<(String, String)>, quotas: Vec<(QuotaScope, Quota)>) -> Self {
        let mut snapshot = Self::default();
        for (key, value) in settings {
            match key.as_str() {
                REGISTRATION_MODE => snapshot.registration = RegistrationMode::parse(&value),
                ALLOW_USER_KEYS => snapshot.allow_user_keys = Some(value == "true"),
                SHARING => snapshot.sharing = Some(value == "true"),
                REQUEST_AUDIT => snapshot.request_audit = RequestAudit::parse(&value).unwrap_or_default(),
                EMBEDDING_MODEL => snapshot.embedding_model = Some(value).filter(|v| !v.is_empty()),
                _ => {
                    if let Some(role) = key.strip_prefix("models.").and_then(Role::parse) {
                        let patterns = serde_json::from_str(&value).unwrap_or_default();
                        snapshot.role_models.insert(role, patterns);
                    } else if let Some(role) = key.strip_prefix("tools.").and_then(Role::parse) {
                        // `null`: every tool (as when unset).
                        if let Ok(Some(names)) = serde_json::from_str::<Option<Vec<String>>>(&value) {
                            snapshot.role_tools.insert(role, names);
                        }
                    }
                }
            }
        }
        for (scope, quota) in quotas {
            match scope {
                QuotaScope::Role(role) => snapshot.role_quotas.insert(role, quota),
                QuotaScope::User(user) => snapshot.user_quotas.insert(user, quota),
            };
        }
        snapshot
    }

    /// The quota that applies to a user: their own limits, each unset one taken from the role.
    pub fn quota(&self, user: UserId, role: Role) -> Quota {
        let own = self.user_quotas.get(&user).cloned().unwrap_or_default();
        let by_role = self.role_quotas.get(&role).cloned().unwrap_or_default();
        Quota {
            tokens_per_day: own.tokens_per_day.or(by_role.tokens_per_day),
            tokens_per_month: own.tokens_per_month.or(by_role.tokens_per_month),
            requests_per_minute: own.requests_per_minute.or(by_role.requests_per_minute),
            storage_mb: own.storage_mb.or(by_role.storage_mb),
        }
    }

    /// The quota stored for exactly this scope (the admin's forms).
    pub fn scoped_quota(&self, scope: &QuotaScope) -> Quota {
        let quota = match scope {
            QuotaScope::Role(role) => self.role_quotas.get(role),
            QuotaScope::User(user) => self.user_quotas.get(user),
        };
        quota.cloned().unwrap_or_default()
    }

    /// The models a role may use, as `provider::model` or `provider::*` patterns (empty = all).
    pub fn role_models(&self, role: Role) -> &[String] {
        self.role_models.get(&role).map_or(&[], Vec::as_slice)
    }

    /// The tools a role may use, by name; `None`: every tool.
    pub fn role_tools(&self, role: Role) -> Option<&[String]> {
        self.role_tools.get(&role).map(Vec::as_slice)
    }

    /// The administrator's choice of embedding model (`provider/model` or `none`), if any.
    pub fn embedding_model(&self) -> Option<&str> {
        self.embedding_model.as_deref()
    }
}

/// A snapshot and when it was read.
type Cached = (Instant, Arc<Snapshot>);

/// The instance's settings, cached. Cheap to clone.
#[derive(Clone)]
pub struct Instance {
    store: Arc<dyn Store>,
    limits: Limits,
    cached: Arc<RwLock<Option<Cached>>>,
}

impl Instance {
    pub(crate) fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self { store, limits, cached: Arc::default() }
    }

    /// The current snapshot: the cached one while fresh, else read again.
    pub async fn snapshot(&self) -> CoreResult<Arc<Snapshot>> {
        if let Some((at, snapshot)) = self.cached.read().unwrap_or_else(|p| p.into_inner()).as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(snapshot));
        }
        self.reload().await
    }

    /// The snapshot read now, whatever the cached one's age (for decisions that must not act
    /// on a change another replica made a moment ago).
    pub(crate) async fn reload(&self) -> CoreResult<Arc<Snapshot>> {
        let (settings, quotas) = tokio::join!(self.store.list_settings(), self.store.list_quotas());
        let snapshot = Arc::new(Snapshot::load(settings?, quotas?));
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), Arc::clone(&snapshot)));
        Ok(snapshot)
    }

    /// Forgets the snapshot after a change, so this process sees it at once.
    pub(crate) fn changed(&self) {
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The registration mode: the admin's choice, else the configured default. Before the
    /// first account exists, registration is always possible (that account becomes admin).
    pub async fn registration_mode(&self) -> CoreResult<RegistrationMode> {
        Ok(self.snapshot().await?.registration.unwrap_or(self.limits.registration))
    }

    /// Whether users may use their own provider keys: the admin's choice, else the config.
    pub async fn user_keys_allowed(&self) -> CoreResult<bool> {
        Ok(self.user_keys_allowed_in(&*self.snapshot().await?))
    }

    /// [`Instance::user_keys_allowed`] in a snapshot already read.
    pub(crate) fn user_keys_allowed_in(&self, snapshot: &Snapshot) -> bool {
        snapshot.allow_user_keys.unwrap_or(self.limits.allow_user_keys)
    }

    /// Whether people may have and use passwords (`AUTH_DISABLE_EMAIL_PASSWORD` turns them off).
    pub fn passwords_allowed(&self) -> bool {
        self.limits.passwords
    }

    /// Refuses what needs a password on an instance without them.
    pub(crate) fn require_passwords(&self) -> CoreResult<()> {
        if self.passwords_allowed() { Ok(()) } else { Err(crate::error::CoreError::invalid("passwords_off")) }
    }

    /// Whether topics may be shared by link (the administrator can turn it off; on by default).
    pub async fn sharing_enabled(&self) -> CoreResult<bool> {
        Ok(self.snapshot().await?.sharing.unwrap_or(true))
    }

    /// What the audit log keeps of each model request.
    pub async fn request_audit(&self) -> CoreResult<RequestAudit> {
        Ok(self.snapshot().await?.request_audit)
    }

    pub(crate) async fn set_request_audit(&self, mode: RequestAudit) -> CoreResult<()> {
        self.set(REQUEST_AUDIT, mode.as_str()).await
    }

    pub(crate) async fn set_sharing(&self, enabled: bool) -> CoreResult<()> {
        self.set(SHARING, if enabled { "true" } else { "false" }).await
    }

    /// The models a role may use, as `provider::model` or `provider::*` patterns (empty = all).
    pub async fn role_models(&self, role: Role) -> CoreResult<Vec<String>> {
        Ok(self.snapshot().await?.role_models(role).to_vec())
    }

    /// The quota that applies to a user (their own limits, each unset one from the role).
    pub async fn quota(&self, user: UserId, role: Role) -> CoreResult<Quota> {
        Ok(self.snapshot().await?.quota(user, role))
    }

    pub(crate) async fn set_registration_mode(&self, mode: RegistrationMode) -> CoreResult<()> {
        self.set(REGISTRATION_MODE, mode.as_str()).await
    }

    pub(crate) async fn set_user_keys_allowed(&self, allowed: bool) -> CoreResult<()> {
        self.set(ALLOW_USER_KEYS, if allowed { "true" } else { "false" }).await
    }

    /// `provider/model`, `none` (keyword search only) or empty (the configured model).
    pub(crate) async fn set_embedding_model(&self, choice: &str) -> CoreResult<()> {
        self.set(EMBEDDING_MODEL, choice).await
    }

    /// `None` lets the role use every tool.
    pub(crate) async fn set_role_tools(&self, role: Role, names: Option<&[String]>) -> CoreResult<()> {
        let json = match names {
            Some(names) => serde_json::to_string(names).unwrap_or_else(|_| "[]".to_owned()),
            None => "null".to_owned(),
        };
        self.set(&format!("tools.{}", role.as_str()), &json).await
    }

    pub(crate) async fn set_role_models(&self, role: Role, json: &str) -> CoreResult<()> {
        self.set(&format!("models.{}", role.as_str()), json).await
    }

    pub(crate) async fn set_quota(&self, scope: &QuotaScope, quota: &Quota) -> CoreResult<()> {
        if *quota == Quota::default() {
            self.store.delete_quota(scope).await?;
        } else {
            self.store.set_quota(scope, quota).await?;
        }
        self.changed();
        Ok(())
    }

    async fn set(&self, key: &str, value: &str) -> CoreResult<()> {
        self.store.set_setting(key, value).await?;
        self.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_settings_and_quotas() {
        let user = UserId::new();
        let settings = vec![
            ("registration_mode".to_owned(), "open".to_owned()),
            ("allow_user_keys".to_owned(), "false".to_owned()),
            ("models.user".to_owned(), r#"["openai::gpt-4o-mini"]"#.to_owned()),
            ("models.nobody".to_owned(), "[]".to_owned()),
            ("embedding_model".to_owned(), "ollama/bge-m3".to_owned()),
            ("tools.user".to_owned(), r#"["web_search"]"#.to_owned()),
            ("tools.admin".to_owned(), "null".to_owned()),
        ];
        let role_quota = Quota { tokens_per_day: Some(100), requests_per_minute: Some(5), ..Quota::default() };
        let own = Quota { requests_per_minute: Some(50), ..Quota::default() };
        let quotas = vec![(QuotaScope::Role(Role::User), role_quota), (QuotaScope::User(user), own)];
        let snapshot = Snapshot::load(settings, quotas);
        assert_eq!(snapshot.registration, Some(RegistrationMode::Open));
        assert_eq!(snapshot.allow_user_keys, Some(false));
        assert_eq!(snapshot.embedding_model(), Some("ollama/bge-m3"));
        assert_eq!(snapshot.role_tools(Role::User), Some(&["web_search".to_owned()][..]));
        assert_eq!(snapshot.role_tools(Role::Admin), None, "null: every tool");
        assert_eq!(snapshot.role_models(Role::User), ["openai::gpt-4o-mini"]);
        assert!(snapshot.role_models(Role::Admin).is_empty());
        let effective = snapshot.quota(user, Role::User);
        assert_eq!((effective.tokens_per_day, effective.requests_per_minute), (Some(100), Some(50)));
        assert_eq!(snapshot.quota(UserId::new(), Role::Admin), Quota::default());
    }
}
