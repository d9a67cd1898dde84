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
    /// Sign-in through the identity providers only: no password sign-in, registration or
    /// password fields (`AUTH_DISABLE_EMAIL_PASSWORD=1`); needs `AUTH_SSO_PROVIDERS`.
    #[serde(deserialize_with = "flexible_bool")]
    pub auth_disable_email_password: bool,
    /// `redis://…` to share rate limits between replicas (`REDIS_URL`).
    pub redis_url: Option<Secret>,
    /// Prefix of Loquat's Redis keys (`REDIS_PREFIX`).
    pub redis_prefix: String,
    /// This process's name among replicas (`LOQUAT_NODE_ID`); unset, the host name and a
    /// random suffix kept in the data folder.
    pub node_id: Option<String>,
    /// Who may register when the admin has not chosen: `open`, `invite` or `closed`
    /// (`LOQUAT_REGISTRATION`).
    pub registration: String,
    /// Take the client address from `X-Forwarded-For` (`LOQUAT_TRUST_FORWARDED_FOR`; only
    /// behind a reverse proxy that sets it): the entry the one proxy in front of Loquat added,
    /// unless `trusted_proxies` says more.
    pub trust_forwarded_for: bool,
    /// The reverse proxies in front of Loquat (`LOQUAT_TRUSTED_PROXIES`): their number (`2`),
    /// or their addresses and networks (`10.0.0.0/8,192.0.2.7`). Setting it trusts
    /// `X-Forwarded-For` as far as those proxies vouch for it.
    pub trusted_proxies: String,
    pub limits: LimitsConfig,
    /// Hosts (or `host:port`) users' own providers may reach despite the SSRF guard,
    /// comma-separated (`LOQUAT_SSRF_ALLOW`, e.g. `127.0.0.1:11434,gpu.lan`).
    pub ssrf_allow: String,
    /// Hosts whose images rendered messages may load, comma-separated: exact names or
    /// `*.example.com` (`LOQUAT_IMAGE_HOSTS`). Unset, images in answers are shown as links.
    pub image_hosts: String,
    /// How long running answers may finish after SIGTERM before they are stored as
    /// interrupted (`LOQUAT_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
    /// A bearer token for `GET /metrics` on the main port (`LOQUAT_METRICS_TOKEN`); unset, the
    /// main port answers `/metrics` with 404.
    pub metrics_token: Option<Secret>,
    /// A second address serving only `/metrics`, without a token (`LOQUAT_METRICS_LISTEN`,
    /// e.g. `127.0.0.1:9464`): for an address only the monitoring network reaches.
    pub metrics_listen: Option<SocketAddr>,
    pub files: FilesConfig,
    pub tools: ToolsConfig,
    pub media: MediaConfig,
    pub backup: BackupConfig,
    pub ldap: LdapConfig,
    /// MCP servers in the `mcpServers` JSON format of Claude Desktop, Cursor and LobeChat
    /// (`LOQUAT_MCP_CONFIG=path`): their tools are offered to assistants as `mcp:<name>`.
    pub mcp_config: Option<PathBuf>,
    /// An S3-compatible server for files (`S3_ENDPOINT`); unset with `S3_BUCKET`, AWS itself.
    pub s3_endpoint: Option<String>,
    /// The bucket (`S3_BUCKET`); unset, files live in `<data_dir>/files`.
    pub s3_bucket: Option<String>,
    /// `S3_REGION` (default `us-east-1`).
    pub s3_region: Option<String>,
    /// `S3_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// `S3_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<Secret>,
    /// Path-style URLs, as MinIO wants (`S3_ENABLE_PATH_STYLE=1`).
    #[serde(deserialize_with = "flexible_bool")]
    pub s3_enable_path_style: bool,
    /// A public domain serving the bucket (`S3_PUBLIC_DOMAIN`, formerly
    /// `NEXT_PUBLIC_S3_DOMAIN`); unset, files are only served by Loquat, to their owners.
    pub s3_public_domain: Option<String>,
    /// Images go to vision models as their bytes even with a public domain
    /// (`LLM_VISION_IMAGE_USE_BASE64=1`). Without a public domain they always do: a provider
    /// cannot reach a private Loquat.
    #[serde(deserialize_with = "flexible_bool")]
    pub llm_vision_image_use_base64: bool,
    /// LobeChat's `DEFAULT_FILES_CONFIG`: `embedding_model=<provider>/<model>` makes knowledge
    /// search hybrid (keywords and meaning); unset, it is by keywords.
    pub default_files_config: Option<String>,
}

