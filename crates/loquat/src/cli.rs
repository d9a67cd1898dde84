//! `loquat user …`: accounts from the server's shell (create, reset a password, promote,
//! demote) through the same services as the admin pages, `loquat backup` and `restore` (their
//! work is in `loquat::backup`), and `loquat healthcheck`, the container's probe, which asks
//! the local server's `/readyz` without any HTTP client library.

use std::io::BufRead;
use std::time::Duration;

use clap::Subcommand;
use loquat::Config;
use loquat_core::domain::{Role, User};
use loquat_core::{CoreError, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account. The first account of an instance is always an administrator.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password (visible to other users of this machine: prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password (generated and printed unless --password-stdin) and end the
    /// account's sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make an account an administrator.
    Promote {
        #[arg(long)]
        email: String,
    },
    /// Make an administrator a member again (the last administrator stays).
    Demote {
        #[arg(long)]
        email: String,
    },
}

pub async fn run_user_command(config: &Config, command: UserCommand) -> Result<(), String> {
    let services = loquat::open_services(config).await.map_err(|error| error.to_string())?;
    match command {
        UserCommand::Create { email, name, password, password_stdin, admin } => {
            if password.is_some() {
                eprintln!("loquat: warning: --password is visible in the process list; prefer --password-stdin");
            }
            let (password, generated) = password_from(password, password_stdin)?;
            let user = services.admin.cli_create_user(&name, &email, password.clone(), admin).await.map_err(explain)?;
            println!("created {} ({})", describe(&user), role_name(user.role));
            if user.role == Role::Admin && !admin {
                println!("the first account of an instance is an administrator");
            }
            print_generated(&password, generated);
        }
        UserCommand::ResetPassword { email, password_stdin } => {
            let (password, generated) = password_from(None, password_stdin)?;
            let user = services.admin.cli_reset_password(&email, password.clone()).await.map_err(explain)?;
            println!("new password set for {}; their sessions were ended", describe(&user));
            print_generated(&password, generated);
        }
        UserCommand::Promote { email } => {
            let user = services.admin.cli_set_role(&email, Role::Admin).await.map_err(explain)?;
            println!("{} is now an administrator", describe(&user));
        }
        UserCommand::Demote { email } => {
            let user = services.admin.cli_set_role(&email, Role::User).await.map_err(explain)?;
            println!("{} is now a member", describe(&user));
        }
    }
    Ok(())
}

/// The password to set, and whether it was generated (and so must be shown once).
fn password_from(given: Option<String>, from_stdin: bool) -> Result<(Secret, bool), String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|error| format!("cannot read standard input: {error}"))?;
        let password = line.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err("--password-stdin: standard input held no password".into());
        }
        return Ok((Secret::new(password), false));
    }
    match given {
        Some(password) => Ok((Secret::new(password), false)),
        None => Ok((loquat_core::crypto::new_token(""), true)),
    }
}

fn print_generated(password: &Secret, generated: bool) {
    if generated {
        println!("password (shown once): {}", password.expose());
    }
}

fn describe(user: &User) -> String {
    format!("{} <{}>", user.name, user.email.as_deref().unwrap_or_default())
}

fn role_name(role: Role) -> &'static str {
    if role == Role::Admin { "administrator" } else { "member" }
}

/// The services' rule codes in words for the shell (the pages translate them).
fn explain(error: CoreError) -> String {
    match &error {
        CoreError::NotFound("user") => "no account has this email".into(),
        CoreError::Invalid { code, .. } => match *code {
            "email_taken" => "an account with this email exists already".into(),
            "email_invalid" => "this is not a valid email address".into(),
            "password_length" => "a password needs 8 to 256 characters".into(),
            "name_length" => "a name needs 1 to 100 characters".into(),
            "last_admin" => "this is the last administrator: promote another account first".into(),
            "passwords_off" => {
                "AUTH_DISABLE_EMAIL_PASSWORD is set: people sign in through the identity provider only, \
                                so there is no password to set or reset (disable an account in the admin panel \
                                instead)"
                    .into()
            }
            _ => error.to_string(),
        },
        _ => error.to_string(),
    }
}

/// `loquat backup --to PATH`.
pub async fn backup(config: &Config, to: &std::path::Path) -> Result<(), String> {
    let written = loquat::backup::backup_instance(config, to).await?;
    println!(
        "backup written: {} ({} rows, {} files, {} bytes)",
        written.path.display(),
        written.rows,
        written.files,
        written.bytes
    );
    if written.missing_files > 0 {
        println!("{} files were deleted while the backup ran; their records are kept", written.missing_files);
    }
    Ok(())
}

/// `loquat restore --from PATH [--check]`.
pub async fn restore(config: &Config, from: &std::path::Path, check: bool) -> Result<(), String> {
    if check {
        let manifest = loquat::backup::check_archive(config, from).await?;
        let rows: u64 = manifest.tables.iter().map(|table| table.rows).sum();
        println!(
            "the backup is whole and unchanged: {rows} rows and {} files from a {} instance (schema {})",
            manifest.files.len(),
            manifest.backend,
            manifest.schema
        );
        return Ok(());
    }
    let restored = loquat::backup::restore_instance(config, from).await?;
    let taken = jiff::Timestamp::from_millisecond(restored.taken_at).map(|t| t.to_string()).unwrap_or_default();
    println!("restored the backup of {taken}: {} rows, {} files", restored.rows, restored.files);
    println!("people sign in again; the search index was rebuilt");
    Ok(())
}

/// GETs `/readyz` on this machine (the listen port, on loopback when listening on every
/// address) and succeeds on a 200.
pub async fn healthcheck(config: &Config, url: Option<&str>) -> Result<(), String> {
    let (host, port, path) = match url {
        Some(url) => parse_http_url(url)?,
        None => {
            let ip = match config.listen.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                ip if ip.is_ipv6() => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            (ip, config.listen.port(), "/readyz".to_owned())
        }
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(format!("{host}:{port}")).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 64];
        let read = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..read]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(5), probe)
        .await
        .map_err(|_| format!("http://{host}:{port}{path} did not answer within 5 s"))?
        .map_err(|error| format!("cannot reach http://{host}:{port}{path}: {error}"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status == "200" {
        println!("ready");
        Ok(())
    } else {
        Err(format!("http://{host}:{port}{path} answered {status}: not ready"))
    }
}

/// `http://host[:port][/path]` into its parts (plain HTTP only: the probe runs beside the server).
fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or("--url must start with http://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            (host.to_owned(), port.parse().map_err(|_| format!("--url has an invalid port: {port}"))?)
        }
        _ => (authority.to_owned(), 80),
    };
    if host.is_empty() {
        return Err("--url has no host".into());
    }
    Ok((host, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_urls_parse() {
        assert_eq!(parse_http_url("http://127.0.0.1:3210/readyz"), Ok(("127.0.0.1".into(), 3210, "/readyz".into())));
        assert_eq!(parse_http_url("http://loquat/readyz"), Ok(("loquat".into(), 80, "/readyz".into())));
        assert_eq!(parse_http_url("http://[::1]:9/x"), Ok(("[::1]".into(), 9, "/x".into())));
        assert!(parse_http_url("https://loquat/readyz").is_err());
        assert!(parse_http_url("http://:80/").is_err());
    }

    #[test]
    fn rule_codes_read_as_sentences() {
        assert_eq!(
            explain(CoreError::invalid("last_admin")),
            "this is the last administrator: promote another account first"
        );
        assert_eq!(explain(CoreError::NotFound("user")), "no account has this email");
    }
}
