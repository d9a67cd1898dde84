//! Loquat's one typed configuration: built-in defaults, then an optional TOML file, then the
//! environment (`LOQUAT_*`, plus LobeChat's names `DATABASE_URL`, `KEY_VAULTS_SECRET`,
//! `APP_URL`). Secrets are wrapped so printing the config never shows them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use loquat_core::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where to listen (`LOQUAT_LISTEN`).
    pub listen: SocketAddr,
    /// Where SQLite and generated files live (`LOQUAT_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; unset uses SQLite in the data folder (`DATABASE_URL`).
    pub database_url: Option<Secret>,
    /// Base64 of 16/24/32 bytes encrypting stored API keys (`KEY_VAULTS_SECRET`).
    pub key_vaults_secret: Option<Secret>,
    /// The public URL, e.g. `https://chat.example.com` (`APP_URL`); https turns on secure cookies.
    pub app_url: Option<String>,
    /// `pretty` or `json` (`LOQUAT_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// A tracing filter such as `info,loquat=debug` (`LOQUAT_LOG`, else `RUST_LOG`).
    pub log: String,
    pub generation: GenerationConfig,
    pub http: HttpConfig,
    /// Longest message a user may send, in characters.
    pub max_message_chars: usize,
    /// Whether users may use their own API keys for the server's providers
    /// (`LOQUAT_ALLOW_USER_KEYS`).
    pub allow_user_keys: bool,
    /// An egress proxy for every provider request (`PROXY_URL`); unset honours `HTTPS_PROXY`.
    pub proxy_url: Option<String>,
    /// Shared passwords in front of the whole instance, comma-separated (`ACCESS_CODE`).
    pub access_code: Option<Secret>,
    /// Makes the access cookie unforgeable (`AUTH_SECRET`, also `NEXT_AUTH_SECRET`); defaults to
    /// the key vault's key.
    pub auth_secret: Option<Secret>,
    /// Addresses or domains single sign-on is restricted to, comma-separated
    /// (`AUTH_ALLOWED_EMAILS`).
    pub auth_allowed_emails: String,
    /// `redis://…` to share rate limits between replicas (`REDIS_URL`).
    pub redis_url: Option<Secret>,
    /// Prefix of Loquat's Redis keys (`REDIS_PREFIX`).
    pub redis_prefix: String,
    /// Who may register when the admin has not chosen: `open`, `invite` or `closed`
    /// (`LOQUAT_REGISTRATION`).
    pub registration: String,
    /// Trust `X-Forwarded-For` for the client address (`LOQUAT_TRUST_FORWARDED_FOR`; only
    /// behind a reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Hosts (or `host:port`) users' own providers may reach despite the SSRF guard,
    /// comma-separated (`LOQUAT_SSRF_ALLOW`, e.g. `127.0.0.1:11434,gpu.lan`).
    pub ssrf_allow: String,
    /// How long running answers may finish after SIGTERM before they are stored as
    /// interrupted (`LOQUAT_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationConfig {
    /// How often a growing answer is written to the store.
    pub persist_interval_ms: u64,
    /// How long to wait for a provider's first token.
    pub first_token_timeout_secs: u64,
    /// How long a provider may pause between two chunks.
    pub idle_timeout_secs: u64,
    /// The longest a whole answer may take.
    pub total_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Connecting to a provider (TCP + TLS).
    pub connect_timeout_secs: u64,
    /// Non-streaming provider calls (model lists).
    pub request_timeout_secs: u64,
    /// Retries of a provider request before its first token (connection errors, 429, 5xx).
    pub max_retries: u32,
    /// The first retry's delay; later ones double (with jitter).
    pub retry_base_delay_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3210)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            key_vaults_secret: None,
            app_url: None,
            log_format: LogFormat::Pretty,
            log: String::new(),
            generation: GenerationConfig::default(),
            http: HttpConfig::default(),
            max_message_chars: 200_000,
            allow_user_keys: true,
            proxy_url: None,
            access_code: None,
            auth_secret: None,
            auth_allowed_emails: String::new(),
            redis_url: None,
            redis_prefix: "loquat".to_owned(),
            registration: "invite".to_owned(),
            trust_forwarded_for: false,
            ssrf_allow: String::new(),
            shutdown_grace_secs: 20,
        }
    }
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            persist_interval_ms: 500,
            first_token_timeout_secs: 120,
            idle_timeout_secs: 60,
            total_timeout_secs: 1800,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 2 * 1024 * 1024,
            connect_timeout_secs: 10,
            request_timeout_secs: 30,
            max_retries: 3,
            retry_base_delay_ms: 250,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` (or `./loquat.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let default_file = Path::new("loquat.toml");
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError(format!("{} does not exist", path.display()))),
            Some(path) => figment = figment.merge(Toml::file(path)),
            None if default_file.exists() => figment = figment.merge(Toml::file(default_file)),
            None => {}
        }
        figment = figment
            // LobeChat's older names first, so the newer ones win when both are set.
            .merge(Env::raw().only(&["NEXTAUTH_URL"]).map(|_| "app_url".into()))
            .merge(Env::raw().only(&[
                "DATABASE_URL",
                "KEY_VAULTS_SECRET",
                "APP_URL",
                "PROXY_URL",
                "ACCESS_CODE",
                "AUTH_ALLOWED_EMAILS",
                "REDIS_URL",
                "REDIS_PREFIX",
            ]))
            .merge(Env::raw().only(&["NEXT_AUTH_SECRET"]).map(|_| "auth_secret".into()))
            .merge(Env::raw().only(&["AUTH_SECRET"]).map(|_| "auth_secret".into()))
            .merge(Env::prefixed("LOQUAT_").split("__").ignore(&["CONFIG"]));
        let mut config: Config = figment.extract().map_err(|error| ConfigError(error.to_string()))?;
        if config.log.is_empty() {
            config.log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let url = url.expose();
            let known = ["postgres://", "postgresql://", "sqlite:"];
            if !url.is_empty() && !known.iter().any(|prefix| url.starts_with(prefix)) {
                return Err(ConfigError("DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into()));
            }
        }
        if loquat_core::service::RegistrationMode::parse(&self.registration).is_none() {
            return Err(ConfigError("LOQUAT_REGISTRATION must be open, invite or closed".into()));
        }
        if self.generation.persist_interval_ms == 0 || self.generation.idle_timeout_secs == 0 {
            return Err(ConfigError("generation intervals and timeouts must be positive".into()));
        }
        Ok(())
    }

    pub fn generation_settings(&self) -> loquat_core::generation::GenerationSettings {
        loquat_core::generation::GenerationSettings {
            persist_interval: Duration::from_millis(self.generation.persist_interval_ms),
            first_event_timeout: Duration::from_secs(self.generation.first_token_timeout_secs),
            idle_timeout: Duration::from_secs(self.generation.idle_timeout_secs),
            total_timeout: Duration::from_secs(self.generation.total_timeout_secs),
        }
    }

    /// Comma-separated settings as lists (empty items dropped).
    pub fn list(text: &str) -> Vec<String> {
        text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml_like(&serde_json::to_value(self).unwrap_or_default(), "")
    }
}

