//! W2_http: the drain through the REST API of a separate `pgqueue run` process, as a user
//! would deploy it, so the server's own memory can be read while it works.

use super::report::status_mb;
use crate::error::CliError;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A `pgqueue run` child process serving one namespace on a free port, killed on drop; or,
/// with `--server URL`, a server run by someone else, reached through its `P/ns/{namespace}`
/// routes (its memory is then not read).
pub(super) struct Server {
    child: Option<Child>,
    pid: String,
    /// `http://<addr>/api`.
    pub(super) base: String,
    addr_file: PathBuf,
}

impl Server {
    /// The server at `external` (the API's base URL, prefix included) when given, else a
    /// child process of this binary on `url`.
    pub(super) async fn for_bench(
        external: Option<&str>,
        url: &str,
        namespace: &str,
    ) -> Result<Self, CliError> {
        match external {
            None => Self::start(url, namespace).await,
            Some(base) => Ok(Self {
                child: None,
                pid: String::new(),
                base: format!("{}/ns/{namespace}", base.trim_end_matches('/')),
                addr_file: PathBuf::new(),
            }),
        }
    }

    /// Starts this very binary as `pgqueue run <url> --namespace <ns>` on a free port and
    /// waits until it listens.
    pub(super) async fn start(url: &str, namespace: &str) -> Result<Self, CliError> {
        let exe = std::env::current_exe()?;
        let addr_file = std::env::temp_dir().join(format!(
            "pgqueue-bench-{}-{namespace}.addr",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(exe)
            .args([
                "run",
                url,
                "--namespace",
                namespace,
                "--http.addr",
                "127.0.0.1:0",
            ])
            .arg("--http.addr-file")
            .arg(&addr_file)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliError::Usage(format!("cannot start `pgqueue run`: {e}")))?;
        let pid = child
            .id()
            .map(|p| p.to_string())
            .ok_or_else(|| CliError::Usage("`pgqueue run` exited at once".into()))?;
        let mut server = Self {
            child: Some(child),
            pid,
            base: String::new(),
            addr_file,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let written = std::fs::read_to_string(&server.addr_file).unwrap_or_default();
            if let Ok(addr) = written.trim().parse::<std::net::SocketAddr>() {
                server.base = format!("http://{addr}/api");
                return Ok(server);
            }
            if let Some(status) = server
                .child
                .as_mut()
                .map(Child::try_wait)
                .transpose()?
                .flatten()
            {
                return Err(CliError::Usage(format!("`pgqueue run` exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(CliError::Usage(
                    "`pgqueue run` did not start in 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's resident memory now, in MiB.
    pub(super) fn rss_mb(&self) -> f64 {
        if self.child.is_none() {
            return f64::NAN;
        }
        status_mb(&self.pid, "VmRSS")
    }

    /// The server's peak resident memory so far, in MiB.
    pub(super) fn peak_rss_mb(&self) -> f64 {
        if self.child.is_none() {
            return f64::NAN;
        }
        status_mb(&self.pid, "VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = std::fs::remove_file(&self.addr_file);
        }
    }
}

/// Drains `n` tasks of queue `bench` through `base` with `clients` HTTP workers, each doing
/// `PUT /task` then `PATCH /task/{id}` over its own keep-alive connection; returns tasks/s.
pub(super) async fn drain(base: &str, n: usize, clients: usize) -> Result<f64, CliError> {
    run_clients(base, n, clients, "HTTP drain", |client, name| async move {
        let mut done = 0usize;
        while let Some(t) = client.retain_task(&name, &["bench"]).await? {
            let release = pgqueue_client::Release::success(None).by(name.clone());
            client.release_task(t.id, release).await?;
            done += 1;
        }
        Ok(done)
    })
    .await
}

/// Drains `n` tasks of queue `bench` through `base` with `clients` batch HTTP workers, each
/// retaining up to `batch` tasks per request and releasing them in one request; tasks/s.
pub(super) async fn drain_batch(
    base: &str,
    n: usize,
    clients: usize,
    batch: u32,
) -> Result<f64, CliError> {
    run_clients(
        base,
        n,
        clients,
        "HTTP batch drain",
        move |client, name| async move {
            let mut done = 0usize;
            loop {
                let tasks = client
                    .retain_tasks(&name, &["bench"], batch, Duration::ZERO)
                    .await?;
                if tasks.is_empty() {
                    return Ok(done);
                }
                let releases: Vec<pgqueue_client::ReleaseItem> = tasks
                    .iter()
                    .map(|t| pgqueue_client::ReleaseItem {
                        id: t.id,
                        release: pgqueue_client::Release::success(None).by(name.clone()),
                    })
                    .collect();
                let answers = client.release_tasks(&releases).await?;
                if let Some(bad) = answers.iter().find(|a| a.code != 200) {
                    return Err(CliError::Usage(format!(
                        "batch release of task {} refused: {}",
                        bad.id,
                        bad.reason.as_deref().unwrap_or("")
                    )));
                }
                done += answers.len();
            }
        },
    )
    .await
}

/// Runs `clients` HTTP workers (`work(client, name)` answers how many tasks it released)
/// against `base`, each on its own keep-alive connection, and answers tasks/s once all have
/// returned; refused unless they released `n` between them.
async fn run_clients<F, Fut>(
    base: &str,
    n: usize,
    clients: usize,
    what: &str,
    work: F,
) -> Result<f64, CliError>
where
    F: Fn(pgqueue_client::Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<usize, CliError>> + Send + 'static,
{
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..clients {
        let client = pgqueue_client::Client::new(base)?;
        workers.push(tokio::spawn(work(client, format!("http@{w}"))));
    }
    let mut total = 0;
    for w in workers {
        total += w
            .await
            .map_err(|e| CliError::Usage(format!("HTTP worker failed: {e}")))??;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    if total != n {
        return Err(CliError::Usage(format!(
            "{what} released {total} of {n} tasks"
        )));
    }
    Ok(rate)
}