/// Users' files (`LOQUAT_FILES__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesConfig {
    /// The largest file a user may upload, in bytes.
    pub max_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self { max_bytes: 100 * 1024 * 1024 }
    }
}

/// Voice and pictures (`LOQUAT_MEDIA__*`): `provider::model` of a provider speaking OpenAI's
/// media endpoints (the server's, with the person's own key when they set one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// Reads answers aloud (`/audio/speech`).
    pub speech_model: String,
    /// The voice when an assistant names none.
    pub voice: String,
    /// Writes speech down for the composer (`/audio/transcriptions`).
    pub transcription_model: String,
    /// Draws pictures (`/images/generations`).
    pub image_model: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        let models = loquat_core::service::MediaModels::default();
        Self {
            speech_model: models.speech,
            voice: models.voice,
            transcription_model: models.transcription,
            image_model: models.image,
        }
    }
}

/// Sign-in with a directory's accounts (`LOQUAT_LDAP__*`); off while `url` is empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LdapConfig {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// The service account that searches people and groups.
    pub bind_dn: String,
    pub bind_password: Option<Secret>,
    /// Where people are (`ou=people,dc=example,dc=org`).
    pub user_base: String,
    /// `{login}` is what the person typed; default `(|(uid={login})(mail={login}))`.
    pub user_filter: String,
    /// Where groups are; unset, only `memberOf` is read.
    pub group_base: String,
    /// `{dn}` is the person's DN; default `(|(member={dn})(uniqueMember={dn}))`.
    pub group_filter: String,
    /// Comma-separated groups (names or DNs) whose members administer Loquat.
    pub admin_groups: String,
    /// Upgrade `ldap://` with StartTLS.
    #[serde(deserialize_with = "flexible_bool")]
    pub starttls: bool,
    /// A PEM file of the CA that signed the directory's certificate.
    pub ca_file: Option<PathBuf>,
    /// Default `cn`.
    pub name_attribute: String,
    /// Default `mail`.
    pub email_attribute: String,
}

/// Scheduled backups (`LOQUAT_BACKUP__*`); off while `every` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupConfig {
    /// How often: `24h`, `6h`, `30m`, `7d`.
    pub every: String,
    /// How many archives to keep (the newest).
    pub keep: usize,
    /// A folder, or `s3://bucket/prefix` (with the `S3_*` endpoint and keys).
    pub to: String,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { every: String::new(), keep: 7, to: String::new() }
    }
}

/// Tools models call (`LOQUAT_TOOLS__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolsConfig {
    /// The longest tool result given back to a model, in characters (longer ones are cut, with
    /// a note).
    pub max_result_chars: usize,
    /// Rounds of tool calls in one answer before the model must answer.
    pub max_steps: usize,
    /// The longest one tool call may take, in seconds.
    pub call_timeout_secs: u64,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        let limits = loquat_core::tools::ToolLimits::default();
        Self {
            max_result_chars: limits.max_result_chars,
            max_steps: limits.max_steps,
            call_timeout_secs: limits.call_timeout.as_secs(),
        }
    }
}

impl ToolsConfig {
    pub fn limits(&self) -> loquat_core::tools::ToolLimits {
        loquat_core::tools::ToolLimits {
            max_result_chars: self.max_result_chars.max(100),
            max_steps: self.max_steps.clamp(1, 50),
            call_timeout: std::time::Duration::from_secs(self.call_timeout_secs.clamp(1, 600)),
        }
    }
}

