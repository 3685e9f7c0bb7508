//! The real HTTP server (`pgqueue_http::serve` on a port-0 listener) on a fresh PostgreSQL
//! database, in this process, with the real client: what the HTTP end-to-end suites drive.

use crate::db::fresh_database;
use pgqueue_app::Manager;
use pgqueue_client::Client;
use pgqueue_http::{HttpConfig, serve};
use pgqueue_ports::StorageClock;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server, its client, and the means to stop it.
pub struct Served {
    /// A client of the server's API.
    pub client: Client,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Send to shut the server down.
    pub stop: Option<oneshot::Sender<()>>,
    /// The server's task; it ends once the server has shut down.
    pub handle: JoinHandle<()>,
    _guard: Box<dyn Any + Send>,
}

/// A fresh application (namespace `e2e`) on a fresh database, and the database's guard.
pub async fn app() -> (Manager, Box<dyn Any + Send>) {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let manager = Manager::new(Arc::new(store))
        .with_namespace("e2e")
        .expect("valid namespace");
    (manager, Box::new(db))
}

/// Serves a fresh application with the default configuration.
pub async fn start() -> Served {
    start_with(HttpConfig::default()).await
}

/// Serves a fresh application with `config`.
pub async fn start_with(config: HttpConfig) -> Served {
    let (manager, guard) = app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let addr = listener.local_addr().expect("bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve(listener, manager, config, async {
        let _ = stopped.await;
    }));
    Served {
        client: Client::new(&format!("http://{addr}/api")).expect("client"),
        addr,
        stop: Some(stop),
        handle,
        _guard: guard,
    }
}
