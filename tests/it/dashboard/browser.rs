//! The harness of the dashboard's browser tests: chromedriver and a headless Chromium session
//! of its own per test, next to a `pgqueue run` on a fresh database; helpers that wait for
//! the page to show something, click, and save screenshots.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use pgqueue_client::{Client as Api, Release};
use pgqueue_domain::{QueueMeta, TaskMeta, TaskView};
use pgqueue_tests::binary::Server;
use pgqueue_tests::db::{TestDatabase, fresh_database};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing may take to show on the page.
const WAIT: Duration = Duration::from_secs(10);
pub(super) const POLL: Duration = Duration::from_millis(50);

/// chromedriver on a free port, in a process group of its own (with the browsers it starts):
/// the whole group is killed when this is dropped, a failed test's unwinding included.
struct Chromedriver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "the dashboard tests need Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}); \
                 {bin} is missing. Install them: apt-get install chromium chromium-driver"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let profile = std::env::temp_dir().join(format!(
            "pgqueue-chromium-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver = Chromedriver {
            child,
            port,
            profile,
        };
        let status = format!("http://127.0.0.1:{port}/status");
        let start = Instant::now();
        let http = pgqueue_client::http_builder()
            .build()
            .expect("an HTTP client");
        loop {
            if let Ok(res) = http.get(&status).send().await
                && let Ok(body) = res.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return driver;
            }
            assert!(
                start.elapsed() < WAIT,
                "chromedriver did not answer on port {port} within {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// A session of headless Chromium, 1400×900.
    async fn browser(&self) -> Client {
        let caps = json!({
            "browserName": "chrome",
            // An alert stays open (and is seen) instead of being dismissed behind our back.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,900", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            },
        });
        let browser = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.as_object().cloned().unwrap())
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start {CHROMIUM}: {e}"));
        // A viewport (and so screenshots) of 1400×900: the window is that plus its frame.
        browser.set_window_size(1400, 900).await.unwrap();
        let inner = browser.execute("return [innerWidth, innerHeight]", vec![]);
        let inner: (u32, u32) = serde_json::from_value(inner.await.unwrap()).unwrap();
        let (w, h) = (2800 - inner.0, 1800 - inner.1);
        browser.set_window_size(w, h).await.unwrap();
        browser
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signalling the process group we created for our own child.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A server on a fresh database, its API client, and a browser. Fields drop in order: the
/// browser's session, the server, the database, chromedriver (and any browser left).
pub(super) struct Dash {
    pub page: Client,
    base: String,
    pub api: Api,
    _server: Server,
    _db: TestDatabase,
    _driver: Chromedriver,
}

impl Dash {
    pub async fn start() -> Dash {
        Self::start_with(false).await.0
    }

    /// A server with `--auth`, and a token of every scope for its namespace (`pgqueue token create`),
    /// which `api` sends; the page has none until it is typed in.
    pub async fn start_authed() -> (Dash, String) {
        let (dash, token) = Self::start_with(true).await;
        (dash, token.expect("a token"))
    }

    async fn start_with(auth: bool) -> (Dash, Option<String>) {
        let ((db, server, token), driver) = tokio::join!(
            async {
                let db = fresh_database().await;
                if !auth {
                    let server = Server::on(&db).await;
                    return (db, server, None);
                }
                let out = tokio::process::Command::new(pgqueue_tests::binary::pgqueue())
                    .args(["token", "create", db.url(), "--namespace", "default"])
                    .args([
                        "--scope",
                        "read,enqueue,consume,admin",
                        "--name",
                        "dashboard",
                    ])
                    .env_remove("DATABASE_URL")
                    .output()
                    .await
                    .unwrap();
                assert!(out.status.success(), "token create: {out:?}");
                let created: Value = serde_json::from_slice(&out.stdout).unwrap();
                let token = created["token"].as_str().unwrap().to_string();
                let server =
                    Server::start_with(Some(db.url()), "127.0.0.1:0", &[], &["--auth"]).await;
                (db, server, Some(token))
            },
            Chromedriver::start()
        );
        let page = driver.browser().await;
        let api = match &token {
            Some(t) => server.client().token(t.clone()),
            None => server.client(),
        };
        let dash = Dash {
            base: format!("http://{}/", server.addr),
            api,
            page,
            _server: server,
            _db: db,
            _driver: driver,
        };
        (dash, token)
    }

    /// Opens `#/…` as a typed-in address (a full page load).
    pub async fn open(&self, route: &str) {
        self.page
            .goto(&format!("{}{route}", self.base))
            .await
            .unwrap();
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let el = self.page.find(Locator::Css(css)).await.ok()?;
        el.text().await.ok().map(|t| t.trim().to_string())
    }

    /// Waits until the element matching `css` reads `want`.
    pub async fn wait_text(&self, css: &str, want: &str) {
        let start = Instant::now();
        loop {
            let seen = self.text(css).await;
            if seen.as_deref() == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "{css} should read {want:?}; after {WAIT:?} the page shows {seen:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `css` matches `n` elements.
    pub async fn wait_count(&self, css: &str, n: usize) {
        let start = Instant::now();
        loop {
            let seen = self.page.find_all(Locator::Css(css)).await.unwrap().len();
            if seen == n {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "{css} should match {n} elements; after {WAIT:?} it matches {seen}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the element matching `css` once it is there.
    pub async fn click(&self, css: &str) {
        let start = Instant::now();
        loop {
            let err = match self.page.find(Locator::Css(css)).await {
                Ok(el) => match el.click().await {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            assert!(
                start.elapsed() < WAIT,
                "cannot click {css} within {WAIT:?}: {err}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the page's event stream is connected (it starts from "now").
    pub async fn wait_live(&self) {
        self.wait_text("#live", "live").await;
    }

    pub async fn queue(&self, name: &str, retries: Option<i64>) {
        let meta = QueueMeta {
            queue: Some(name.into()),
            retries,
            ..Default::default()
        };
        self.api.create_queue(&meta).await.unwrap();
    }

    pub async fn task(&self, queue: &str, payload: Value) -> TaskView {
        let meta = TaskMeta::new(payload);
        let created = self.api.create_task(queue, &meta).await;
        created.unwrap().into_task()
    }

    /// Retains the oldest task of `queue` and releases it, as done or as failed.
    pub async fn work(&self, queue: &str, fail: bool) -> TaskView {
        let t = self.api.retain_task("w", &[queue]).await.unwrap();
        let t = t.unwrap_or_else(|| panic!("a task to retain in {queue}"));
        let release = if fail {
            Release::failure(json!({"error": "smtp: connection refused"}))
        } else {
            Release::success(Some(json!({"sent": true})))
        };
        self.api.release_task(t.id, release).await.unwrap()
    }

    /// Saves a screenshot of the page as `target/dashboard/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.page.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (1400, 900), "{name}: screenshot size");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the browser session cleanly; the rest goes with the drop.
    pub async fn finish(self) {
        self.page.clone().close().await.unwrap();
    }
}

/// `target/dashboard/`: under `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| workspace.join(t))
        .unwrap_or_else(|| workspace.join("target"));
    target.join("dashboard")
}
