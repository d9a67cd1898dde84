//! `loquat doctor`: checks an installation the way serving would use it — configuration, data
//! folder, key vault, database and migrations, single sign-on settings, each enabled provider's
//! model list with its keys, S3, Redis, the directory and the backup destination — and says
//! what is wrong and how to fix it. Keys and
//! passwords are never printed. Exits 1 when anything failed.

use std::process::ExitCode;
use std::time::Duration;

use loquat::Config;
use loquat_core::Secret;
use loquat_core::catalogue::{CatalogueEntry, KeySelectMode, ServerProvider, ServerProviders, catalogue};
use loquat_core::llm::{ChatClient, Endpoint, ProviderError, ProviderErrorKind};
use loquat_providers::{HttpChatClient, HttpClientSettings, RetryPolicy};

/// The longest one provider check may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest the file storage check may take.
const FILES_TIMEOUT: Duration = Duration::from_secs(20);

/// Prints one line per check and counts the failures.
#[derive(Default)]
struct Report {
    failures: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("[ok]   {what}");
    }

    /// Not a failure, but worth knowing.
    fn warn(&mut self, what: &str, fix: &str) {
        println!("[warn] {what}");
        println!("       {fix}");
    }

    fn fail(&mut self, what: &str, fix: &str) {
        self.failures += 1;
        println!("[FAIL] {what}");
        println!("       fix: {fix}");
    }

    fn skip(&mut self, what: &str) {
        println!("[--]   {what}");
    }
}

/// The configuration did not load: the one check that could run.
pub fn config_failed(error: &loquat::config::ConfigError) -> ExitCode {
    let mut report = Report::default();
    report.fail(
        &format!("configuration: {error}"),
        "correct the variable or file named above; `loquat config` prints what is read",
    );
    println!("\n1 problem found");
    ExitCode::FAILURE
}

/// Runs every check; `env` reads the environment (the process's in production).
pub async fn run(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    loquat::install_crypto_provider();
    let mut report = Report::default();
    report.ok("configuration parses (defaults, file, environment)");
    check_data_dir(config, &mut report);
    check_vault(config, &mut report);
    check_store(config, &mut report).await;
    match loquat_auth::providers_from_env(env) {
        Ok(providers) if providers.is_empty() => report.skip("single sign-on: not configured"),
        Ok(providers) => {
            let ids: Vec<&str> = providers.iter().map(|provider| provider.id.as_str()).collect();
            report.ok(&format!("single sign-on settings: {}", ids.join(", ")));
        }
        Err(error) => report.fail(
            &format!("single sign-on: {error}"),
            "set the variable named above, or remove the provider from AUTH_SSO_PROVIDERS",
        ),
    }
    check_providers(config, env, &mut report).await;
    check_redis(config, &mut report).await;
    check_files(config, &mut report).await;
    check_directory(config, &mut report).await;
    check_backups(config, &mut report).await;
    println!();
    match report.failures {
        0 => {
            println!("no problems found");
            Ok(())
        }
        1 => Err("1 problem found".into()),
        n => Err(format!("{n} problems found")),
    }
}

async fn check_directory(config: &Config, report: &mut Report) {
    let ldap = match config.ldap() {
        Ok(Some(ldap)) => ldap,
        Ok(None) => return report.skip("directory sign-in (LDAP): not configured"),
        Err(error) => return report.fail(&error.to_string(), "correct the LOQUAT_LDAP__ setting named above"),
    };
    match ldap.probe().await {
        Ok(()) => report.ok(&format!("directory {}: the service account reads the people base", config.ldap.url)),
        Err(error) => report.fail(
            &format!("directory {}: {error}", config.ldap.url),
            "check LOQUAT_LDAP__URL, __BIND_DN, __BIND_PASSWORD, __USER_BASE and, for TLS, __CA_FILE",
        ),
    }
}

async fn check_backups(config: &Config, report: &mut Report) {
    use loquat::backup::schedule::Destination;
    let schedule = match config.backup_schedule() {
        Ok(Some(schedule)) => schedule,
        Ok(None) => {
            return report.warn(
                "scheduled backups: off",
                "set LOQUAT_BACKUP__EVERY (e.g. 24h) and LOQUAT_BACKUP__TO, or run `loquat backup --to PATH` yourself",
            );
        }
        Err(error) => return report.fail(&error.to_string(), "correct the LOQUAT_BACKUP__ setting named above"),
    };
    let checked = match &schedule.to {
        Destination::Folder(folder) => {
            let probe = folder.join(format!(".doctor-{}", std::process::id()));
            let written = std::fs::create_dir_all(folder).and_then(|()| std::fs::write(&probe, b"ok"));
            let _ = std::fs::remove_file(&probe);
            written.map_err(|error| format!("{}: {error}", folder.display()))
        }
        Destination::Bucket { blobs, .. } => match tokio::time::timeout(FILES_TIMEOUT, blobs.probe()).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err("no answer".to_owned()),
        },
    };
    match checked {
        Ok(()) => report.ok(&format!(
            "scheduled backups every {:?}, kept {}: the destination takes files",
            schedule.every, schedule.keep
        )),
        Err(error) => report.fail(
            &format!("scheduled backups cannot be written: {error}"),
            "give Loquat write access to LOQUAT_BACKUP__TO (a folder, or s3://bucket/prefix with the S3_* keys)",
        ),
    }
}

