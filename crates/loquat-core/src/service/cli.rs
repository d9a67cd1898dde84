//! What the `loquat user …` commands do on the operator's behalf. There is no acting user:
//! whoever runs the binary against the instance's store owns it. The same rules as the admin's
//! pages apply (valid email and password, the last admin stays), and each change is audited
//! with no actor.

use super::Services;
use super::accounts::{ClientInfo, check_password, hash_off_thread, normalize_email};
use crate::domain::{Role, Theme, User};
use crate::error::{CoreError, CoreResult};
use crate::id::UserId;
use crate::secret::Secret;
use crate::time::Timestamp;

impl Services {
    /// Creates an account with a password. The first account of an instance is always an admin
    /// (and takes over the local user's data, as when registering through the page).
    pub async fn cli_create_user(&self, name: &str, email: &str, password: Secret, admin: bool) -> CoreResult<User> {
        let email = normalize_email(email)?;
        check_password(&password)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::invalid("name_length"));
        }
        if self.store.find_user_by_email(&email).await?.is_some() {
            return Err(CoreError::invalid("email_taken"));
        }
        let first = self.needs_first_account().await?;
        let role = if admin || first { Role::Admin } else { Role::User };
        let hash = hash_off_thread(password).await?;
        let mut user = User {
            id: UserId::new(),
            name: name.to_owned(),
            email: Some(email.clone()),
            role,
            disabled: false,
            locale: None,
            theme: Theme::System,
            created_at: Timestamp::now(),
            last_active_at: None,
        };
        self.create_account(&mut user, Some(&hash), first).await?;
        self.audit(None, "user_created", &email, role.as_str(), &cli_client()).await;
        Ok(user)
    }

    /// Sets a new password and ends the account's sessions.
    pub async fn cli_reset_password(&self, email: &str, password: Secret) -> CoreResult<User> {
        check_password(&password)?;
        let user = self.cli_find_user(email).await?;
        let hash = hash_off_thread(password).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.store.delete_user_sessions(user.id).await?;
        self.audit(None, "password_reset", &user.id.to_string(), "", &cli_client()).await;
        Ok(user)
    }

    /// Changes an account's role; the last enabled admin cannot be demoted.
    pub async fn cli_set_role(&self, email: &str, role: Role) -> CoreResult<User> {
        let mut user = self.cli_find_user(email).await?;
        if user.role == Role::Admin && role != Role::Admin && self.enabled_admins().await? <= 1 {
            return Err(CoreError::invalid("last_admin"));
        }
        self.store.set_user_role(user.id, role).await?;
        self.audit(None, "role_changed", &user.id.to_string(), role.as_str(), &cli_client()).await;
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
