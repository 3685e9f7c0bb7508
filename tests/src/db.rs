//! The test database: one PostgreSQL server per test process, one fresh database per test.
//!
//! Where the server comes from, in order:
//! 1. `DATABASE_URL`, if set (its database is only used to create and drop test databases);
//! 2. a throwaway cluster from local PostgreSQL binaries (`PG_BIN`, `PATH`, or the highest
//!    `/usr/lib/postgresql/*/bin`), started once per test process on a free port with
//!    `fsync=off`, as the `postgres` OS user when running as root (postgres refuses root), and
//!    killed with the test process (`PR_SET_PDEATHSIG`);
//! 3. a container, when built with feature `testcontainers` and a Docker engine answers;
//! 4. otherwise every test panics with a message saying how to provide one: tests never skip.
//!
//! Each test gets its own database (`t_<pid>_<n>`), dropped `WITH (FORCE)` when the
//! [`TestDatabase`] is dropped, because maintenance methods (`rescue_leases`, `clean_up`,
//! `fire_queue_tickers`) cover every namespace and would see other tests' data.

use pgqueue_ports::Clock;
use pgqueue_postgres::{PgOptions, PgStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
}

impl TestDatabase {
    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`t_<pid>_<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A store on this database with a small pool (4) and the given clock.
    pub async fn store(&self, clock: Arc<dyn Clock>) -> PgStore {
        self.store_with(PgOptions {
            pool_size: 4,
            clock,
            ..PgOptions::default()
        })
        .await
    }

    /// A plain connection to this database, for checks in SQL (its driver runs on a task of
    /// its own and ends with the client).
    pub async fn client(&self) -> tokio_postgres::Client {
        match tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client
            }
            Err(e) => panic!("cannot connect to the test database: {e}"),
        }
    }

    /// A connection left inside `BEGIN; SELECT txid_current();`: while it lives, the cleanup
    /// horizon cannot move (vacuum removes nothing that died after it began).
    pub async fn hold_horizon(&self) -> tokio_postgres::Client {
        let holder = self.client().await;
        if let Err(e) = holder.batch_execute("BEGIN; SELECT txid_current();").await {
            panic!("cannot hold the cleanup horizon: {e}");
        }
        holder
    }

    /// A store on this database with explicit options.
    pub async fn store_with(&self, options: PgOptions) -> PgStore {
        match PgStore::connect(&self.url, options).await {
            Ok(store) => store,
            Err(e) => panic!("cannot connect a PgStore to the test database: {e}"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime (which cannot block on another future) or outside
        // one: a thread with its own runtime works in both cases.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async { execute(&admin, &sql).await })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("warning: cannot drop test database {}: {e}", self.name);
        }
    }
}

/// A fresh, empty database on the test server (migrations are applied by `PgStore::connect`).
pub async fn fresh_database() -> TestDatabase {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let admin = server_url().to_string();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = execute(&admin, &format!("CREATE DATABASE {name}")).await {
        panic!("cannot create test database {name} on {admin}: {e}");
    }
    let url = with_database(&admin, &name);
    TestDatabase { name, url, admin }
}

/// Runs one statement on its own short-lived connection.
async fn execute(url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await.map_err(|e| e.to_string());
    drop(client);
    let _ = driver.await;
    result
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        Err(_) => format!("{url} dbname={name}"),
    }
}

/// The server's admin URL, found (or started) once per test process.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            sweep_stale_databases(&url);
            return url;
        }
        if let Some(bin) = find_pg_bin() {
            match local::start(&bin) {
                Ok(url) => return url,
                Err(e) => eprintln!(
                    "cannot start a local PostgreSQL from {}: {e}",
                    bin.display()
                ),
            }
        }
        #[cfg(feature = "testcontainers")]
        match container::start() {
            Ok(url) => return url,
            Err(e) => eprintln!("cannot start a PostgreSQL container: {e}"),
        }
        panic!(
            "no PostgreSQL for the tests: set DATABASE_URL (e.g. \
             postgres://postgres@127.0.0.1:5432/postgres), or install the PostgreSQL server \
             binaries (PG_BIN, PATH or /usr/lib/postgresql/*/bin), or build with \
             `--features testcontainers` where a Docker engine runs"
        )
    })
}

/// Drops test databases left behind by test processes that no longer exist.
fn sweep_stale_databases(admin: &str) {
    let admin = admin.to_string();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .ok()?;
            let driver = tokio::spawn(connection);
            let rows = client
                .query(
                    "SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9]+_[0-9]+$'",
                    &[],
                )
                .await
                .ok()?;
            for row in rows {
                let name: String = row.get(0);
                let pid = name.split('_').nth(1).unwrap_or_default();
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
            drop(client);
            let _ = driver.await;
            Some(())
        })
    })
    .join();
}

/// The directory holding `initdb` and `postgres`.
fn find_pg_bin() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from)
        && has(&dir)
    {
        return Some(dir);
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| has(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A throwaway cluster from local binaries.
mod local {
    use super::Duration;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    /// Prefix of data directories, with the owning pid after it.
    const PREFIX: &str = "pgqueue-test-pg-";

    /// The uid/gid to run PostgreSQL as: `postgres` when we are root.
    fn run_as() -> Result<Option<(u32, u32)>, String> {
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            return Ok(None);
        }
        let name = std::ffi::CString::new("postgres").map_err(|e| e.to_string())?;
        // SAFETY: `name` is a valid C string; the returned record is read before any other
        // call that could overwrite it.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if pw.is_null() {
            return Err("running as root and there is no `postgres` user to run the server".into());
        }
        // SAFETY: checked non-null above.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Ok(Some((uid, gid)))
    }

    fn command(program: PathBuf, user: Option<(u32, u32)>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(std::env::temp_dir());
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn chown(path: &Path, user: Option<(u32, u32)>) -> Result<(), String> {
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Removes data directories of test processes that no longer exist.
    fn sweep(tmp: &Path) {
        let Ok(entries) = std::fs::read_dir(tmp) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix(PREFIX)
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    fn free_port() -> Result<u16, String> {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
    }

    /// Initialises and starts a cluster; returns its admin URL once it accepts connections.
    pub(super) fn start(bin: &Path) -> Result<String, String> {
        let user = run_as()?;
        let tmp = std::env::temp_dir();
        sweep(&tmp);
        let root = tmp.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        chown(&root, user)?;
        let data = root.join("data");
        let out = command(bin.join("initdb"), user)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let postgres = bin.join("postgres");
        let socket_dir = root.clone();
        // The server is spawned from a thread that never exits: PR_SET_PDEATHSIG fires when
        // the spawning *thread* dies, and statics are never dropped, so this is what ties the
        // server's life to the test process.
        std::thread::spawn(move || {
            let mut cmd = command(postgres, user);
            cmd.arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", socket_dir.display()))
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(()));
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("postgres: {e}")));
                }
            }
            loop {
                std::thread::park();
            }
        });
        rx.recv().map_err(|e| e.to_string())??;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready =
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && probe(&url).is_ok();
            if ready {
                return Ok(url);
            }
            if std::time::Instant::now() > deadline {
                return Err("the local PostgreSQL did not accept connections within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn probe(url: &str) -> Result<(), String> {
        let url = url.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(super::execute(&url, "SELECT 1"))
        })
        .join()
        .map_err(|_| "probe panicked".to_string())?
    }
}

/// A PostgreSQL container (feature `testcontainers`).
#[cfg(feature = "testcontainers")]
mod container {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    /// Starts a container that lives as long as the test process; returns its admin URL.
    pub(super) fn start() -> Result<String, String> {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let url = rt.block_on(async {
                let container = Postgres::default()
                    .start()
                    .await
                    .map_err(|e| e.to_string())?;
                let port = container
                    .get_host_port_ipv4(5432)
                    .await
                    .map_err(|e| e.to_string())?;
                // Never dropped: the container lives until the process ends (and the
                // testcontainers reaper removes it).
                std::mem::forget(container);
                Ok::<_, String>(format!(
                    "postgres://postgres:postgres@127.0.0.1:{port}/postgres"
                ))
            })?;
            // Keep the runtime alive for the container's background tasks.
            std::mem::forget(rt);
            Ok(url)
        })
        .join()
        .map_err(|_| "container start panicked".to_string())?
    }
}
