//! The `loquat` command: `serve` (the default), `migrate`, `config`, `user …` (accounts from
//! the server's shell), `backup` and `restore`, `doctor` (what is wrong with this installation)
//! and `healthcheck` (the container's probe).

mod cli;
mod doctor;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loquat::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc: with its background thread on (see `main`) it gives memory back to the system once
/// a burst of streams is over, which glibc's malloc does not.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "loquat", version, about = "A self-hosted AI chat platform for teams")]
struct Cli {
    /// A TOML configuration file (default: ./loquat.toml when present).
    #[arg(long, env = "LOQUAT_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web interface (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration with secrets redacted.
    Config,
    /// Manage accounts: create, reset a password, promote to or demote from administrator.
    #[command(subcommand)]
    User(cli::UserCommand),
    /// Write one archive of the database and every file (the server may be running).
    Backup {
        /// The archive to write, or a folder to write a dated one into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore an archive into this configuration's database and file storage, which must be
    /// empty (a new instance, of either database).
    Restore {
        /// The archive `loquat backup` wrote.
        #[arg(long)]
        from: PathBuf,
        /// Only check the archive (whole, unchanged, this key secret's); write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Check the configuration, data folder, database, providers and Redis; exit 1 on a problem.
    Doctor,
    /// Exit 0 when the local server answers `/readyz` with 200 (for container health checks).
    Healthcheck {
        /// The readiness URL (default: `/readyz` on the configured port of this machine).
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    // Freed pages go back to the system a few seconds after a burst, even when nothing else
    // happens afterwards (jemalloc's background thread purges them).
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("loquat: could not start the allocator's background thread: {error}");
    }
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) if matches!(command, Command::Doctor) => return doctor::config_failed(&error),
        Err(error) => {
            eprintln!("loquat: {error}");
            return ExitCode::FAILURE;
        }
    };
    let serving = matches!(command, Command::Serve);
    init_logging(&config, serving);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loquat: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve => loquat::run(config, loquat::shutdown_signal()).await.map_err(|e| e.to_string()),
            Command::Migrate => migrate(&config).await.map_err(|error| error.to_string()),
            Command::Config => {
                print!("{}", config.to_redacted_toml());
                Ok(())
            }
            Command::User(command) => cli::run_user_command(&config, command).await,
            Command::Backup { to } => cli::backup(&config, &to).await,
            Command::Restore { from, check } => cli::restore(&config, &from, check).await,
            Command::Doctor => doctor::run(&config, &|name| std::env::var(name).ok()).await,
            Command::Healthcheck { url } => cli::healthcheck(&config, url.as_deref()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The server's log gets it too; the other commands only talk to the terminal.
            if serving {
                tracing::error!("{error}");
            }
            eprintln!("loquat: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> Result<(), loquat::StartError> {
    loquat::install_crypto_provider();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| loquat::StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    // Opening the store applies every pending migration.
    loquat_store::open(&loquat::store_options(config)).await?;
    println!("migrations applied");
    Ok(())
}

/// The server logs to stdout at the configured level; the other commands print their results
/// on stdout and keep only warnings, on stderr.
fn init_logging(config: &Config, serving: bool) {
    let level = if serving { config.log.as_str() } else { "warn" };
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match (config.log_format, serving) {
        (LogFormat::Json, true) => builder.json().init(),
        (LogFormat::Pretty, true) => builder.init(),
        (LogFormat::Json, false) => builder.json().with_writer(std::io::stderr).init(),
        (LogFormat::Pretty, false) => builder.with_writer(std::io::stderr).init(),
    }
}
