//! This process's name among replicas. Answers in the store carry the name of the node
//! generating them: a restarted node recovers its own unfinished answers at once, and the
//! others only once their node stops sending heartbeats.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;

use crate::{Config, StartError};

/// Processes sharing a data folder take the first free slot: `node_id`, `node_id.2`, ….
const SLOTS: usize = 64;

/// This process's node name, holding its slot in the data folder while it lives.
#[derive(Debug)]
pub struct Node {
    pub id: String,
    _slot: Option<File>,
}

/// `LOQUAT_NODE_ID` when set; otherwise the host name and a random suffix kept in the data
/// folder, so the name survives restarts, differs between hosts sharing a data folder, and
/// between processes sharing one on a host (each locks its own slot file).
pub fn resolve(config: &Config) -> Result<Node, StartError> {
    if let Some(id) = config.node_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        return Ok(Node { id: id.to_owned(), _slot: None });
    }
    let (suffix, slot) = take_slot(&config.data_dir)?;
    let id = match host_name() {
        Some(host) => format!("{host}-{suffix}"),
        None => suffix,
    };
    Ok(Node { id, _slot: slot })
}

fn take_slot(data_dir: &Path) -> Result<(String, Option<File>), StartError> {
    for slot in 1..=SLOTS {
        let name = if slot == 1 { "node_id".to_owned() } else { format!("node_id.{slot}") };
        let path = data_dir.join(name);
        let error = |source| StartError::DataDir { path: path.display().to_string(), source };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(error)?;
        let locked = match file.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => continue,
            // A file system without locks: one process per data folder, as with SQLite.
            Err(TryLockError::Error(_)) => false,
        };
        let mut kept = String::new();
        file.read_to_string(&mut kept).map_err(error)?;
        let kept = kept.trim().to_owned();
        if !kept.is_empty() {
            return Ok((kept, locked.then_some(file)));
        }
        let fresh = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        file.write_all(fresh.as_bytes()).and_then(|()| file.sync_all()).map_err(error)?;
        return Ok((fresh, locked.then_some(file)));
    }
    Err(StartError::DataDir {
        path: data_dir.display().to_string(),
        source: std::io::Error::other(format!("more than {SLOTS} processes share this data folder")),
    })
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok())?;
    let name: String =
        name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')).collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_kept_across_restarts_and_differs_between_processes() {
        let dir = std::env::temp_dir().join(format!("loquat-node-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = Config { data_dir: dir.clone(), ..Config::default() };
        let first = resolve(&config).expect("resolves");
        let beside = resolve(&config).expect("resolves");
        assert_ne!(beside.id, first.id, "a second process on the same folder is another node");
        let first_id = first.id.clone();
        drop((first, beside));
        assert_eq!(resolve(&config).expect("resolves").id, first_id, "a restart is the same node");
        let named = Config { node_id: Some(" web-2 ".to_owned()), ..config };
        assert_eq!(resolve(&named).expect("resolves").id, "web-2");
        std::fs::remove_dir_all(dir).expect("cleaned up");
    }
}
