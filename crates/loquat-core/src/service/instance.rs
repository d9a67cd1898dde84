//! The administrator's run-time settings of the instance — registration mode, users' own keys,
//! models per role, quotas per role and per person — read on almost every request, so kept as
//! one snapshot in process. A change made here is seen at once by this process; other replicas
//! see it within [`FRESH_FOR`] (each reloads its snapshot, two small queries, when it is older).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::Limits;
use super::accounts::RegistrationMode;
use crate::domain::{Policy, Quota, QuotaScope, Role, User};
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
const NAMED_ROLES: &str = "named_roles";

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
    /// The named roles the administrator defined, sorted.
    named_roles: Vec<String>,
    /// `provider::model` patterns per policy (empty or absent = all models).
    models: HashMap<Policy, Vec<String>>,
    /// Tool names per policy (absent = every tool).
    tools: HashMap<Policy, Vec<String>>,
    quotas: HashMap<Policy, Quota>,
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
                NAMED_ROLES => {
                    let mut names: Vec<String> = serde_json::from_str(&value).unwrap_or_default();
                    names.retain(|name| crate::domain::valid_named_role(name));
                    names.sort();
                    names.dedup();
                    snapshot.named_roles = names;
                }
                _ => {
                    if let Some(policy) = key.strip_prefix("models.").and_then(Policy::parse) {
                        let patterns = serde_json::from_str(&value).unwrap_or_default();
                        snapshot.models.insert(policy, patterns);
                    } else if let Some(policy) = key.strip_prefix("tools.").and_then(Policy::parse) {
                        // `null`: every tool (as when unset).
                        if let Ok(Some(names)) = serde_json::from_str::<Option<Vec<String>>>(&value) {
                            snapshot.tools.insert(policy, names);
                        }
                    }
                }
            }
        }
        for (scope, quota) in quotas {
            match scope {
                QuotaScope::Role(role) => snapshot.quotas.insert(Policy::Role(role), quota),
                QuotaScope::Named(name) => snapshot.quotas.insert(Policy::Named(name), quota),
                QuotaScope::User(user) => snapshot.user_quotas.insert(user, quota),
            };
        }
        snapshot
    }

    /// The named roles the administrator defined, sorted.
    pub fn named_roles(&self) -> &[String] {
        &self.named_roles
    }

    /// What decides `user`'s models, tools and quota: a member's named role when it is defined,
    /// else their role.
    pub fn policy_of(&self, user: &User) -> Policy {
        match &user.named_role {
            Some(name) if user.role == Role::User && self.named_roles.iter().any(|n| n == name) => {
                Policy::Named(name.clone())
            }
            _ => Policy::Role(user.role),
        }
    }

    /// The quota that applies to a user: their own limits, each unset one taken from their
    /// role (or named role).
    pub fn quota(&self, user: &User) -> Quota {
        let own = self.user_quotas.get(&user.id).cloned().unwrap_or_default();
        let by_role = self.quotas.get(&self.policy_of(user)).cloned().unwrap_or_default();
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
            QuotaScope::Role(role) => self.quotas.get(&Policy::Role(*role)),
            QuotaScope::Named(name) => self.quotas.get(&Policy::Named(name.clone())),
            QuotaScope::User(user) => self.user_quotas.get(user),
        };
        quota.cloned().unwrap_or_default()
    }

    /// The models a policy allows, as `provider::model` or `provider::*` patterns (empty = all).
    pub fn models(&self, policy: &Policy) -> &[String] {
        self.models.get(policy).map_or(&[], Vec::as_slice)
    }

    /// The tools a policy allows, by name; `None`: every tool.
    pub fn tools(&self, policy: &Policy) -> Option<&[String]> {
        self.tools.get(policy).map(Vec::as_slice)
    }

    /// The models `user` may use (see [`Snapshot::models`]).
    pub fn models_for(&self, user: &User) -> &[String] {
        self.models(&self.policy_of(user))
    }

    /// The tools `user` may use (see [`Snapshot::tools`]).
    pub fn tools_for(&self, user: &User) -> Option<&[String]> {
        self.tools(&self.policy_of(user))
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

    /// The models a policy allows, as `provider::model` or `provider::*` patterns (empty = all).
    pub async fn policy_models(&self, policy: &Policy) -> CoreResult<Vec<String>> {
        Ok(self.snapshot().await?.models(policy).to_vec())
    }

    /// The quota that applies to a user (their own limits, each unset one from the role).
    pub async fn quota(&self, user: &User) -> CoreResult<Quota> {
        Ok(self.snapshot().await?.quota(user))
    }

    /// Defines the named roles (validated names).
    pub(crate) async fn set_named_roles(&self, names: &[String]) -> CoreResult<()> {
        self.set(NAMED_ROLES, &serde_json::to_string(names).unwrap_or_else(|_| "[]".to_owned())).await
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
    pub(crate) async fn set_policy_tools(&self, policy: &Policy, names: Option<&[String]>) -> CoreResult<()> {
        let json = match names {
            Some(names) => serde_json::to_string(names).unwrap_or_else(|_| "[]".to_owned()),
            None => "null".to_owned(),
        };
        self.set(&format!("tools.{}", policy.key()), &json).await
    }

    pub(crate) async fn set_policy_models(&self, policy: &Policy, json: &str) -> CoreResult<()> {
        self.set(&format!("models.{}", policy.key()), json).await
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
    use crate::domain::Theme;
    use crate::time::Timestamp;

    fn person(role: Role, named_role: Option<&str>) -> User {
        User {
            id: UserId::new(),
            name: "P".into(),
            email: None,
            role,
            disabled: false,
            locale: None,
            theme: Theme::System,
            created_at: Timestamp(0),
            last_active_at: None,
            named_role: named_role.map(str::to_owned),
        }
    }

    #[test]
    fn a_snapshot_reads_settings_and_quotas() {
        let member = person(Role::User, None);
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
        let quotas = vec![(QuotaScope::Role(Role::User), role_quota), (QuotaScope::User(member.id), own)];
        let snapshot = Snapshot::load(settings, quotas);
        assert_eq!(snapshot.registration, Some(RegistrationMode::Open));
        assert_eq!(snapshot.allow_user_keys, Some(false));
        assert_eq!(snapshot.embedding_model(), Some("ollama/bge-m3"));
        let (users, admins) = (Policy::Role(Role::User), Policy::Role(Role::Admin));
        assert_eq!(snapshot.tools(&users), Some(&["web_search".to_owned()][..]));
        assert_eq!(snapshot.tools(&admins), None, "null: every tool");
        assert_eq!(snapshot.models(&users), ["openai::gpt-4o-mini"]);
        assert!(snapshot.models(&admins).is_empty());
        let effective = snapshot.quota(&member);
        assert_eq!((effective.tokens_per_day, effective.requests_per_minute), (Some(100), Some(50)));
        assert_eq!(snapshot.quota(&person(Role::Admin, None)), Quota::default());
    }

    #[test]
    fn a_defined_named_role_decides_a_members_models_tools_and_quota() {
        let settings = vec![
            ("named_roles".to_owned(), r#"["analysts", "Bad Name", "admin"]"#.to_owned()),
            ("models.user".to_owned(), r#"["openai::gpt-4o-mini"]"#.to_owned()),
            ("models.role:analysts".to_owned(), r#"["openai::o3"]"#.to_owned()),
            ("tools.role:analysts".to_owned(), r#"["web_search"]"#.to_owned()),
        ];
        let quotas =
            vec![(QuotaScope::Named("analysts".into()), Quota { tokens_per_day: Some(7), ..Quota::default() })];
        let snapshot = Snapshot::load(settings, quotas);
        assert_eq!(snapshot.named_roles(), ["analysts"], "invalid names are dropped");
        let analyst = person(Role::User, Some("analysts"));
        assert_eq!(snapshot.models_for(&analyst), ["openai::o3"]);
        assert_eq!(snapshot.tools_for(&analyst), Some(&["web_search".to_owned()][..]));
        assert_eq!(snapshot.quota(&analyst).tokens_per_day, Some(7));
        // A name no longer defined, or an administrator: the role decides.
        assert_eq!(snapshot.models_for(&person(Role::User, Some("former"))), ["openai::gpt-4o-mini"]);
        assert!(snapshot.models_for(&person(Role::Admin, Some("analysts"))).is_empty());
    }
}