/// A switch written `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off` (LobeChat writes `1`).
fn flexible_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Switch {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    match Switch::deserialize(deserializer)? {
        Switch::Bool(value) => Ok(value),
        Switch::Number(0) => Ok(false),
        Switch::Number(1) => Ok(true),
        Switch::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("{text:?} is not 1/0, true/false, yes/no or on/off"))),
        },
        Switch::Number(other) => Err(serde::de::Error::custom(format!("{other} is not 1 or 0"))),
    }
}

/// Rate limits of the web layer (`LOQUAT_LIMITS__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Answers one client address may start per minute on the chat pages (`0`: no limit).
    /// Requests with an API token are governed by their user's quota instead.
    pub chat_per_address_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { chat_per_address_per_minute: 120 }
    }
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
    /// How often a running answer tells the other replicas (through the store) it is alive.
    pub heartbeat_secs: u64,
    /// After how long without a heartbeat the other replicas mark an answer interrupted.
    pub stale_after_secs: u64,
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
            auth_disable_email_password: false,
            redis_url: None,
            redis_prefix: "loquat".to_owned(),
            node_id: None,
            registration: "invite".to_owned(),
            trust_forwarded_for: false,
            trusted_proxies: String::new(),
            limits: LimitsConfig::default(),
            ssrf_allow: String::new(),
            image_hosts: String::new(),
            shutdown_grace_secs: 20,
            metrics_token: None,
            metrics_listen: None,
            files: FilesConfig::default(),
            tools: ToolsConfig::default(),
            media: MediaConfig::default(),
            backup: BackupConfig::default(),
            ldap: LdapConfig::default(),
            mcp_config: None,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_enable_path_style: false,
            s3_public_domain: None,
            llm_vision_image_use_base64: false,
            default_files_config: None,
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
            heartbeat_secs: 5,
            stale_after_secs: 60,
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

/// LobeChat's names for settings (variable, field), merged in this order before `LOQUAT_*`:
/// older spellings first, so the newer ones win when both are set.
const LOBECHAT_NAMES: &[(&str, &str)] = &[
    ("NEXTAUTH_URL", "app_url"),
    ("DATABASE_URL", "database_url"),
    ("KEY_VAULTS_SECRET", "key_vaults_secret"),
    ("APP_URL", "app_url"),
    ("PROXY_URL", "proxy_url"),
    ("ACCESS_CODE", "access_code"),
    ("AUTH_ALLOWED_EMAILS", "auth_allowed_emails"),
    ("AUTH_DISABLE_EMAIL_PASSWORD", "auth_disable_email_password"),
    ("REDIS_URL", "redis_url"),
    ("REDIS_PREFIX", "redis_prefix"),
    ("NEXT_AUTH_SECRET", "auth_secret"),
    ("AUTH_SECRET", "auth_secret"),
    ("S3_ENDPOINT", "s3_endpoint"),
    ("S3_BUCKET", "s3_bucket"),
    ("S3_REGION", "s3_region"),
    ("S3_ACCESS_KEY_ID", "s3_access_key_id"),
    ("S3_SECRET_ACCESS_KEY", "s3_secret_access_key"),
    ("S3_ENABLE_PATH_STYLE", "s3_enable_path_style"),
    ("NEXT_PUBLIC_S3_DOMAIN", "s3_public_domain"),
    ("S3_PUBLIC_DOMAIN", "s3_public_domain"),
    ("LLM_VISION_IMAGE_USE_BASE64", "llm_vision_image_use_base64"),
    ("DEFAULT_FILES_CONFIG", "default_files_config"),
];

