//! How accounts come to exist: registration, single sign-on, the admin panel and the command
//! line all go through [`Services::create_account`], so the rules cannot drift apart: the
//! first account becomes the administrator; later ones need open registration, an invite, an
//! email `AUTH_ALLOWED_EMAILS` names (single sign-on), an administrator or the operator.

use super::Accounts;
use super::accounts::{ClientInfo, RegistrationMode, SsoIdentity, check_password, hash_off_thread, normalize_email};
use crate::crypto::token_hash;
use crate::domain::{Identity, Role, Theme, User};
use crate::error::{CoreError, CoreResult};
use crate::id::UserId;
use crate::secret::Secret;
use crate::store::{AccountGrant, AccountRefusal, NewAccount};
use crate::time::Timestamp;

/// An account somebody asks for.
#[derive(Debug)]
pub(crate) struct AccountRequest {
    pub name: String,
    pub email: String,
    /// `None` for accounts that sign in with single sign-on only.
    pub password: Option<Secret>,
    pub via: Via,
}

/// Through which door the request came, with what that door knows.
#[derive(Debug)]
pub(crate) enum Via {
    /// The registration form, maybe with an invite code.
    Registration { invite: Option<String> },
    /// Single sign-on: the identity to link, an invite carried through the round trip, and
    /// whether `AUTH_ALLOWED_EMAILS` names the (verified) email.
    Sso { identity: Box<SsoIdentity>, invite: Option<String>, email_allowed: bool },
    /// An administrator's "create user", with the role they chose.
    Admin { actor: UserId, role: Role },
    /// `loquat user create` (the operator owns the instance).
    CommandLine { admin: bool },
}

impl AccountRequest {
    /// The account a new SSO identity asks for: its name (or email, or subject) and its
    /// verified email (an unverified one is not trusted to be unique to this person: a
    /// placeholder stands in).
    pub(crate) fn sso(
        identity: SsoIdentity,
        email: Option<String>,
        invite: Option<String>,
        email_allowed: bool,
    ) -> Self {
        let email = email.filter(|_| identity.email_verified);
        let name = identity.name.clone().or_else(|| email.clone()).unwrap_or_else(|| identity.subject.clone());
        let email = email.unwrap_or_else(|| {
            let subject: String = identity.subject.chars().filter(|c| !c.is_whitespace() && *c != '@').collect();
            format!("{subject}@{}.sso", identity.provider).to_lowercase()
        });
        Self {
            name: name.chars().take(100).collect(),
            email,
            password: None,
            via: Via::Sso { identity: Box::new(identity), invite, email_allowed },
        }
    }
}

/// What lets an account in, before it is handed to the store (which checks it again, in the
/// transaction that creates the account).
enum Grant {
    First,
    /// The SHA-256 of the invite code.
    Invite(String),
    Granted,
}

impl Accounts {
    /// Creates an account (see the module's documentation) and records it in the audit log.
    pub(crate) async fn create_account(&self, request: AccountRequest, client: &ClientInfo) -> CoreResult<User> {
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::invalid("name_length"));
        }
        let email = normalize_email(&request.email)?;
        if let Some(password) = &request.password {
            self.instance.require_passwords()?;
            check_password(password)?;
        }
        let (grant, role, actor) = if self.needs_first_account().await? {
            (Grant::First, Role::Admin, None)
        } else {
            self.grant_for(&request.via).await?
        };
        let password_hash = match request.password {
            Some(password) => Some(hash_off_thread(password).await?),
            None => None,
        };
        let now = Timestamp::now();
        let user = User {
            id: UserId::new(),
            name,
            email: Some(email),
            role,
            disabled: false,
            locale: None,
            theme: Theme::System,
            created_at: now,
            // Someone registering is active now; an account made for somebody is not yet.
            last_active_at: matches!(request.via, Via::Registration { .. } | Via::Sso { .. }).then_some(now),
            named_role: None,
        };
        let assistant = super::assistants::new_default_assistant(user.id, now);
        let identity = match &request.via {
            Via::Sso { identity, .. } => Some(Identity {
                provider: identity.provider.clone(),
                subject: identity.subject.clone(),
                user_id: user.id,
                email: identity.email.as_deref().map(str::trim).map(str::to_lowercase).filter(|e| !e.is_empty()),
                created_at: now,
            }),
            _ => None,
        };
        let grant = match &grant {
            Grant::First => AccountGrant::First,
            Grant::Invite(code_hash) => AccountGrant::Invite { code_hash, now },
            Grant::Granted => AccountGrant::Granted,
        };
        let account = NewAccount {
            user: &user,
            password_hash: password_hash.as_deref(),
            grant,
            default_assistant: &assistant,
            identity: identity.as_ref(),
        };
        let user = self.store.create_account(&account).await?.map_err(|refusal| {
            CoreError::invalid(match refusal {
                AccountRefusal::EmailTaken => "email_taken",
                AccountRefusal::InviteInvalid => "invite_invalid",
                AccountRefusal::FirstAccountTaken => "first_account_taken",
            })
        })?;
        let how = match (grant, &request.via) {
            (AccountGrant::First, _) => "first account",
            (AccountGrant::Invite { .. }, _) => "invite",
            (_, Via::Registration { .. }) => "open registration",
            (_, Via::Sso { .. }) => "single sign-on",
            (_, Via::Admin { .. }) => "administrator",
            (_, Via::CommandLine { .. }) => "command line",
        };
        let action = match request.via {
            Via::Admin { .. } | Via::CommandLine { .. } => "user_created",
            Via::Registration { .. } | Via::Sso { .. } => "registered",
        };
        let target = user.email.clone().unwrap_or_default();
        let detail = format!("{} ({how})", user.role.as_str());
        self.audit.record(actor.or(Some(user.id)), action, &target, &detail, client).await;
        Ok(user)
    }

    /// Who may create an account once the first exists, with which role, and the acting
    /// administrator (for the audit log).
    async fn grant_for(&self, via: &Via) -> CoreResult<(Grant, Role, Option<UserId>)> {
        let invite = match via {
            Via::Admin { actor, role } => {
                super::admin_user(self.store.as_ref(), *actor).await?;
                return Ok((Grant::Granted, *role, Some(*actor)));
            }
            Via::CommandLine { admin } => {
                return Ok((Grant::Granted, if *admin { Role::Admin } else { Role::User }, None));
            }
            Via::Registration { invite } | Via::Sso { invite, .. } => {
                invite.as_deref().map(str::trim).filter(|code| !code.is_empty()).map(token_hash)
            }
        };
        let email_allowed = matches!(via, Via::Sso { email_allowed: true, .. });
        match (self.instance.registration_mode().await?, invite) {
            (RegistrationMode::Closed, _) => Err(CoreError::invalid("registration_closed")),
            // The invite's role is read by the store as it uses the invite.
            (_, Some(code_hash)) => Ok((Grant::Invite(code_hash), Role::User, None)),
            (RegistrationMode::Open, None) => Ok((Grant::Granted, Role::User, None)),
            (RegistrationMode::Invite, None) if email_allowed => Ok((Grant::Granted, Role::User, None)),
            (RegistrationMode::Invite, None) => Err(CoreError::invalid("registration_invite_only")),
        }
    }
}
