//! Rate limits of the web layer: sign-in per address and per account, the access code and
//! registration per address, and chat per user (the quota's requests per minute, or a default)
//! and per address. In process by default; shared through Redis by every replica when
//! configured.

use std::time::Duration;

use loquat_limits::{Decision, Rule};

use crate::AppState;
use crate::context::Viewer;
use crate::error::WebError;

const LOGIN_PER_ADDRESS: Rule = Rule::new("login-ip", Duration::from_secs(300), 20);
/// Attempts on one account from one address: a stranger guessing from their machine is
/// stopped without locking the owner (on another address) out.
const LOGIN_PER_ACCOUNT_AND_ADDRESS: Rule = Rule::new("login-account-ip", Duration::from_secs(900), 10);
/// Attempts on one account from anywhere: past this, each attempt waits
/// [`ACCOUNT_UNDER_ATTACK_DELAY`] instead of being refused, so a distributed guesser is slowed
/// and the owner can still sign in.
const LOGIN_PER_ACCOUNT: Rule = Rule::new("login-account", Duration::from_secs(900), 10);
const ACCOUNT_UNDER_ATTACK_DELAY: Duration = Duration::from_secs(2);
const ACCESS_PER_ADDRESS: Rule = Rule::new("access-ip", Duration::from_secs(300), 20);
const REGISTER_PER_ADDRESS: Rule = Rule::new("register-ip", Duration::from_secs(3600), 10);
/// Requests per minute a user may start when no quota says otherwise.
const DEFAULT_CHAT_PER_MINUTE: u32 = 60;

/// What a sign-in attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    Refused,
    Allowed,
    /// Allowed after the account-wide delay.
    Slowed,
}

impl AppState {
    /// Takes one unit; a limiter that cannot be reached lets the request through (and says so
    /// in the log) rather than locking everybody out. A rule the limiter cannot express (a
    /// rate finer than it keeps time, from a huge quota) is no limit at all.
    async fn allow(&self, rule: &Rule, key: &str) -> bool {
        if rule.validate().is_err() {
            return true;
        }
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

    /// Sign-in attempts: refused past the per-address and per-account-and-address limits,
    /// slowed (never refused) past the per-account limit.
    pub async fn allow_login(&self, ip: &str, email: &str) -> LoginGate {
        let email = email.trim().to_lowercase();
        if !self.allow(&LOGIN_PER_ADDRESS, &format!("ip:{ip}")).await
            || !self.allow(&LOGIN_PER_ACCOUNT_AND_ADDRESS, &format!("email:{email}:ip:{ip}")).await
        {
            return LoginGate::Refused;
        }
        if self.allow(&LOGIN_PER_ACCOUNT, &format!("email:{email}")).await {
            LoginGate::Allowed
        } else {
            tokio::time::sleep(ACCOUNT_UNDER_ATTACK_DELAY).await;
            LoginGate::Slowed
        }
    }

    /// Attempts at the access code (`ACCESS_CODE`), per address.
    pub async fn allow_access_attempt(&self, ip: &str) -> bool {
        self.allow(&ACCESS_PER_ADDRESS, &format!("ip:{ip}")).await
    }

    pub async fn allow_registration(&self, ip: &str) -> bool {
        self.allow(&REGISTER_PER_ADDRESS, &format!("ip:{ip}")).await
    }

    /// Starting an answer: per address for browsers (`LOQUAT_LIMITS__CHAT_PER_ADDRESS_PER_MINUTE`;
    /// requests with an API token skip it), then the user's requests-per-minute quota.
    pub async fn allow_chat(&self, viewer: &Viewer) -> Result<(), WebError> {
        let quota = self.services.usage.effective_quota(&viewer.user).await.map_err(viewer.fail())?;
        let per_minute = quota.requests_per_minute.unwrap_or(DEFAULT_CHAT_PER_MINUTE).max(1);
        let per_user = Rule::new("chat-user", Duration::from_secs(60), per_minute);
        let per_address = self.settings.chat_per_address_per_minute;
        let address_allowed = per_address == 0
            || viewer.uses_api_token()
            || self
                .allow(&Rule::new("chat-ip", Duration::from_secs(60), per_address), &format!("ip:{}", viewer.client.ip))
                .await;
        if address_allowed && self.allow(&per_user, &format!("user:{}", viewer.user.id)).await {
            Ok(())
        } else {
            Err(WebError::too_many_requests(viewer.tr, viewer.flavor))
        }
    }
}
