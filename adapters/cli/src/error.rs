//! The binary's one error type. Every failure is shown once, as `Error: <message>`, with exit
//! code 1; nothing panics, nothing prints a backtrace.

use pgqueue_client::ClientError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server (or the local validation) refused the request.
    #[error("{0}")]
    App(#[from] pgqueue_app::Error),
    /// The server could not be reached or answered an error.
    #[error("{}", client_message(.0))]
    Client(#[from] ClientError),
    /// The database could not be reached or prepared.
    #[error("{0}")]
    Database(#[from] pgqueue_postgres::PgError),
    /// The HTTP server could not be set up.
    #[error("{0}")]
    Http(#[from] pgqueue_http::HttpError),
    /// A bad argument or environment.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a local file or socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Printing JSON failed.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// An API error is shown as the server's reason; a transport error says where it tried.
fn client_message(e: &ClientError) -> String {
    match e {
        ClientError::Api { reason, .. } => reason.clone(),
        ClientError::Transport(err) if err.is_connect() => {
            format!(
                "cannot reach the pgqueue server: {err} (is `pgqueue run` listening on --http.addr?)"
            )
        }
        other => other.to_string(),
    }
}
