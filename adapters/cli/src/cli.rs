//! The command line: every command and flag of `docs/cli.md`, names exact.

mod parse;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
pub use parse::{Setting, parse_duration, parse_json, parse_max_running, parse_rate, parse_time};
use pgqueue_domain::Duration;
use std::path::PathBuf;

/// pgqueue: a PostgreSQL-backed task queue. `pgqueue run` serves the REST API; every other
/// command is a client of a running server.
#[derive(Debug, Parser)]
#[command(name = "pgqueue", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  pgqueue run postgres://postgres@127.0.0.1:5432/test\n  pgqueue create-queue emails --retries 5\n  pgqueue tasks --status=new"
)]
pub struct Cli {
    /// Log (server) or print (client) debugging details.
    #[arg(long, env = "PGQUEUE_DEBUG", global = true)]
    pub debug: bool,
    /// Address the server listens on and the client connects to (a bare `:8080` means localhost).
    #[arg(
        long = "http.addr",
        env = "PGQUEUE_ADDR",
        default_value = "localhost:8080",
        global = true
    )]
    pub http_addr: String,
    /// Path prefix of every API route.
    #[arg(
        long = "http.prefix",
        env = "PGQUEUE_HTTP_PREFIX",
        default_value = "/api",
        global = true
    )]
    pub http_prefix: String,
    /// The namespace: the one `run` serves (default `default`); for client commands, the one
    /// they act on, through the server's `P/ns/{namespace}/…` routes; for `token create`,
    /// those the token reaches (repeatable, `*` for all).
    #[arg(long, env = "PGQUEUE_NAMESPACE", global = true, value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// The API token client commands send (`Authorization: Bearer`), for a server run with
    /// `--auth`.
    #[arg(long, env = "PGQUEUE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// How client commands print: `table` (the default on a terminal: aligned, with human
    /// durations and relative times) or `json` (the default otherwise: the API's JSON).
    #[arg(long, env = "PGQUEUE_OUTPUT", global = true, value_parser = ["table", "json"])]
    pub output: Option<String>,
    /// A PEM certificate (a private CA, or a self-signed server's) client commands trust for
    /// `https://` beside the system's roots.
    #[arg(long = "http.ca-cert", env = "PGQUEUE_HTTP_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--offset` and `--limit` of list commands.
#[derive(Debug, Args, Clone, Copy)]
pub struct PageArgs {
    /// Items to skip.
    #[arg(long)]
    pub offset: Option<u64>,
    /// Items to return (at most 100).
    #[arg(long)]
    pub limit: Option<u64>,
}

/// A queue's policy flags.
#[derive(Debug, Args, Clone, Default)]
pub struct QueueArgs {
    /// How long a task may live (e.g. `1h`, `90s`).
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// Maximum number of attempts (0 to 1000).
    #[arg(long)]
    pub retries: Option<i64>,
    /// Base of the exponential backoff (the k-th failure waits retry_delay × k²).
    #[arg(long = "retry-delay", value_parser = parse_duration)]
    pub retry_delay: Option<Duration>,
    /// How long one attempt may hold a task without a heartbeat.
    #[arg(long, value_parser = parse_duration)]
    pub lease: Option<Duration>,
    /// At most this many of the queue's tasks running at once, across every server and
    /// worker (1 to 1000000); `none` removes the limit.
    #[arg(long = "max-running", value_parser = parse_max_running, value_name = "N|none")]
    pub max_running: Option<Setting<i64>>,
    /// At most this many retains per second, `/m` per minute or `/h` per hour (e.g. `100/s`,
    /// `30/m`; a bare number is per second); `none` removes the limit.
    #[arg(long, value_parser = parse_rate, value_name = "N/s|N/m|N/h|none")]
    pub rate: Option<Setting<f64>>,
    /// The most retains at once after a quiet spell (default 1); with --rate.
    #[arg(long, requires = "rate")]
    pub burst: Option<i64>,
}

