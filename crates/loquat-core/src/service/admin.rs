//! The admin's side: people (list, create, role, disable, reset password), invitations,
//! instance settings (registration, users' own keys, models and quotas per role, the embedding
//! model), knowledge bases shared across the instance, quotas per person and the audit log.
//! Every method checks that the actor is an admin.

use std::sync::Arc;
use std::time::Duration;

use super::accounts::{ClientInfo, RegistrationMode, check_password, hash_off_thread};
use super::knowledge::{EmbeddingChoice, EmbeddingModel};
use super::registration::{AccountRequest, Via};
use super::{Accounts, Audit, Instance, Knowledge};
use crate::crypto::{new_token, token_hash};
use crate::domain::{AuditEvent, IngestState, Invite, KnowledgeBase, Policy, Quota, QuotaScope, Role, User};
use crate::error::{CoreError, CoreResult};
use crate::id::{KnowledgeBaseId, UserId};

/// Named roles an instance may define at most.
pub const MAX_NAMED_ROLES: usize = 50;
use crate::secret::Secret;
use crate::store::{AuditFilter, Store};
use crate::time::Timestamp;

/// The most audit events one export holds.
pub const MAX_AUDIT_EXPORT: u32 = 100_000;

/// An invite link was made: the code is shown once.
#[derive(Debug)]
pub struct NewInvite {
    pub code: Secret,
    pub invite: Invite,
}

/// The administrator's side. Every method checks that the actor is an enabled admin. Cheap to
/// clone.
#[derive(Clone)]
pub struct Admin {
    pub(super) store: Arc<dyn Store>,
    pub(super) audit: Audit,
    pub(super) instance: Instance,
    pub(super) accounts: Accounts,
    knowledge: Knowledge,
}

/// The instance's knowledge, as the administrator sees it.
pub struct KnowledgeOverview {
    pub choice: EmbeddingChoice,
    /// `DEFAULT_FILES_CONFIG`'s model.
    pub configured: Option<EmbeddingModel>,
    /// The model in use (the choice applied).
    pub current: Option<EmbeddingModel>,
    /// Documents per state, by the model of their vectors.
    pub documents: Vec<(IngestState, Option<String>, u64)>,
    /// Every knowledge base shared beyond its owner, with the owner.
    pub shared: Vec<(KnowledgeBase, User)>,
}

