//! `ferry serve`: the snapshot HTTP API (layer 6, above `run` and the `catalog`).
//!
//! ```text
//! POST /api/v1/snapshots ─auth─▶ narrow the named job ─▶ catalog: request queued
//! run queue ─▶ `ferry run --progress json` child ─▶ catalog: snapshot pending → in progress → completed | failed
//! GET …/files ─▶ catalog ─▶ URLs;  GET <url> ─Range─▶ streamed from disk or S3
//! scheduler (each second): due slot ─▶ catalog: slot + request, one transaction ─▶ run queue
//! run over ─▶ notify: mail / signed webhook, retried, each attempt recorded
//! retention (every `purge_every`): expired ─▶ S3 copy, directory, catalog mark (as DELETE does)
//! GET / ─session cookie─▶ the snapshots page (`page/`), a client of the same handlers
//! ```

pub mod config;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod jobs;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod page;
pub(crate) mod retention;
pub(crate) mod routes;
pub(crate) mod runner;
pub mod schedule;
pub(crate) mod state;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use config::ServiceConfig;
use jobs::{Jobs, ServiceJob};
use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Jobs(#[from] jobs::JobsError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
    #[error("cannot read the TLS files {cert} and {key}: {reason}; give PEM files (certificate chain and private key)")]
    Tls { cert: String, key: String, reason: String },
    #[error("cannot listen on {addr}: {source}; is another server using the port?")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot find the ferry binary to run jobs with: {0}")]
    Exe(std::io::Error),
}

/// Loads the configured jobs (and their plugins, once, to learn windows and attachments).
pub fn load_jobs(config: &ServiceConfig, cache_dir: Option<std::path::PathBuf>) -> Result<Jobs, ServeError> {
    let runtime = crate::runtime::Runtime::new(cache_dir).map_err(|e| ServeError::Runtime(e.to_string()))?;
    let mut list = Vec::new();
    for (name, file) in &config.jobs {
        list.push(ServiceJob::load(name, file, &runtime)?);
    }
    Ok(Jobs { list })
}

/// Serves until the process is stopped. `ready` gets the address once listening.
pub async fn serve(mut config: ServiceConfig, jobs: Jobs, ready: impl FnOnce(SocketAddr, bool) + Send) -> Result<(), ServeError> {
    config.check_listen()?;
    config.load_secrets()?;
    let exe = std::env::current_exe().map_err(ServeError::Exe)?;
    let (finished_tx, finished_rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = runner::start(config.output_dir.clone(), config.max_concurrent_runs, exe.clone(), finished_tx)?;
    let tls = config.tls.clone();
    let (listen, header_timeout) = (config.listen, config.header_read_timeout);
    let state = AppState::new(config, jobs, runner, exe, schedule::clock::service_clock())?;
    notify::start(state.clone(), finished_rx);
    schedule::start(state.clone());
    retention::start(state.clone());
    let app = routes::router(state).into_make_service();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let secure = tls.is_some();
    let announce = async move {
        if let Some(addr) = h.listening().await {
            ready(addr, secure);
        }
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|source| ServeError::Listen { addr: listen, source })?;
    listener.set_nonblocking(true).map_err(|source| ServeError::Listen { addr: listen, source })?;
    let served = match tls {
        Some((cert, key)) => {
            let config = rustls_config(&cert, &key)?;
            let mut server = axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)))
                .map_err(|source| ServeError::Listen { addr: listen, source })?;
            limit_headers(server.http_builder(), header_timeout);
            let serving = server.handle(handle).serve(app);
            tokio::join!(serving, announce).0
        }
        None => {
            let mut server = axum_server::from_tcp(listener).map_err(|source| ServeError::Listen { addr: listen, source })?;
            limit_headers(server.http_builder(), header_timeout);
            let serving = server.handle(handle).serve(app);
            tokio::join!(serving, announce).0
        }
    };
    served.map_err(|source| ServeError::Listen { addr: listen, source })
}

/// A client gets `timeout` to send its request headers (against slow-header clients).
fn limit_headers(builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>, timeout: Duration) {
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(timeout);
}

/// rustls on ring (the provider already in the tree; aws-lc would be a C build).
fn rustls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<rustls::ServerConfig, ServeError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |reason: String| ServeError::Tls { cert: cert.display().to_string(), key: key.display().to_string(), reason };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| err(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
