//! Opens the key vault: `KEY_VAULTS_SECRET` when set; otherwise a key generated once into the
//! data folder (with a warning, since losing that file makes stored keys unreadable).

use std::io::Write;

use loquat_core::Secret;
use loquat_core::crypto::KeyVault;

use crate::StartError;
use crate::config::Config;

const KEY_FILE: &str = "key_vaults_secret";

/// The vault and its key (the key also seeds the access-code cookie when `AUTH_SECRET` is unset).
pub fn open(config: &Config) -> Result<(KeyVault, Secret), StartError> {
    if let Some(found) = existing_vault(config)? {
        return Ok(found);
    }
    let path = config.data_dir.join(KEY_FILE);
    let io_error = |source| StartError::DataDir { path: path.display().to_string(), source };
    let secret = KeyVault::generate_base64();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io_error)?;
    file.write_all(secret.expose().as_bytes()).and_then(|()| file.sync_all()).map_err(io_error)?;
    tracing::warn!(
        path = %path.display(),
        "KEY_VAULTS_SECRET is not set: generated a key for stored API keys into the data folder; back it up, or set KEY_VAULTS_SECRET"
    );
    let vault = KeyVault::from_base64(&secret).map_err(|error| StartError::Vault(error.to_string()))?;
    Ok((vault, secret))
}

/// The key when one is set or was generated before; never generates one (a restore needs the
/// backed-up instance's).
pub fn existing(config: &Config) -> Result<Option<Secret>, StartError> {
    Ok(existing_vault(config)?.map(|(_, secret)| secret))
}

fn existing_vault(config: &Config) -> Result<Option<(KeyVault, Secret)>, StartError> {
    if let Some(secret) = config.key_vaults_secret.as_ref().filter(|s| !s.is_empty()) {
        let vault = KeyVault::from_base64(secret).map_err(|error| StartError::Vault(error.to_string()))?;
        return Ok(Some((vault, secret.clone())));
    }
    let path = config.data_dir.join(KEY_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let io_error = |source| StartError::DataDir { path: path.display().to_string(), source };
    let text = Secret::new(std::fs::read_to_string(&path).map_err(io_error)?.trim());
    let vault =
        KeyVault::from_base64(&text).map_err(|error| StartError::Vault(format!("{}: {error}", path.display())))?;
    Ok(Some((vault, text)))
}