impl Admin {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        audit: Audit,
        instance: Instance,
        accounts: Accounts,
        knowledge: Knowledge,
    ) -> Self {
        Self { store, audit, instance, accounts, knowledge }
    }

    /// The actor, if they are an enabled admin.
    pub async fn require_admin(&self, actor: UserId) -> CoreResult<User> {
        super::admin_user(self.store.as_ref(), actor).await
    }

    pub async fn admin_list_users(&self, actor: UserId, search: &str, page: u32) -> CoreResult<Vec<User>> {
        self.require_admin(actor).await?;
        Ok(self.store.list_users(search.trim(), 50, page.saturating_mul(50)).await?)
    }

    pub async fn admin_user(&self, actor: UserId, id: UserId) -> CoreResult<User> {
        self.require_admin(actor).await?;
        super::existing_user(self.store.as_ref(), id).await
    }

    /// Creates an account for somebody (the admin hands them the password).
    pub async fn admin_create_user(
        &self,
        actor: UserId,
        name: &str,
        email: &str,
        password: Secret,
        role: Role,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        let request = AccountRequest {
            name: name.to_owned(),
            email: email.to_owned(),
            password: Some(password),
            via: Via::Admin { actor, role },
        };
        self.accounts.create_account(request, client).await
    }

    /// Changes a role; the last enabled admin cannot be demoted.
    pub async fn admin_set_role(&self, actor: UserId, id: UserId, role: Role, client: &ClientInfo) -> CoreResult<()> {
        self.require_admin(actor).await?;
        let target = super::existing_user(self.store.as_ref(), id).await?;
        if target.role == Role::Admin && role != Role::Admin && self.enabled_admins().await? <= 1 {
            return Err(CoreError::invalid("last_admin"));
        }
        self.store.set_user_role(id, role).await?;
        self.audit.record(Some(actor), "role_changed", &id.to_string(), role.as_str(), client).await;
        Ok(())
    }

    /// Disables (or re-enables) an account; a disabled user's sessions end at once.
    pub async fn admin_set_disabled(
        &self,
        actor: UserId,
        id: UserId,
        disabled: bool,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        if disabled && id == actor {
            return Err(CoreError::invalid("disable_self"));
        }
        self.store.set_user_disabled(id, disabled).await?;
        if disabled {
            self.store.delete_user_sessions(id).await?;
        }
        let action = if disabled { "user_disabled" } else { "user_enabled" };
        self.audit.record(Some(actor), action, &id.to_string(), "", client).await;
        Ok(())
    }

    /// Sets a new password for a user and ends their sessions (and revokes their API tokens
    /// when `revoke_tokens`).
    pub async fn admin_reset_password(
        &self,
        actor: UserId,
        id: UserId,
        password: Secret,
        revoke_tokens: bool,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.instance.require_passwords()?;
        check_password(&password)?;
        super::existing_user(self.store.as_ref(), id).await?;
        let hash = hash_off_thread(password).await?;
        self.store.set_password_hash(id, &hash).await?;
        self.store.delete_user_sessions(id).await?;
        let detail = self.accounts.revoke_tokens_if(id, revoke_tokens).await?;
        self.audit
            .record(Some(actor), "password_reset", &id.to_string(), detail.trim_start_matches(", "), client)
            .await;
        Ok(())
    }

    pub(super) async fn enabled_admins(&self) -> CoreResult<usize> {
        let mut count = 0;
        let mut page = 0;
        loop {
            let users = self.store.list_users("", 500, page * 500).await?;
            count += users.iter().filter(|u| u.role == Role::Admin && !u.disabled && u.email.is_some()).count();
            if users.len() < 500 {
                return Ok(count);
            }
            page += 1;
        }
    }

    /// A single-use invite link valid for `valid_for`.
    pub async fn admin_create_invite(
        &self,
        actor: UserId,
        role: Role,
        valid_for: Duration,
        client: &ClientInfo,
    ) -> CoreResult<NewInvite> {
        self.require_admin(actor).await?;
        let code = new_token("");
        let now = Timestamp::now();
        let invite = Invite {
            code_hash: token_hash(code.expose()),
            created_by: actor,
            role,
            created_at: now,
            expires_at: Timestamp(now.0 + valid_for.as_millis() as i64),
            used_by: None,
            used_at: None,
        };
        self.store.insert_invite(&invite).await?;
        self.audit.record(Some(actor), "invite_created", role.as_str(), "", client).await;
        Ok(NewInvite { code, invite })
    }

    pub async fn admin_invites(&self, actor: UserId) -> CoreResult<Vec<Invite>> {
        self.require_admin(actor).await?;
        Ok(self.store.list_invites().await?)
    }

    pub async fn admin_delete_invite(&self, actor: UserId, code_hash: &str) -> CoreResult<()> {
        self.require_admin(actor).await?;
        if self.store.delete_invite(code_hash).await? { Ok(()) } else { Err(CoreError::NotFound("invite")) }
    }

    pub async fn admin_set_registration(
        &self,
        actor: UserId,
        mode: RegistrationMode,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.instance.set_registration_mode(mode).await?;
        self.audit.record(Some(actor), "settings_changed", "registration_mode", mode.as_str(), client).await;
        Ok(())
    }

    pub async fn admin_set_user_keys(&self, actor: UserId, allowed: bool, client: &ClientInfo) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.instance.set_user_keys_allowed(allowed).await?;
        self.audit.record(Some(actor), "settings_changed", "allow_user_keys", &allowed.to_string(), client).await;
        Ok(())
    }

    /// What the audit log keeps of each model request (people see it on their account page).
    pub async fn admin_set_request_audit(
        &self,
        actor: UserId,
        mode: super::instance::RequestAudit,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.instance.set_request_audit(mode).await?;
        self.audit.record(Some(actor), "settings_changed", "request_audit", mode.as_str(), client).await;
        Ok(())
    }

    /// Lets people share topics by link, or stops it (existing links stop opening).
    pub async fn admin_set_sharing(&self, actor: UserId, enabled: bool, client: &ClientInfo) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.instance.set_sharing(enabled).await?;
        self.audit.record(Some(actor), "settings_changed", "sharing", &enabled.to_string(), client).await;
        Ok(())
    }

    pub async fn admin_set_role_models(
        &self,
        actor: UserId,
        policy: &Policy,
        patterns: Vec<String>,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.require_policy(policy).await?;
        let patterns: Vec<String> =
            patterns.into_iter().map(|p| p.trim().to_owned()).filter(|p| p.contains("::")).take(500).collect();
        let json = serde_json::to_string(&patterns).unwrap_or_else(|_| "[]".to_owned());
        self.instance.set_policy_models(policy, &json).await?;
        self.audit.record(Some(actor), "settings_changed", &format!("models.{}", policy.key()), &json, client).await;
        Ok(())
    }

    /// A named role must be defined before its settings are written.
    async fn require_policy(&self, policy: &Policy) -> CoreResult<()> {
        match policy {
            Policy::Role(_) => Ok(()),
            Policy::Named(name) if self.instance.snapshot().await?.named_roles().contains(name) => Ok(()),
            Policy::Named(_) => Err(CoreError::NotFound("named_role")),
        }
    }

    /// Defines a named role (members given it use its models, tools and quota).
    pub async fn admin_add_named_role(&self, actor: UserId, name: &str, client: &ClientInfo) -> CoreResult<()> {
        self.require_admin(actor).await?;
        let name = name.trim().to_lowercase();
        if !crate::domain::valid_named_role(&name) {
            return Err(CoreError::invalid("named_role_name"));
        }
        let mut names = self.instance.reload().await?.named_roles().to_vec();
        if names.len() >= MAX_NAMED_ROLES {
            return Err(CoreError::invalid("named_role_count"));
        }
        if !names.contains(&name) {
            names.push(name.clone());
            names.sort();
            self.instance.set_named_roles(&names).await?;
            self.audit.record(Some(actor), "named_role_added", &name, "", client).await;
        }
        Ok(())
    }

    /// Removes a named role and its settings; its members fall back to the member role.
    pub async fn admin_delete_named_role(&self, actor: UserId, name: &str, client: &ClientInfo) -> CoreResult<()> {
        self.require_admin(actor).await?;
        let mut names = self.instance.reload().await?.named_roles().to_vec();
        let before = names.len();
        names.retain(|existing| existing != name);
        if names.len() == before {
            return Err(CoreError::NotFound("named_role"));
        }
        self.instance.set_named_roles(&names).await?;
        let policy = Policy::Named(name.to_owned());
        self.instance.set_policy_models(&policy, "[]").await?;
        self.instance.set_policy_tools(&policy, None).await?;
        self.instance.set_quota(&policy.quota_scope(), &crate::domain::Quota::default()).await?;
        self.audit.record(Some(actor), "named_role_deleted", name, "", client).await;
        Ok(())
    }

    /// Gives a member a named role (`None`: the member role's settings).
    pub async fn admin_set_named_role(
        &self,
        actor: UserId,
        user: UserId,
        named_role: Option<&str>,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        let person = super::existing_user(self.store.as_ref(), user).await?;
        if let Some(name) = named_role {
            self.require_policy(&Policy::Named(name.to_owned())).await?;
        }
        self.store.set_user_named_role(person.id, named_role).await?;
        let detail = named_role.unwrap_or("none");
        self.audit.record(Some(actor), "named_role_changed", &person.id.to_string(), detail, client).await;
        Ok(())
    }

    pub async fn admin_knowledge(&self, actor: UserId) -> CoreResult<KnowledgeOverview> {
        self.require_admin(actor).await?;
        let mut shared = Vec::new();
        for base in self.store.shared_knowledge_bases().await? {
            let owner = super::existing_user(self.store.as_ref(), base.user_id).await?;
            shared.push((base, owner));
        }
        Ok(KnowledgeOverview {
            choice: self.knowledge.embedding_choice().await?,
            configured: self.knowledge.configured_embedding_model().cloned(),
            current: self.knowledge.embedding_model().await?,
            documents: self.store.ingestion_counts().await?,
            shared,
        })
    }

    /// Chooses the embedding model (a model is tried first, with the administrator's keys);
    /// documents embedded with another model are embedded again in the background. Returns
    /// how many were queued.
    pub async fn admin_set_embedding_model(
        &self,
        actor: UserId,
        choice: EmbeddingChoice,
        client: &ClientInfo,
    ) -> CoreResult<u64> {
        let admin = self.require_admin(actor).await?;
        let queued = self.knowledge.set_embedding_model(&admin, &choice).await?;
        let value = match &choice {
            EmbeddingChoice::Configured => "configured".to_owned(),
            EmbeddingChoice::KeywordsOnly => "none".to_owned(),
            EmbeddingChoice::Model(model) => model.name(),
        };
        self.audit.record(Some(actor), "settings_changed", "embedding_model", &value, client).await;
        Ok(queued)
    }

    /// Makes a shared knowledge base private to its owner again, whoever the owner is.
    pub async fn admin_stop_sharing(&self, actor: UserId, id: KnowledgeBaseId, client: &ClientInfo) -> CoreResult<()> {
        self.require_admin(actor).await?;
        let shared = self.store.shared_knowledge_bases().await?;
        let base = shared.into_iter().find(|base| base.id == id).ok_or(CoreError::NotFound("knowledge_base"))?;
        self.store.set_knowledge_sharing(base.user_id, id, None).await?;
        self.audit.record(Some(actor), "knowledge_unshared", &id.to_string(), &base.name, client).await;
        Ok(())
    }

    /// The tools a role may use (`None`: every tool).
    pub async fn admin_set_role_tools(
        &self,
        actor: UserId,
        policy: &Policy,
        names: Option<Vec<String>>,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        self.require_policy(policy).await?;
        let names: Option<Vec<String>> = names.map(|names| names.into_iter().take(100).collect());
        self.instance.set_policy_tools(policy, names.as_deref()).await?;
        let detail = names.map_or_else(|| "all".to_owned(), |names| names.join(","));
        self.audit.record(Some(actor), "settings_changed", &format!("tools.{}", policy.key()), &detail, client).await;
        Ok(())
    }

    pub async fn admin_audit(&self, actor: UserId, filter: &AuditFilter, page: u32) -> CoreResult<Vec<AuditEvent>> {
        self.require_admin(actor).await?;
        Ok(self.store.list_audit(filter, 100, page.saturating_mul(100)).await?)
    }

    /// Every event the filter matches, newest first, for an export (at most [`MAX_AUDIT_EXPORT`]);
    /// the export itself is recorded.
    pub async fn admin_audit_export(
        &self,
        actor: UserId,
        filter: &AuditFilter,
        client: &ClientInfo,
    ) -> CoreResult<Vec<AuditEvent>> {
        self.require_admin(actor).await?;
        let events = self.store.list_audit(filter, MAX_AUDIT_EXPORT, 0).await?;
        let detail = format!("{} events", events.len());
        self.audit.record(Some(actor), "audit_exported", "", &detail, client).await;
        Ok(events)
    }

    /// The account with this email, for an administrator's filter.
    pub async fn admin_find_user(&self, actor: UserId, email: &str) -> CoreResult<User> {
        self.require_admin(actor).await?;
        let email = email.trim().to_lowercase();
        self.store.find_user_by_email(&email).await?.ok_or(CoreError::NotFound("user"))
    }

    pub async fn admin_quota(&self, actor: UserId, scope: &QuotaScope) -> CoreResult<Quota> {
        self.require_admin(actor).await?;
        Ok(self.instance.snapshot().await?.scoped_quota(scope))
    }

    /// Sets (or, when every limit is empty, removes) a quota.
    pub async fn admin_set_quota(
        &self,
        actor: UserId,
        scope: QuotaScope,
        quota: Quota,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        self.require_admin(actor).await?;
        super::usage::validate_quota(&quota)?;
        if let QuotaScope::Named(name) = &scope {
            self.require_policy(&Policy::Named(name.clone())).await?;
        }
        self.instance.set_quota(&scope, &quota).await?;
        let target = match &scope {
            QuotaScope::Role(role) => format!("role:{}", role.as_str()),
            QuotaScope::Named(name) => format!("named:{name}"),
            QuotaScope::User(user) => format!("user:{user}"),
        };
        self.audit.record(Some(actor), "quota_changed", &target, &format!("{quota:?}"), client).await;
        Ok(())
    }
}

/// Whether `provider::model` matches one of the patterns (`provider::*` matches a provider).
pub(crate) fn model_allowed(patterns: &[String], provider: &str, model: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|pattern| match pattern.split_once("::") {
            Some((p, "*")) => p == provider,
            Some((p, m)) => p == provider && m == model,
            None => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_patterns() {
        assert!(model_allowed(&[], "openai", "gpt-4o"));
        let patterns = vec!["openai::gpt-4o-mini".to_owned(), "deepseek::*".to_owned()];
        assert!(model_allowed(&patterns, "openai", "gpt-4o-mini"));
        assert!(model_allowed(&patterns, "deepseek", "deepseek-chat"));
        assert!(!model_allowed(&patterns, "openai", "gpt-4o"));
    }
}
