//! What the `loquat user …` commands do on the operator's behalf. There is no acting user:
//! whoever runs the binary against the instance's store owns it. The same rules as the admin's
//! pages apply (valid email and password, the last admin stays), and each change is audited
//! with no actor.

use super::Admin;
use super::accounts::{ClientInfo, check_password, hash_off_thread, normalize_email};
use super::registration::{AccountRequest, Via};
use crate::domain::{Role, User};
use crate::error::{CoreError, CoreResult};
use crate::secret::Secret;

impl Admin {
    /// Creates an account with a password, by the same rules as every other door (the first
    /// account of an instance is an administrator).
    pub async fn cli_create_user(&self, name: &str, email: &str, password: Secret, admin: bool) -> CoreResult<User> {
        let request = AccountRequest {
            name: name.to_owned(),
            email: email.to_owned(),
            password: Some(password),
            via: Via::CommandLine { admin },
        };
        self.accounts.create_account(request, &cli_client()).await
    }

    /// Sets a new password and ends the account's sessions.
    pub async fn cli_reset_password(&self, email: &str, password: Secret) -> CoreResult<User> {
        self.instance.require_passwords()?;
        check_password(&password)?;
        let user = self.cli_find_user(email).await?;
        let hash = hash_off_thread(password).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.store.delete_user_sessions(user.id).await?;
        self.audit.record(None, "password_reset", &user.id.to_string(), "", &cli_client()).await;
        Ok(user)
    }

    /// Changes an account's role; the last enabled admin cannot be demoted.
    pub async fn cli_set_role(&self, email: &str, role: Role) -> CoreResult<User> {
        let mut user = self.cli_find_user(email).await?;
        if user.role == Role::Admin && role != Role::Admin && self.enabled_admins().await? <= 1 {
            return Err(CoreError::invalid("last_admin"));
        }
        self.store.set_user_role(user.id, role).await?;
        self.audit.record(None, "role_changed", &user.id.to_string(), role.as_str(), &cli_client()).await;
        user.role = role;
        Ok(user)
    }

    async fn cli_find_user(&self, email: &str) -> CoreResult<User> {
        let email = normalize_email(email)?;
        self.store.find_user_by_email(&email).await?.ok_or(CoreError::NotFound("user"))
    }
}

/// How the audit log shows the command line.
fn cli_client() -> ClientInfo {
    ClientInfo { ip: String::new(), user_agent: "loquat command line".to_owned() }
}