/// A ticker's flags.
#[derive(Debug, Args, Clone, Default)]
pub struct TickerArgs {
    /// Time between maturities (e.g. `1m`, `24h`); not with --cron.
    #[arg(long, value_parser = parse_duration, conflicts_with = "cron")]
    pub interval: Option<Duration>,
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 (seconds
    /// first), or @yearly, @monthly, @weekly, @daily, @hourly (e.g. `"30 2 * * *"`).
    #[arg(long)]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (default UTC), e.g. `Europe/Berlin`.
    #[arg(long)]
    pub timezone: Option<String>,
    /// JSON payload delivered with every maturity.
    #[arg(long, value_parser = parse_json)]
    pub payload: Option<serde_json::Value>,
    /// Turn every maturity into a task on this queue instead of delivering it.
    #[arg(long)]
    pub queue: Option<String>,
    /// The priority of the tasks it creates (−100 to 100).
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i64>,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List namespaces that have a queue or a ticker.
    Namespaces,
    /// List queues, ordered by name.  Example: pgqueue queues --limit 10
    Queues(PageArgs),
    /// Show one queue.  Example: pgqueue queue emails
    Queue {
        /// Queue name.
        name: String,
    },
    /// Create a queue.  Example: pgqueue create-queue emails --ttl 2h --retries 5 --retry-delay 30s
    CreateQueue {
        /// Queue name.
        name: String,
        #[command(flatten)]
        policy: QueueArgs,
    },
    /// Change a queue's policy.  Example: pgqueue update-queue emails --retries 10
    UpdateQueue {
        /// Queue name.
        name: String,
        #[command(flatten)]
        policy: QueueArgs,
    },
    /// Delete a queue and all its tasks.  Example: pgqueue delete-queue emails
    DeleteQueue {
        /// Queue name.
        name: String,
    },
    /// List tasks, ordered by id.  Example: pgqueue tasks --queue emails --status=new
    Tasks {
        /// Only this queue's tasks.
        #[arg(long)]
        queue: Option<String>,
        /// Only tasks in this status: new, retained, retry, released, failed, expired.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one task.  Example: pgqueue task 42
    Task {
        /// Task id.
        id: i64,
    },
    /// Create a task.  Example: pgqueue create-task emails --payload '{"to":"ada@example.com"}'
    CreateTask {
        /// Queue name.
        queue: String,
        /// JSON payload (any JSON value).
        #[arg(long, value_parser = parse_json)]
        payload: serde_json::Value,
        /// Not to be retained before this time (RFC 3339).
        #[arg(long = "delayed-at", value_parser = parse_time)]
        delayed_at: Option<DateTime<Utc>>,
        /// −100 to 100 (default 0); higher runs first.
        #[arg(long, allow_hyphen_values = true)]
        priority: Option<i64>,
        /// While a task with this key is waiting or running, answer it instead of creating
        /// another.
        #[arg(long = "unique-key")]
        unique_key: Option<String>,
    },
    /// Retain the oldest available task of the given queues (none: any queue); prints null when
    /// none is available.  Example: pgqueue retain-task emails sms --worker host@1
    RetainTask {
        /// Queues to take from (none: every queue).
        queues: Vec<String>,
        /// Who retains it.
        #[arg(long)]
        worker: String,
    },
    /// Release a retained task: success (optionally with --result) or failure with --error.
    /// Example: pgqueue complete-task 42 --result '{"sent":true}'
    CompleteTask {
        /// Task id.
        id: i64,
        /// Fail the attempt with this JSON error payload.
        #[arg(long, value_parser = parse_json, conflicts_with = "result")]
        error: Option<serde_json::Value>,
        /// Succeed with this JSON result.
        #[arg(long, value_parser = parse_json)]
        result: Option<serde_json::Value>,
        /// Refuse the release unless this worker holds the task.
        #[arg(long)]
        worker: Option<String>,
    },
    /// List tickers, ordered by name.  Example: pgqueue tickers
    Tickers(PageArgs),
    /// Show one ticker.  Example: pgqueue ticker nightly
    Ticker {
        /// Ticker name.
        name: String,
    },
    /// Create a ticker.  Example: pgqueue create-ticker nightly --cron "0 3 * * *" --timezone Europe/Berlin --queue reports
    CreateTicker {
        /// Ticker name.
        name: String,
        #[command(flatten)]
        fields: TickerArgs,
    },
    /// Change a ticker.  Example: pgqueue update-ticker nightly --interval 12h
    UpdateTicker {
        /// Ticker name.
        name: String,
        #[command(flatten)]
        fields: TickerArgs,
    },
    /// A ticker's next maturities.  Example: pgqueue ticker-schedule nightly -n 10
    TickerSchedule {
        /// Ticker name.
        name: String,
        /// How many (1 to 100).
        #[arg(short = 'n', long = "count", default_value_t = 5)]
        n: u32,
        /// Strictly after this RFC 3339 time (default: now).
        #[arg(long, value_parser = parse_time)]
        from: Option<DateTime<Utc>>,
    },
    /// Delete a ticker.  Example: pgqueue delete-ticker nightly
    DeleteTicker {
        /// Ticker name.
        name: String,
    },
    /// Cancel a task: a waiting one ends cancelled now, a running one is asked to stop.
    /// Example: pgqueue cancel-task 42
    CancelTask {
        /// Task id.
        id: i64,
    },
    /// Retry a failed, expired or cancelled task.  Example: pgqueue retry-task 42
    RetryTask {
        /// Task id.
        id: i64,
    },
    /// Retry a queue's ended tasks (redrive).  Example: pgqueue retry-tasks emails --status failed --status expired
    RetryTasks {
        /// Queue name.
        queue: String,
        /// Statuses to retry: failed (default), expired, cancelled; repeatable.
        #[arg(long)]
        status: Vec<String>,
        /// At most this many (default and cap 10,000).
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Delete a task no worker holds.  Example: pgqueue delete-task 42
    DeleteTask {
        /// Task id.
        id: i64,
    },
    /// Delete the tasks in some statuses (never retained ones).  Example: pgqueue purge-tasks --status failed --queue emails
    PurgeTasks {
        /// Statuses to delete; required, repeatable.
        #[arg(long, required = true)]
        status: Vec<String>,
        /// Only this queue's tasks.
        #[arg(long)]
        queue: Option<String>,
    },
    /// Pause a queue: no task of it is retained until resumed.  Example: pgqueue pause-queue emails
    PauseQueue {
        /// Queue name.
        name: String,
    },
    /// Resume a paused queue.  Example: pgqueue resume-queue emails
    ResumeQueue {
        /// Queue name.
        name: String,
    },
    /// Pause a ticker: it does not fire until resumed.  Example: pgqueue pause-ticker nightly
    PauseTicker {
        /// Ticker name.
        name: String,
    },
    /// Resume a paused ticker.  Example: pgqueue resume-ticker nightly
    ResumeTicker {
        /// Ticker name.
        name: String,
    },
    /// Stream matured tickers as `[<event>] <data>` lines; reconnects; Ctrl-C stops.
    /// Example: pgqueue next-ticker
    NextTicker,
    /// Measure throughput and latency against a database.  Example: pgqueue bench --workload W2
    Bench(crate::bench::BenchArgs),
    /// Print a shell completion script.  Example: pgqueue completions bash > /etc/bash_completion.d/pgqueue
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run the server.  Example: pgqueue run postgres://postgres@127.0.0.1:5432/test --namespace myapp
    Run(RunArgs),
    /// Apply the pending migrations and exit; with --status, list each as `applied NAME` or
    /// `pending NAME` and change nothing.  Example: pgqueue migrate postgres://…/db --status
    Migrate {
        /// PostgreSQL URL.
        #[arg(env = "DATABASE_URL")]
        url: Option<String>,
        /// Only show which migrations are applied and which pending.
        #[arg(long)]
        status: bool,
        /// Schema holding pgqueue's tables.
        #[arg(long = "pg.schema", env = "PGQUEUE_PG_SCHEMA")]
        pg_schema: Option<String>,
    },
    /// Create, list and revoke API tokens, directly on the database.
    /// Example: pgqueue token create postgres://…/db --namespace billing --scope consume
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `pgqueue token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its SHA-256 is stored). Reaches the namespaces
    /// of --namespace (repeatable, `*` for all).
    /// Example: pgqueue token create postgres://…/db --namespace billing --scope consume --scope read --expires 90d
    Create {
        /// PostgreSQL URL.
        #[arg(env = "DATABASE_URL")]
        url: Option<String>,
        /// A scope it grants: read, enqueue, consume, admin (repeatable).
        #[arg(long = "scope", required = true, value_delimiter = ',')]
        scopes: Vec<String>,
        /// It stops working after this long (e.g. `90d` is not a Go duration: use `2160h`).
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
        /// A name to recognise it by in `token list`.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their text).  Example: pgqueue token list postgres://…/db
    List {
        /// PostgreSQL URL.
        #[arg(env = "DATABASE_URL")]
        url: Option<String>,
    },
    /// Revoke a token: every server refuses it within seconds.  Example: pgqueue token revoke postgres://…/db 7
    Revoke {
        /// `[URL] ID`: the PostgreSQL URL (else DATABASE_URL) and the token's id (from
        /// `token list`).
        #[arg(num_args = 1..=2, required = true, value_name = "[URL] ID")]
        args: Vec<String>,
    },
}

/// `pgqueue run` flags.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// PostgreSQL URL; with none (and no DATABASE_URL) tasks are kept in memory.
    #[arg(env = "DATABASE_URL")]
    pub url: Option<String>,
    /// Refuse to start while migrations are pending instead of applying them (deployments
    /// that run `pgqueue migrate` separately, with a role that may change the schema).
    #[arg(long = "no-migrate", env = "PGQUEUE_NO_MIGRATE")]
    pub no_migrate: bool,
    /// `text` (default) or `json`: one JSON object per log line, for log collectors.
    #[arg(long = "log-format", env = "PGQUEUE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Require an API token on every route (`pgqueue token create`; `docs/security.md`).
    /// Needs a database URL.
    #[arg(long, env = "PGQUEUE_AUTH")]
    pub auth: bool,
    /// An origin whose browsers may call the API (repeatable), e.g. `https://ops.example.com`.
    #[arg(
        long = "http.cors-origin",
        env = "PGQUEUE_HTTP_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with --http.tls-key).
    #[arg(long = "http.tls-cert", env = "PGQUEUE_HTTP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --http.tls-cert.
    #[arg(long = "http.tls-key", env = "PGQUEUE_HTTP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Database user, overriding the URL's.
    #[arg(long = "pg.user", env = "PGQUEUE_PG_USER")]
    pub pg_user: Option<String>,
    /// Database password, overriding the URL's.
    #[arg(
        long = "pg.password",
        env = "PGQUEUE_PG_PASSWORD",
        hide_env_values = true
    )]
    pub pg_password: Option<String>,
    /// Schema holding pgqueue's tables (created if missing).
    #[arg(long = "pg.schema", env = "PGQUEUE_PG_SCHEMA")]
    pub pg_schema: Option<String>,
    /// Keep statements prepared on pooled connections. `--pg.prepared=false` for a pooler
    /// that cannot carry them across transactions (PgBouncer in transaction mode before
    /// 1.21): each statement then runs in its own transaction, parsed and closed there.
    #[arg(long = "pg.prepared", env = "PGQUEUE_PG_PREPARED", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pg_prepared: bool,
    /// A direct PostgreSQL URL (not through a transaction-mode pooler) for LISTEN and the
    /// migrations, while the pool goes through the URL. Without it, a LISTEN that hears no
    /// NOTIFY within 1s makes the server poll every 250 ms.
    #[arg(long = "pg.listen-url", env = "PGQUEUE_PG_LISTEN_URL")]
    pub pg_listen_url: Option<String>,
    /// Pooled database connections.
    #[arg(
        long = "pg.pool-size",
        env = "PGQUEUE_PG_POOL_SIZE",
        default_value_t = 10
    )]
    pub pool_size: u32,
    /// How often ended tasks past their retention are deleted.
    #[arg(long = "cleanup-period", env = "PGQUEUE_CLEANUP_PERIOD", default_value = "1h", value_parser = parse_duration)]
    pub cleanup_period: Duration,
    /// How long task events are kept for event-stream readers that reconnect
    /// (`GET /api/events` with `Last-Event-ID`).
    #[arg(long = "events.retention", env = "PGQUEUE_EVENTS_RETENTION", default_value = "1h", value_parser = parse_duration)]
    pub events_retention: Duration,
    /// Serve the web dashboard at `/` (`--http.ui=false` turns it off).
    #[arg(long = "http.ui", env = "PGQUEUE_HTTP_UI", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub http_ui: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long = "http.body-limit", env = "PGQUEUE_HTTP_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: u64,
    /// How long a request may take to send its headers before the connection is closed.
    #[arg(long = "http.header-timeout", env = "PGQUEUE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a request may take to send its body before it is answered 408.
    #[arg(long = "http.body-timeout", env = "PGQUEUE_HTTP_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// How long a shutdown (SIGINT/SIGTERM) waits for requests in flight before it closes the
    /// connections still open and exits.
    #[arg(long = "shutdown-timeout", env = "PGQUEUE_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Write the bound address to this file once listening (for scripts and tests on port 0).
    #[arg(long = "http.addr-file", hide = true)]
    pub addr_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_are_validated_locally() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1000").unwrap(), Duration::from_nanos(1000));
        assert!(parse_duration("soon").is_err());
        assert!(parse_json("{oops").unwrap_err().starts_with("invalid JSON"));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-01-02T15:04:05Z").is_ok());
    }

    /// Every flag read from the environment, with its variable, from every command.
    fn env_flags(cmd: &clap::Command, out: &mut Vec<(String, String)>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                let flag = match arg.get_long() {
                    Some(long) => format!("--{long}"),
                    None => arg.get_id().to_string().to_uppercase(),
                };
                out.push((flag, env.to_string_lossy().into_owned()));
            }
        }
        for sub in cmd.get_subcommands() {
            env_flags(sub, out);
        }
    }

    /// The docs name each flag's variable in a table row (`| `--flag …` | `VAR` | …`, a
    /// row's flags and variables in the same order) or in prose; both must be the code's.
    #[test]
    fn environment_variables_are_the_documented_ones() {
        let cli_md = include_str!("../../../docs/cli.md");
        let docs = [cli_md, include_str!("../../../docs/deploy.md")].concat();
        let mut flags = Vec::new();
        env_flags(&Cli::command(), &mut flags);
        assert!(flags.len() > 20, "{flags:?}");
        let mut problems: Vec<String> = flags
            .iter()
            .filter(|(_, env)| !docs.contains(env.as_str()))
            .map(|(flag, env)| format!("{flag}'s {env} is not documented"))
            .collect();
        let quoted = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|w| w.split_whitespace().next().map(str::to_string))
                .collect()
        };
        let mut checked = 0;
        for row in cli_md.lines().filter(|l| l.starts_with("| `--")) {
            let cells: Vec<&str> = row.split('|').collect();
            let (named, vars) = (quoted(cells[1]), quoted(cells[2]));
            let vars: Vec<&String> = vars.iter().filter(|v| v.starts_with("PGQUEUE_")).collect();
            if vars.is_empty() {
                continue;
            }
            if named.len() != vars.len() {
                problems.push(format!("row {row:?}: {named:?} against {vars:?}"));
                continue;
            }
            for (flag, var) in named.iter().zip(vars) {
                let flag = flag.split(['=', '[']).next().unwrap_or(flag);
                let code: Vec<&String> = flags
                    .iter()
                    .filter(|(f, _)| f == flag)
                    .map(|(_, e)| e)
                    .collect();
                if code.is_empty() || code.iter().any(|e| *e != var) {
                    problems.push(format!("{flag}: docs {var}, code {code:?}"));
                }
                checked += 1;
            }
        }
        assert_eq!(problems, Vec::<String>::new());
        assert!(checked > 15, "only {checked} documented variables checked");
    }

    #[test]
    fn flags_have_their_documented_names() {
        let cli = Cli::try_parse_from([
            "pgqueue",
            "--http.addr",
            ":9000",
            "--http.prefix",
            "/v1",
            "tasks",
            "--status=new",
            "--queue",
            "q",
            "--limit",
            "5",
        ])
        .unwrap();
        assert_eq!(
            (cli.http_addr.as_str(), cli.http_prefix.as_str()),
            (":9000", "/v1")
        );
        assert!(
            matches!(cli.command, Command::Tasks { status: Some(ref s), page: PageArgs { limit: Some(5), .. }, .. } if s == "new")
        );
        let run = Cli::try_parse_from([
            "pgqueue",
            "run",
            "postgres://x/y",
            "--namespace",
            "ns",
            "--pg.schema",
            "q",
        ])
        .unwrap();
        assert!(matches!(
            run.command,
            Command::Run(RunArgs {
                url: Some(_),
                pg_schema: Some(_),
                ..
            })
        ));
        assert!(
            Cli::try_parse_from(["pgqueue", "retain-task", "a", "b"]).is_err(),
            "--worker is required"
        );
        assert!(Cli::try_parse_from(["pgqueue", "create-task", "q", "--payload", "{bad"]).is_err());
        assert!(
            Cli::try_parse_from([
                "pgqueue",
                "complete-task",
                "1",
                "--error",
                "1",
                "--result",
                "2"
            ])
            .is_err()
        );
    }
}
