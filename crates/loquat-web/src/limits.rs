//! Rate limits of the web layer: sign-in per address and per account, registration per
//! address, and chat per user (the quota's requests per minute, or a default) and per
//! address. In process by default; shared through Redis by every replica when configured.

use std::time::Duration;

use loquat_limits::{Decision, Rule};

use crate::AppState;
use crate::context::Viewer;
use crate::error::WebError;

const LOGIN_PER_ADDRESS: Rule = Rule::new("login-ip", Duration::from_secs(300), 20);
const LOGIN_PER_ACCOUNT: Rule = Rule::new("login-account", Duration::from_secs(900), 10);
const REGISTER_PER_ADDRESS: Rule = Rule::new("register-ip", Duration::from_secs(3600), 10);
const CHAT_PER_ADDRESS: Rule = Rule::new("chat-ip", Duration::from_secs(60), 120);
/// Requests per minute a user may start when no quota says otherwise.
const DEFAULT_CHAT_PER_MINUTE: u32 = 60;

impl AppState {
    /// Takes one unit; a limiter that cannot be reached lets the request through (and says so
    /// in the log) rather than locking everybody out.
    async fn allow(&self, rule: &Rule, key: &str) -> bool {
        match self.limiter.check(key, rule).await {
            Ok(Decision::Allowed) => true,
            Ok(Decision::Limited { .. }) => {
                tracing::info!(rule = rule.name, "rate limited");
                metrics::counter!(crate::metrics::RATE_LIMITED_TOTAL, "rule" => rule.name).increment(1);
                false
            }
            Err(error) => {
                tracing::error!(%error, rule = rule.name, "the rate limiter failed; allowing the request");
                true
            }
        }
    }

    /// Sign-in attempts, per address and per account.
    pub async fn allow_login(&self, ip: &str, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.allow(&LOGIN_PER_ADDRESS, &format!("ip:{ip}")).await
            && self.allow(&LOGIN_PER_ACCOUNT, &format!("email:{email}")).await
    }

    pub async fn allow_registration(&self, ip: &str) -> bool {
        self.allow(&REGISTER_PER_ADDRESS, &format!("ip:{ip}")).await
    }

    /// Starting an answer: per address, then the user's requests-per-minute quota.
    pub async fn allow_chat(&self, viewer: &Viewer) -> Result<(), WebError> {
        let quota = self.services.effective_quota(viewer.user.id, viewer.user.role).await.map_err(viewer.fail())?;
        let per_minute = quota.requests_per_minute.unwrap_or(DEFAULT_CHAT_PER_MINUTE).max(1);
        let per_user = Rule::new("chat-user", Duration::from_secs(60), per_minute);
        if self.allow(&CHAT_PER_ADDRESS, &format!("ip:{}", viewer.client.ip)).await
            && self.allow(&per_user, &format!("user:{}", viewer.user.id)).await
        {
            Ok(())
        } else {
            Err(WebError::too_many_requests(viewer.tr, viewer.flavor))
        }
    }
}