fn check_data_dir(config: &Config, report: &mut Report) {
    let dir = &config.data_dir;
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&probe, b"ok"));
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => report.ok(&format!("data folder {} is writable", dir.display())),
        Err(error) => report.fail(
            &format!("data folder {} is not writable: {error}", dir.display()),
            "create it and give the user running Loquat write access, or set LOQUAT_DATA_DIR",
        ),
    }
}

fn check_vault(config: &Config, report: &mut Report) {
    let Some(secret) = config.key_vaults_secret.as_ref().filter(|secret| !secret.is_empty()) else {
        report.warn(
            "KEY_VAULTS_SECRET is not set: stored API keys use the key generated in the data folder",
            "back that file up with the database, or set KEY_VAULTS_SECRET (e.g. `openssl rand -base64 32`)",
        );
        return;
    };
    match loquat_core::crypto::KeyVault::from_base64(secret) {
        Ok(_) => report.ok("KEY_VAULTS_SECRET is a valid key"),
        Err(_) => report.fail(
            "KEY_VAULTS_SECRET is not base64 of 16, 24 or 32 bytes",
            "generate one with `openssl rand -base64 32` (keys stored under another key cannot be read)",
        ),
    }
}

async fn check_store(config: &Config, report: &mut Report) {
    match loquat_store::open(&loquat::store_options(config)).await {
        Ok(store) => {
            use loquat_core::store::Store;
            match store.ping().await {
                Ok(()) => report.ok(&format!("database ({}) opens; migrations applied", store.backend_name())),
                Err(error) => report.fail(&format!("database opened but does not answer: {error}"), "check the database server"),
            }
            store.close().await;
        }
        Err(error) => report.fail(
            &format!("database: {error}"),
            "check DATABASE_URL (host, port, user, password, database name) and that the server runs; unset it for SQLite",
        ),
    }
}

async fn check_providers(config: &Config, env: &dyn Fn(&str) -> Option<String>, report: &mut Report) {
    let providers = match ServerProviders::from_env(env) {
        Ok(providers) => providers,
        Err(error) => {
            report.fail(&format!("provider settings: {error}"), "correct the variable named above");
            return;
        }
    };
    if providers.providers.is_empty() {
        report.skip("providers: none enabled (members can add their own on the settings page)");
        return;
    }
    let settings = HttpClientSettings {
        connect_timeout: Duration::from_secs(config.http.connect_timeout_secs),
        request_timeout_for_non_streaming: Duration::from_secs(config.http.request_timeout_secs),
        retry: RetryPolicy { max_retries: 0, ..RetryPolicy::default() },
        proxy_url: config.proxy_url.clone(),
        ..HttpClientSettings::default()
    };
    let client = match HttpChatClient::new(&settings) {
        Ok(client) => client,
        Err(error) => {
            report.fail(&format!("the HTTP client for providers: {error}"), "check PROXY_URL");
            return;
        }
    };
    for provider in &providers.providers {
        let Some(entry) = catalogue().iter().find(|entry| entry.id == provider.id) else { continue };
        check_provider(&client, provider, entry, env, report).await;
    }
}

async fn check_provider(
    client: &HttpChatClient,
    provider: &ServerProvider,
    entry: &CatalogueEntry,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) {
    let names = ProviderNames::of(entry);
    let configured = names.all.iter().any(|name| env(name).is_some_and(|value| !value.trim().is_empty()));
    let label = format!("provider {} ({})", provider.name, provider.base_url);
    let keys = provider.keys_for_request(KeySelectMode::Turn);
    if keys.is_empty() && provider.key_required {
        report.skip(&format!(
            "{label}: enabled without a server key; members may use their own ({} sets one)",
            names.key
        ));
        return;
    }
    let attempts: Vec<Option<Secret>> = if keys.is_empty() { vec![None] } else { keys.into_iter().map(Some).collect() };
    let count = attempts.len();
    let mut answered = Vec::new();
    for (index, key) in attempts.into_iter().enumerate() {
        let which = if count > 1 { format!(" (key {} of {count})", index + 1) } else { String::new() };
        let mut endpoint = Endpoint::new(provider.protocol, provider.base_url.clone(), key);
        endpoint.api_version = provider.api_version.clone();
        let listed = tokio::time::timeout(PROVIDER_TIMEOUT, client.list_models(&endpoint)).await;
        match listed {
            Ok(Ok(models)) => answered.push(format!("{} models{which}", models.len())),
            Ok(Err(error)) => report_provider_error(report, &format!("{label}{which}"), &error, &names, configured),
            Err(_) => {
                let error = ProviderError::new(ProviderErrorKind::Timeout, "no answer");
                report_provider_error(report, &format!("{label}{which}"), &error, &names, configured);
            }
        }
    }
    if !answered.is_empty() {
        report.ok(&format!("{label}: lists {}", answered.join(", ")));
    }
}

