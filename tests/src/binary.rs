//! The real `pgqueue` binary, for end-to-end tests that run it as a user would.
//!
//! `pgqueue-cli` is a binary crate, so this test crate cannot depend on it; instead the first
//! test that needs the binary builds it with the same cargo that runs the tests (a no-op when
//! it is fresh), into the same target directory, and every test uses that path.

use crate::db::TestDatabase;
use pgqueue_client::Client;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command as StdCommand, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The path of a freshly built `pgqueue` binary.
pub fn pgqueue() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/it-<hash> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target directory")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target root").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = StdCommand::new(cargo);
        build
            .args(["build", "-q", "-p", "pgqueue-cli", "--bin", "pgqueue"])
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo to build the pgqueue binary");
        assert!(status.success(), "building the pgqueue binary failed");
        let bin = profile_dir.join(format!("pgqueue{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}

/// A `pgqueue run` child process on a fresh database.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    _addr_file: PathBuf,
}

impl Server {
    /// Starts `pgqueue run <url>` on 127.0.0.1:0 and waits until it listens.
    pub async fn start(url: Option<&str>) -> Server {
        Self::start_with(url, "127.0.0.1:0", &[], &[]).await
    }

    /// Starts `pgqueue --http.addr <addr> <global…> run <url> <run…>` and waits until it
    /// listens.
    pub async fn start_with(
        url: Option<&str>,
        addr: &str,
        global: &[&str],
        run: &[&str],
    ) -> Server {
        let addr_file = std::env::temp_dir().join(format!(
            "pgqueue-addr-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut cmd = Command::new(pgqueue());
        cmd.args(["--http.addr", addr])
            .args(global)
            .arg("run")
            .args(run)
            .arg("--http.addr-file")
            .arg(&addr_file);
        cmd.env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        if let Some(url) = url {
            cmd.arg(url);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn pgqueue run");
        let start = Instant::now();
        let addr = loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file)
                && !a.is_empty()
            {
                break a;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "pgqueue run did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Server {
            child,
            addr,
            _addr_file: addr_file,
        }
    }

    /// Starts `pgqueue run` on `db`.
    pub async fn on(db: &TestDatabase) -> Server {
        Self::start(Some(db.url())).await
    }

    /// Runs a client command against this server.
    pub async fn cli(&self, args: &[&str]) -> Output {
        run_cli(&self.addr, args).await
    }

    /// Runs a client command that must succeed, and parses its JSON.
    pub async fn json(&self, args: &[&str]) -> Value {
        let out = self.cli(args).await;
        assert!(
            out.status.success(),
            "pgqueue {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "pgqueue {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// A client of this server.
    pub fn client(&self) -> Client {
        Client::new(&format!("http://{}/api", self.addr)).expect("client")
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: i32) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Runs a client command against the server at `addr`.
pub async fn run_cli(addr: &str, args: &[&str]) -> Output {
    Command::new(pgqueue())
        .args(["--http.addr", addr])
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("run pgqueue")
}

/// A command's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