/// A small TOML printer for the redacted config (avoids a TOML serializer dependency).
fn toml_like(value: &serde_json::Value, section: &str) -> String {
    let serde_json::Value::Object(map) = value else { return String::new() };
    let mut plain = String::new();
    let mut tables = String::new();
    for (key, value) in map {
        match value {
            serde_json::Value::Object(_) => {
                let name = if section.is_empty() { key.clone() } else { format!("{section}.{key}") };
                tables.push_str(&format!("\n[{name}]\n{}", toml_like(value, &name)));
            }
            serde_json::Value::Null => plain.push_str(&format!("# {key} is not set\n")),
            other => plain.push_str(&format!("{key} = {other}\n")),
        }
    }
    plain + &tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_redacted_output_hides_secrets() {
        let mut config = Config::default();
        assert!(config.validate().is_ok());
        config.key_vaults_secret = Some(Secret::new("c2VjcmV0c2VjcmV0c2VjcmV0"));
        config.database_url = Some(Secret::new("postgres://user:hunter2@db/loquat"));
        let printed = config.to_redacted_toml();
        assert!(!printed.contains("hunter2") && !printed.contains("c2VjcmV0"));
        assert!(printed.contains("listen = \"127.0.0.1:3210\""));
        assert!(printed.contains("[generation]"));
    }

    #[test]
    fn rejects_unknown_database_urls() {
        let config = Config { database_url: Some(Secret::new("mysql://x")), ..Config::default() };
        assert!(config.validate().is_err());
    }
}
