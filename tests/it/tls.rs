//! HTTPS end to end (`docs/security.md`): a certificate generated in the test (rcgen), the
//! server on it, a client that trusts it and one that does not, and the real binary serving
//! `--http.tls-cert` to the CLI with `--http.ca-cert`.

use pgqueue_app::Manager;
use pgqueue_client::{Client, ClientError};
use pgqueue_domain::QueueMeta;
use pgqueue_http::{HttpConfig, serve, tls_config};
use pgqueue_memory::MemoryStore;
use pgqueue_tests::binary::{Server, pgqueue, stderr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
struct Cert {
    pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn certificate() -> Cert {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("pgqueue-tls-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Cert {
        pem: made.cert.pem(),
        cert,
        key,
    }
}

#[tokio::test]
async fn https_serves_clients_that_trust_its_certificate() {
    let cert = certificate();
    let manager = Manager::new(Arc::new(MemoryStore::default()));
    let config = HttpConfig {
        tls: Some(tls_config(&cert.cert, &cert.key).unwrap()),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, manager, config, async {
        let _ = stopped.await;
    }));
    let base = format!("https://localhost:{port}/api");
    let trusting = Client::with_ca_cert(&base, cert.pem.as_bytes()).unwrap();
    let q = trusting
        .create_queue(&QueueMeta {
            queue: Some("secure".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(q.name.as_str(), "secure");
    assert_eq!(trusting.list_queues(None, None).await.unwrap().count, 1);

    // The system roots do not know a self-signed certificate.
    let doubting = Client::new(&base).unwrap();
    assert!(matches!(
        doubting.list_queues(None, None).await,
        Err(ClientError::Transport(_))
    ));
    // Plain HTTP to the TLS port gets no answer it can read.
    let plain = Client::new(&format!("http://localhost:{port}/api")).unwrap();
    assert!(plain.list_queues(None, None).await.is_err());
    assert!(
        tls_config(&cert.key, &cert.key).is_err(),
        "a key is not a certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_https_and_the_cli_trusts_a_given_ca() {
    let cert = certificate();
    let (c, k) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    let server = Server::start_with(
        None,
        "127.0.0.1:0",
        &[],
        &["--http.tls-cert", c, "--http.tls-key", k],
    )
    .await;
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let https = format!("https://localhost:{port}");
    let cli = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(pgqueue());
        cmd.args(["--http.addr", &https])
            .args(args)
            .env_remove("DATABASE_URL");
        cmd.output()
    };
    let created = cli(&["--http.ca-cert", c, "create-queue", "secure"])
        .await
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let shown: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(shown["queue"], "secure");
    let untrusted = cli(&["queues"]).await.unwrap();
    assert!(
        !untrusted.status.success(),
        "a certificate nobody vouches for is refused"
    );
    let half = tokio::process::Command::new(pgqueue())
        .args(["run", "--http.tls-cert", c])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(!half.status.success());
    assert!(stderr(&half).contains("go together"), "{}", stderr(&half));
}