fn report_provider_error(
    report: &mut Report,
    label: &str,
    error: &ProviderError,
    names: &ProviderNames,
    configured: bool,
) {
    let status = error.status.map(|status| format!(", HTTP {status}")).unwrap_or_default();
    let detail: String = error.detail.chars().take(240).collect();
    let (what, fix) = match error.kind {
        ProviderErrorKind::InvalidKey => ("the key was refused".to_owned(), format!("check {}", names.key)),
        ProviderErrorKind::Unreachable | ProviderErrorKind::Timeout => (
            match error.kind {
                ProviderErrorKind::Timeout => "unreachable: no answer in time".to_owned(),
                _ => format!("unreachable: {detail}"),
            },
            format!("check {} (the base URL), the network, or PROXY_URL / HTTPS_PROXY", names.base_url),
        ),
        ProviderErrorKind::QuotaExceeded => (
            "the account is out of quota or credit".to_owned(),
            "add credit or raise the quota with the provider".to_owned(),
        ),
        ProviderErrorKind::RateLimited => {
            let what = format!("{label}: rate limited (the key was accepted{status})");
            report.warn(&what, "try again later; several keys in one variable, comma-separated, are rotated");
            return;
        }
        kind => (
            format!("answered with an error ({}{status}): {detail}", kind.code()),
            format!("check that {} points at the provider's API", names.base_url),
        ),
    };
    if configured {
        report.fail(&format!("{label}: {what}"), &fix);
    } else {
        // On by default (OpenAI, Ollama) and not set up: worth a line, not a failure.
        report.warn(&format!("{label}: {what} (on by default)"), &format!("{fix}, or set {}=0", names.enabled));
    }
}

/// The variables that configure one catalogue provider, as named in fixes.
struct ProviderNames {
    key: String,
    /// How fixes name the base URL's variables.
    base_url: String,
    enabled: String,
    /// Every variable whose presence means the operator set this provider up.
    all: Vec<String>,
}

impl ProviderNames {
    fn of(entry: &CatalogueEntry) -> Self {
        let env = &entry.env;
        let base_url = match &entry.base_url_env {
            Some(other) => format!("{env}_PROXY_URL or {other}"),
            None => format!("{env}_PROXY_URL"),
        };
        let mut all = ["_API_KEY", "_PROXY_URL", "_MODEL_LIST"].map(|suffix| format!("{env}{suffix}")).to_vec();
        all.push(format!("ENABLED_{env}"));
        all.extend([&entry.key_env, &entry.base_url_env, &entry.enabled_env].into_iter().flatten().cloned());
        Self { key: format!("{env}_API_KEY"), base_url, enabled: format!("ENABLED_{env}"), all }
    }
}

async fn check_redis(config: &Config, report: &mut Report) {
    let Some(url) = config.redis_url.as_ref().filter(|url| !url.is_empty()) else {
        report.skip("Redis: not configured (rate limits hold per process; set REDIS_URL for several replicas)");
        return;
    };
    match loquat_limits::from_config(Some(url.expose()), &config.redis_prefix).await {
        Ok(limiter) => match limiter.ping().await {
            Ok(()) => report.ok("Redis answers (REDIS_URL)"),
            Err(error) => {
                report.fail(&format!("Redis: {error}"), "check that Redis runs and REDIS_URL's host, port and password")
            }
        },
        Err(error) => {
            report.fail(&format!("Redis: {error}"), "check that Redis runs and REDIS_URL's host, port and password")
        }
    }
}

/// Writes, reads back and deletes a probe object where files are kept.
async fn check_files(config: &Config, report: &mut Report) {
    let fix = if config.s3_bucket_name().is_some() {
        "check S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY, S3_ENABLE_PATH_STYLE \
         and that the bucket exists"
    } else {
        "check that the data folder is writable (LOQUAT_DATA_DIR)"
    };
    let blobs = match config.blobs() {
        Ok(blobs) => blobs,
        Err(error) => return report.fail(&error.to_string(), fix),
    };
    match tokio::time::timeout(FILES_TIMEOUT, blobs.probe()).await {
        Ok(Ok(())) => report.ok(&format!("files: {} (a probe written, read back and deleted)", blobs.backend())),
        Ok(Err(error)) => report.fail(&format!("files: {}: {error}", blobs.backend()), fix),
        Err(_) => report.fail(&format!("files: {} did not answer in time", blobs.backend()), fix),
    }
}
