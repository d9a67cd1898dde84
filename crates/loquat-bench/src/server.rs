//! Runs the real `loquat` binary as a child process, so start-up time and memory are measured
//! on the process users run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct Loquat {
    child: Child,
    pub base: String,
    pub pid: u32,
    /// From spawning the process to the first successful `/healthz`.
    pub ready_after: Duration,
}

/// The `loquat` binary next to this one (both built by `cargo build --release`).
pub fn default_binary() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    me.with_file_name(if cfg!(windows) { "loquat.exe" } else { "loquat" })
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

pub async fn start(binary: &Path, data_dir: &Path, env: &[(&str, String)]) -> Loquat {
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("LOQUAT_LISTEN", format!("127.0.0.1:{port}"))
        .env("LOQUAT_DATA_DIR", data_dir)
        .env("LOQUAT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let pid = child.id().expect("a running child");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "loquat did not become ready");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Loquat { child, base, pid, ready_after: started.elapsed() }
}

impl Loquat {
    /// Resident memory of the process in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The process's own memory (`RssAnon`): its RSS without the pages mapped from files (the
    /// binary's code, shared libraries, SQLite's memory map), which the system shares and can
    /// drop at any time (Linux).
    pub fn private_kib(&self) -> u64 {
        self.status_kib("RssAnon:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Files (sockets included) the process has open (Linux).
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map(|entries| entries.count()).unwrap_or(0)
    }

    /// CPU time (user + system) the process has used so far, in seconds (Linux).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name (which may hold spaces, so split after its `)`):
        // utime and stime are the 12th and 13th, in clock ticks.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
        let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
        ticks as f64 / clock_ticks_per_second()
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// `getconf CLK_TCK` (100 on every Linux this runs on; asked once to be sure).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