/// Variables read outside the typed settings: the config file's path, the log filter's
/// fallback, the key rotation mode of the providers, and the standard proxy variables.
const OTHER_NAMES: &[&str] =
    &["LOQUAT_CONFIG", "RUST_LOG", "API_KEY_SELECT_MODE", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"];

/// Every environment variable Loquat reads: [`settings_env_vars`], each catalogue provider's
/// names ([`provider_env_vars`]) and single sign-on's (`loquat_auth::known_env_vars`). Tests
/// check the README and the compose file against it.
pub fn known_env_vars() -> Vec<String> {
    let mut names = settings_env_vars();
    names.extend(provider_env_vars());
    names.extend(loquat_auth::known_env_vars());
    names.sort();
    names.dedup();
    names
}

/// The settings' variables, as the README's configuration table lists them: `LOQUAT_<FIELD>`
/// (`__` between nested names) for every field of [`Config`] without a LobeChat name, the
/// LobeChat names, and [`OTHER_NAMES`].
pub fn settings_env_vars() -> Vec<String> {
    let mut names: Vec<String> = LOBECHAT_NAMES.iter().map(|(variable, _)| (*variable).to_owned()).collect();
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    for (field, value) in defaults.as_object().into_iter().flatten() {
        if LOBECHAT_NAMES.iter().any(|(_, named)| named == field) {
            continue;
        }
        match value.as_object() {
            Some(section) => names.extend(section.keys().map(|key| format!("LOQUAT_{field}__{key}").to_uppercase())),
            None => names.push(format!("LOQUAT_{field}").to_uppercase()),
        }
    }
    names.extend(OTHER_NAMES.iter().map(|name| (*name).to_owned()));
    names
}

/// Each catalogue provider's variables: `<P>_API_KEY`, `<P>_PROXY_URL`, `<P>_MODEL_LIST`,
/// `<P>_API_VERSION`, `ENABLED_<P>`, and its own extra names (`AZURE_ENDPOINT`, `GITHUB_TOKEN`…).
pub fn provider_env_vars() -> Vec<String> {
    let mut names = Vec::new();
    for entry in loquat_core::catalogue::catalogue() {
        let prefix = &entry.env;
        names.extend(
            ["_API_KEY", "_PROXY_URL", "_MODEL_LIST", "_API_VERSION"].map(|suffix| format!("{prefix}{suffix}")),
        );
        names.push(format!("ENABLED_{prefix}"));
        names.extend([&entry.key_env, &entry.base_url_env, &entry.enabled_env].into_iter().flatten().cloned());
    }
    names
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub(crate) String);

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
        for &(variable, field) in LOBECHAT_NAMES {
            figment = figment.merge(Env::raw().only(&[variable]).map(move |_| field.into()));
        }
        figment = figment.merge(Env::prefixed("LOQUAT_").split("__").ignore(&["CONFIG"]));
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
        self.trusted_proxies()?;
        if loquat_core::service::RegistrationMode::parse(&self.registration).is_none() {
            return Err(ConfigError("LOQUAT_REGISTRATION must be open, invite or closed".into()));
        }
        self.image_hosts()?;
        if self.s3_bucket_name().is_none()
            && self.s3_endpoint.as_deref().is_some_and(|endpoint| !endpoint.trim().is_empty())
        {
            return Err(ConfigError("S3_ENDPOINT is set but S3_BUCKET is not: name the bucket for files".into()));
        }
        if self.files.max_bytes == 0 {
            return Err(ConfigError("LOQUAT_FILES__MAX_BYTES must be positive".into()));
        }
        if self.generation.persist_interval_ms == 0 || self.generation.idle_timeout_secs == 0 {
            return Err(ConfigError("generation intervals and timeouts must be positive".into()));
        }
        if self.generation.heartbeat_secs == 0 || self.generation.stale_after_secs < 3 * self.generation.heartbeat_secs
        {
            return Err(ConfigError(
                "LOQUAT_GENERATION__STALE_AFTER_SECS must be at least three heartbeats (LOQUAT_GENERATION__HEARTBEAT_SECS)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The generation settings; `node_id` from [`Config::node_id`] or [`crate::node::resolve`].
    pub fn generation_settings(&self, node_id: String) -> loquat_core::generation::GenerationSettings {
        loquat_core::generation::GenerationSettings {
            persist_interval: Duration::from_millis(self.generation.persist_interval_ms),
            first_event_timeout: Duration::from_secs(self.generation.first_token_timeout_secs),
            idle_timeout: Duration::from_secs(self.generation.idle_timeout_secs),
            total_timeout: Duration::from_secs(self.generation.total_timeout_secs),
            node_id,
            heartbeat: Duration::from_secs(self.generation.heartbeat_secs),
            stale_after: Duration::from_secs(self.generation.stale_after_secs),
        }
    }

    /// Which `X-Forwarded-For` entries to believe: `trusted_proxies` when set, else the one
    /// proxy `trust_forwarded_for` speaks of, else none.
    pub fn trusted_proxies(&self) -> Result<loquat_web::TrustedProxies, ConfigError> {
        use loquat_web::TrustedProxies;
        if !self.trusted_proxies.trim().is_empty() {
            return TrustedProxies::parse(&self.trusted_proxies).map_err(|item| {
                ConfigError(format!(
                    "LOQUAT_TRUSTED_PROXIES must be a number of proxies or addresses and networks such as \
                     10.0.0.0/8; {item:?} is neither"
                ))
            });
        }
        Ok(if self.trust_forwarded_for { TrustedProxies::Hops(1) } else { TrustedProxies::None })
    }

    /// The image hosts rendered messages may load (`LOQUAT_IMAGE_HOSTS`).
    pub fn image_hosts(&self) -> Result<loquat_web::markdown::ImageHosts, ConfigError> {
        loquat_web::markdown::ImageHosts::parse(&Self::list(&self.image_hosts))
            .map_err(|error| ConfigError(error.to_string()))
    }

    /// The bucket `S3_BUCKET` names, if it names one.
    pub fn s3_bucket_name(&self) -> Option<&str> {
        self.s3_bucket.as_deref().map(str::trim).filter(|bucket| !bucket.is_empty())
    }

    /// The embedding model of knowledge search, from `DEFAULT_FILES_CONFIG`.
    pub fn embedding_model(&self) -> Option<loquat_core::service::EmbeddingModel> {
        self.default_files_config.as_deref().and_then(loquat_core::service::EmbeddingModel::from_files_config)
    }

    /// Where vision models fetch images themselves: the bucket's public domain, when files are
    /// in a bucket, it has one and `LLM_VISION_IMAGE_USE_BASE64` is off.
    pub fn public_image_base(&self) -> Option<String> {
        let domain = self.s3_public_domain.as_deref().map(str::trim).filter(|domain| !domain.is_empty())?;
        if self.s3_bucket_name().is_none() || self.llm_vision_image_use_base64 {
            return None;
        }
        Some(if domain.contains("://") { domain.to_owned() } else { format!("https://{domain}") })
    }

    /// The `S3_*` endpoint and keys, for `bucket`.
    fn s3_settings(&self, bucket: &str) -> loquat_files::S3Settings {
        loquat_files::S3Settings {
            endpoint: self.s3_endpoint.clone(),
            bucket: bucket.to_owned(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.as_ref().map(|secret| secret.expose().to_owned()),
            path_style: self.s3_enable_path_style,
        }
    }

    /// Where files are kept: the S3 bucket when `S3_BUCKET` is set, else `<data_dir>/files`.
    pub fn blobs(&self) -> Result<loquat_files::Blobs, ConfigError> {
        let blobs = match self.s3_bucket_name() {
            Some(bucket) => loquat_files::Blobs::s3(&self.s3_settings(bucket)),
            None => loquat_files::Blobs::folder(self.data_dir.join("files")),
        };
        blobs.map_err(|error| ConfigError(format!("file storage: {error}")))
    }

    /// The directory people sign in against, when `LOQUAT_LDAP__URL` is set.
    pub fn ldap(&self) -> Result<Option<loquat_auth::ldap::Ldap>, ConfigError> {
        let ldap = &self.ldap;
        if ldap.url.trim().is_empty() {
            return Ok(None);
        }
        let text = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        let settings = loquat_auth::ldap::LdapSettings {
            url: ldap.url.clone(),
            bind_dn: text(&ldap.bind_dn),
            bind_password: ldap.bind_password.clone(),
            user_base: ldap.user_base.clone(),
            user_filter: ldap.user_filter.clone(),
            group_base: text(&ldap.group_base),
            group_filter: ldap.group_filter.clone(),
            admin_groups: Self::list(&ldap.admin_groups),
            starttls: ldap.starttls,
            ca_file: ldap.ca_file.clone(),
            name_attribute: ldap.name_attribute.clone(),
            email_attribute: ldap.email_attribute.clone(),
        };
        loquat_auth::ldap::Ldap::new(settings)
            .map(Some)
            .map_err(|error| ConfigError(format!("LOQUAT_LDAP__*: {error}")))
    }

    /// The backup schedule, when `LOQUAT_BACKUP__EVERY` is set.
    pub fn backup_schedule(&self) -> Result<Option<crate::backup::schedule::Schedule>, ConfigError> {
        use crate::backup::schedule::{Destination, Schedule, parse_every};
        let backup = &self.backup;
        if backup.every.trim().is_empty() {
            return Ok(None);
        }
        let every = parse_every(&backup.every).ok_or_else(|| {
            ConfigError(format!("LOQUAT_BACKUP__EVERY={:?}: give a number and a unit, as 24h, 30m or 7d", backup.every))
        })?;
        let to = backup.to.trim();
        let to = if let Some(rest) = to.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ConfigError("LOQUAT_BACKUP__TO=s3://…: name the bucket, as s3://bucket/prefix".into()));
            }
            let blobs = loquat_files::Blobs::s3(&self.s3_settings(bucket))
                .map_err(|error| ConfigError(format!("LOQUAT_BACKUP__TO: {error}")))?;
            Destination::Bucket { blobs, prefix: prefix.trim_matches('/').to_owned() }
        } else if to.is_empty() {
            Destination::Folder(self.data_dir.join("backups"))
        } else {
            Destination::Folder(PathBuf::from(to))
        };
        Ok(Some(Schedule { every, keep: backup.keep.max(1), to, staging: self.data_dir.join("backups-staging") }))
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
    fn known_variables_cover_settings_providers_and_sso() {
        let known = known_env_vars();
        for name in [
            "LOQUAT_LISTEN",
            "LOQUAT_METRICS_TOKEN",
            "LOQUAT_HTTP__BODY_LIMIT_BYTES",
            "DATABASE_URL",
            "NEXTAUTH_URL",
            "RUST_LOG",
            "OPENAI_API_KEY",
            "ENABLED_AZURE_OPENAI",
            "AZURE_ENDPOINT",
            "GITHUB_TOKEN",
            "AUTH_KEYCLOAK_ISSUER",
            "AUTH0_CLIENT_ID",
        ] {
            assert!(known.iter().any(|known| known == name), "{name} is missing");
        }
        // A setting with a LobeChat name is documented under that name only.
        assert!(!known.iter().any(|name| name == "LOQUAT_DATABASE_URL" || name == "LOQUAT_APP_URL"));
    }

    #[test]
    fn image_hosts_are_parsed_and_checked() {
        let config = Config { image_hosts: "img.example.com, *.cdn.example.org".into(), ..Config::default() };
        assert!(config.validate().is_ok());
        let hosts = config.image_hosts().expect("valid");
        assert_eq!(hosts.csp_sources(), "https://img.example.com https://*.cdn.example.org");
        assert!(Config::default().image_hosts().expect("valid").is_empty());
        let config = Config { image_hosts: "img.example.com; script-src *".into(), ..Config::default() };
        assert!(config.validate().is_err());
        assert!(known_env_vars().iter().any(|name| name == "LOQUAT_IMAGE_HOSTS"));
    }

    #[test]
    fn rejects_unknown_database_urls() {
        let config = Config { database_url: Some(Secret::new("mysql://x")), ..Config::default() };
        assert!(config.validate().is_err());
    }
}
