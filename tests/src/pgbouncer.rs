//! A real PgBouncer in transaction mode in front of the test PostgreSQL server.
//!
//! One `pgbouncer` per test process, started on first use on a free port, as `nobody` when
//! running as root (PgBouncer refuses root), and killed with the test process
//! (`PR_SET_PDEATHSIG`). Its `*` database entry forwards every database name to the test
//! server, so [`url()`] turns any [`TestDatabase`] into a URL through the pooler. The server
//! pool per database is small (4) so that the clients' transactions really are spread over
//! shared server connections: anything that leaves session state behind (a prepared
//! statement, a LISTEN, a lock) shows up as another client's failure. When `pgbouncer` is
//! not installed the tests fail and say how to install it; they never skip.

use crate::db::TestDatabase;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `db`'s URL with host and port replaced by the pooler's.
pub fn url(db: &TestDatabase) -> String {
    let port = *PORT.get_or_init(|| match start(db.url()) {
        Ok(port) => port,
        Err(e) => panic!("cannot start pgbouncer for the pooling tests: {e}"),
    });
    let mut u = url::Url::parse(db.url()).expect("test database URL");
    u.set_host(Some("127.0.0.1")).expect("host");
    u.set_port(Some(port)).expect("port");
    u.to_string()
}

static PORT: OnceLock<u16> = OnceLock::new();

fn binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no `pgbouncer` on PATH or in /usr/sbin: install Debian's package \
             (`apt-get install pgbouncer`; `.ci/run` does)"
                .to_string()
        })
}

/// Writes the configuration and starts the pooler; answers its port once it accepts.
fn start(any_test_url: &str) -> Result<u16, String> {
    let bin = binary()?;
    let server = url::Url::parse(any_test_url).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("pgqueue-test-pgbouncer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    // `nobody`/`nogroup` on Debian.
    let user = root.then_some((65534u32, 65534u32));
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let user_name = match server.username() {
        "" => "postgres",
        u => u,
    };
    let mut target = format!(
        "host={} port={} user={user_name}",
        server.host_str().unwrap_or("127.0.0.1"),
        server.port().unwrap_or(5432)
    );
    if let Some(p) = server.password() {
        target.push_str(&format!(" password={p}"));
    }
    let ini = dir.join("pgbouncer.ini");
    let config = format!(
        "[databases]\n* = {target}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
         unix_socket_dir =\nauth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
         default_pool_size = 4\nmax_client_conn = 1000\nlogfile = {log}\npidfile = {pid}\n",
        users = dir.join("users.txt").display(),
        log = dir.join("pgbouncer.log").display(),
        pid = dir.join("pgbouncer.pid").display(),
    );
    std::fs::write(&ini, config).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("users.txt"), format!("\"{user_name}\" \"\"\n"))
        .map_err(|e| e.to_string())?;
    spawn(bin, ini.clone(), user);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "pgbouncer did not listen on {port} within 10s; its log: {}",
                std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(port)
}

/// Spawns from a thread that never exits: PR_SET_PDEATHSIG fires when the spawning thread
/// dies, so this ties the pooler's life to the test process.
fn spawn(bin: PathBuf, ini: PathBuf, user: Option<(u32, u32)>) {
    std::thread::spawn(move || {
        let mut cmd = Command::new(bin);
        cmd.arg(&ini)
            .current_dir(ini.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        if let Ok(mut child) = cmd.spawn() {
            let _ = child.wait();
        }
        loop {
            std::thread::park();
        }
    });
}
