//! Wires Loquat together: configuration → store, providers, services → the HTTP router, and
//! runs it until shutdown, letting running answers finish or persisting them as interrupted.

pub mod backup;
mod bus;
pub mod config;
pub mod node;
pub mod telemetry;
mod vault;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use loquat_core::Secret;
use loquat_core::Services;
use loquat_core::bus::EventBus;
use loquat_core::catalogue::ServerProviders;
use loquat_core::service::{DataStores, Limits, RegistrationMode};
use loquat_providers::{HttpChatClient, HttpClientSettings, RetryPolicy};
use loquat_store::StoreOptions;
use loquat_web::{AppState, WebSettings};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

pub use config::Config;

/// Why Loquat could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use the data folder {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the key vault: {0}")]
    Vault(String),
    #[error("the database: {0}")]
    Store(#[from] loquat_core::store::StoreError),
    #[error("provider settings in the environment: {0}")]
    Providers(#[from] loquat_core::catalogue::EnvProviderError),
    #[error("the HTTP client: {0}")]
    Client(String),
    #[error("{0}")]
    Core(#[from] loquat_core::CoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error("rate limits (REDIS_URL): {0}")]
    Limits(String),
    #[error("the event bus between replicas (REDIS_URL): {0}")]
    Bus(String),
    #[error("{0}")]
    Files(String),
    #[error("single sign-on: {0}")]
    Sso(String),
    #[error("{0}")]
    Config(#[from] config::ConfigError),
}

/// A built application, ready to serve.
pub struct App {
    pub services: Services,
    router: axum::Router,
    shutdown_grace: Duration,
    /// `LOQUAT_METRICS_LISTEN`: a second listener serving only `/metrics`.
    metrics_listen: Option<SocketAddr>,
    /// Holds this process's node name while it serves.
    _node: node::Node,
    /// The scheduled backups, stopped with the app.
    _backups: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

/// Installs the process-wide TLS crypto provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Opens the store, reads provider settings through `env` (the process environment in
/// production, a map in tests) and builds the services and routes.
pub async fn build(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<App, StartError> {
    install_crypto_provider();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let (vault, vault_key) = vault::open(config)?;
    let store = loquat_store::open(&store_options(config)).await?;
    let blobs = config.blobs().map_err(|error| StartError::Files(error.to_string()))?;
    tracing::info!(storage = %blobs.backend(), "files");
    // What a crash left mid-upload; a day's margin spares uploads running on other replicas.
    let sweeper = blobs.clone();
    tokio::spawn(async move {
        match sweeper.sweep_interrupted_uploads(Duration::from_secs(24 * 3600)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed uploads a crash interrupted"),
            Err(error) => tracing::warn!(%error, "could not look for interrupted uploads"),
        }
    });
    let server_providers = ServerProviders::from_env(env)?;
    if server_providers.providers.is_empty() {
        tracing::info!("no model provider in the environment; set OPENAI_API_KEY or add one in the settings");
    }
    for provider in &server_providers.providers {
        tracing::info!(provider = %provider.id, base_url = %provider.base_url, keys = provider.key_count(), models = provider.models.len(), "provider enabled");
    }
    let client = HttpChatClient::new(&HttpClientSettings {
        connect_timeout: Duration::from_secs(config.http.connect_timeout_secs),
        request_timeout_for_non_streaming: Duration::from_secs(config.http.request_timeout_secs),
        retry: RetryPolicy {
            max_retries: config.http.max_retries,
            base_delay: Duration::from_millis(config.http.retry_base_delay_ms),
            ..RetryPolicy::default()
        },
        proxy_url: config.proxy_url.clone(),
        ssrf_allow: Config::list(&config.ssrf_allow),
        ..HttpClientSettings::default()
    })
    .map_err(|error| StartError::Client(error.to_string()))?;
    let redis_url = config.redis_url.as_ref().map(|url| url.expose().to_owned()).filter(|url| !url.is_empty());
    let node = node::resolve(config)?;
    // Replicas share live answers and stop requests through Redis; alone, nothing is needed.
    let bus: Option<Arc<dyn EventBus>> = match &redis_url {
        Some(url) => {
            let bus = bus::RedisBus::connect(url, &config.redis_prefix)
                .await
                .map_err(|error| StartError::Bus(error.to_string()))?;
            Some(Arc::new(bus))
        }
        None => None,
    };
    tracing::info!(node = %node.id, shared = bus.is_some(), "generation node");
    let tools = loquat_tools::from_env(env, &client.web());
    for tool in &tools {
        tracing::info!(tool = %tool.spec().name, "tool available");
    }
    let sources = match &config.mcp_config {
        Some(path) => loquat_tools::mcp::servers_from_file(path, &client.web())
            .map_err(|error| StartError::Config(config::ConfigError(format!("LOQUAT_MCP_CONFIG: {error}"))))?,
        None => Vec::new(),
    };
    for source in &sources {
        tracing::info!(tools = %source.name(), "MCP server configured");
    }
    let plugin_settings = loquat_tools::plugin::parse_plugin_settings(&env("PLUGIN_SETTINGS").unwrap_or_default())
        .map_err(|error| StartError::Config(config::ConfigError(format!("PLUGIN_SETTINGS: {error}"))))?;
    let tools = loquat_core::tools::ToolShelf::new(tools, sources, config.tools.limits())
        .with_connector(Arc::new(loquat_tools::mcp::Connector::new(client.web(), plugin_settings)));
    let schedule = config.backup_schedule()?;
    let backups = schedule.map(|schedule| {
        let status = loquat_web::health::BackupStatus::default();
        let run = backup::schedule::run(schedule, store.clone(), blobs.clone(), vault_key.clone(), status.clone());
        (status, tokio_util::task::AbortOnDropHandle::new(tokio::spawn(run)))
    });
    let services = Services::new(
        DataStores {
            store: Arc::new(store),
            blobs,
            public_image_base: config.public_image_base(),
            embedding_model: config.embedding_model(),
        },
        Arc::new(client),
        vault,
        server_providers,
        config.generation_settings(node.id.clone()),
        Limits {
            max_message_chars: config.max_message_chars,
            allow_user_keys: config.allow_user_keys,
            registration: RegistrationMode::parse(&config.registration).unwrap_or_default(),
            max_file_bytes: config.files.max_bytes,
            passwords: !config.auth_disable_email_password,
            media: loquat_core::service::MediaModels {
                speech: config.media.speech_model.clone(),
                voice: config.media.voice.clone(),
                transcription: config.media.transcription_model.clone(),
                image: config.media.image_model.clone(),
            },
        },
        bus,
        tools,
    );
    services.bootstrap().await?;
    services.generations().listen_for_remote_stops();
    // The sanitizer is built lazily; build it now, off the request path.
    tokio::task::spawn_blocking(loquat_web::markdown::warm_up);
    let public_url = config.app_url.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let web_settings = WebSettings {
        body_limit: config.http.body_limit_bytes,
        secure_cookies: public_url.starts_with("https://"),
        access_codes: config
            .access_code
            .as_ref()
            .map(|codes| Config::list(codes.expose()).into_iter().map(Secret::new).collect())
            .unwrap_or_default(),
        auth_secret: config.auth_secret.clone().filter(|secret| !secret.is_empty()).unwrap_or(vault_key),
        trusted_proxies: config.trusted_proxies()?,
        chat_per_address_per_minute: config.limits.chat_per_address_per_minute,
        allowed_emails: Config::list(&config.auth_allowed_emails),
        public_url: public_url.clone(),
        image_hosts: config.image_hosts()?,
    };
    let limiter = loquat_limits::from_config(redis_url.as_deref(), &config.redis_prefix)
        .await
        .map_err(|error| StartError::Limits(error.to_string()))?;
    let sso_providers = loquat_auth::providers_from_env(env).map_err(|error| StartError::Sso(error.to_string()))?;
    let directory = config.ldap()?;
    if let Some(directory) = &directory {
        tracing::info!(directory = ?directory, "directory sign-in enabled");
    }
    // An instance nobody can sign in to is refused before it serves anyone.
    if config.auth_disable_email_password && sso_providers.is_empty() && directory.is_none() {
        let reason = "AUTH_DISABLE_EMAIL_PASSWORD=1 turns passwords off, but neither AUTH_SSO_PROVIDERS nor \
                      LOQUAT_LDAP__URL names a way to sign in: nobody could. Set up a provider or a directory, \
                      or unset AUTH_DISABLE_EMAIL_PASSWORD.";
        return Err(StartError::Config(config::ConfigError(reason.to_owned())));
    }
    let services = match directory {
        Some(directory) => services.with_directory(Arc::new(directory)),
        None => services,
    };
    let sso = if sso_providers.is_empty() {
        None
    } else {
        for provider in &sso_providers {
            tracing::info!(provider = %provider.id, "single sign-on enabled");
        }
        let client = loquat_auth::SsoClient::new(sso_providers, public_url)
            .map_err(|error| StartError::Sso(error.to_string()))?;
        Some(Arc::new(client))
    };
    // The recorder is process-wide (installed on first use); request tracing and request ids
    // are layers of the route table.
    let metrics = loquat_web::metrics::MetricsEndpoint::new(config.metrics_token.clone(), telemetry::renderer());
    let mut state = AppState::new(services.clone(), web_settings, limiter, sso).with_metrics(metrics);
    let backups = backups.map(|(status, task)| {
        state.backup = Some(status);
        task
    });
    let router = loquat_web::router(state).layer(CompressionLayer::new());
    Ok(App {
        services,
        router,
        shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        metrics_listen: config.metrics_listen,
        _node: node,
        _backups: backups,
    })
}

/// The services over the configured store (migrated), without providers or a server: for the
/// command line's account commands. Runs no start-up recovery, since a server may be running.
pub async fn open_services(config: &Config) -> Result<Services, StartError> {
    install_crypto_provider();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let (vault, _) = vault::open(config)?;
    let store = loquat_store::open(&store_options(config)).await?;
    let client =
        HttpChatClient::new(&HttpClientSettings::default()).map_err(|error| StartError::Client(error.to_string()))?;
    Ok(Services::new(
        DataStores {
            store: Arc::new(store),
            blobs: config.blobs().map_err(|error| StartError::Files(error.to_string()))?,
            public_image_base: None,
            embedding_model: config.embedding_model(),
        },
        Arc::new(client),
        vault,
        ServerProviders::default(),
        // The command line never generates.
        config.generation_settings("cli".to_owned()),
        Limits::default(),
        None,
        loquat_core::tools::ToolShelf::default(),
    ))
}

pub fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        database_url: config.database_url.as_ref().map(|url| url.expose().to_owned()),
        data_dir: config.data_dir.clone(),
    }
}

impl App {
    /// Serves on `listener` until `shutdown` resolves, then drains running answers.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let generations = self.services.generations().clone();
        let metrics_server = match self.metrics_listen {
            Some(address) => Some(telemetry::serve_metrics(address).await?),
            None => None,
        };
        // Expired sessions and abandoned sign-ins are deleted hourly; answers of a replica that
        // died are marked interrupted once its heartbeat is overdue.
        let janitor = tokio::spawn(janitor(self.services.clone()));
        // Documents are read in the background, on every node (each claims its own); the reader
        // first queues those embedded with another model than the current one.
        let reader = tokio::spawn(self.services.knowledge.clone().run_ingestion());
        // Streams are many small writes: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(StartError::Serve)?;
        let running = generations.running();
        if running > 0 {
            tracing::info!(running, grace = ?self.shutdown_grace, "waiting for running answers to finish");
        }
        janitor.abort();
        reader.abort();
        if let Some(metrics_server) = metrics_server {
            metrics_server.abort();
        }
        generations.shutdown(self.shutdown_grace).await;
        Ok(())
    }
}

async fn janitor(services: Services) {
    let stale_after = services.generations().settings().stale_after;
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    let mut sweep = tokio::time::interval(stale_after / 2);
    loop {
        tokio::select! {
            _ = hourly.tick() => match services.accounts.purge_expired().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "deleted expired sessions"),
                Err(error) => tracing::warn!(%error, "could not delete expired sessions"),
            },
            _ = sweep.tick() => match services.interrupt_stale_generations().await {
                Ok(0) => {}
                Ok(interrupted) => tracing::warn!(interrupted, "answers of a silent node were marked interrupted"),
                Err(error) => tracing::warn!(%error, "could not look for answers of silent nodes"),
            },
        }
    }
}

/// Builds and serves with the process environment; logs when ready.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    let started = Instant::now();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen { address: config.listen, source })?;
    let app = build(&config, &|name| std::env::var(name).ok()).await?;
    let address = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "Loquat is ready on http://{address}");
    app.serve(listener, shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
