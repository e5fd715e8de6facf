//! The Ignition API reference backend: configuration, start-up and the router. The binary
//! and the integration tests build the service through [`prepare`] and [`router`].

pub mod auth;
pub mod blobs;
pub mod config;
pub mod db;
pub mod error;
pub mod middleware;
pub mod routes;
pub mod state;
pub mod storage;

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

pub use crate::config::Config;
pub use crate::state::AppState;

/// The blob routes under `prefix` (mounted twice: `/api/blobs` and `/blobs`).
fn blob_routes(router: Router<AppState>, prefix: &str) -> Router<AppState> {
    router
        .route(prefix, get(blobs::list))
        .route(&format!("{prefix}/"), get(blobs::list))
        .route(
            &format!("{prefix}/upload"),
            post(blobs::upload).layer(DefaultBodyLimit::max(blobs::MAX_UPLOAD_BYTES)),
        )
        .route(&format!("{prefix}/upload-url"), post(blobs::upload_url))
        .route(&format!("{prefix}/usage"), get(blobs::usage))
        .route(
            &format!("{prefix}/{{id}}"),
            get(blobs::download).delete(blobs::delete),
        )
        .route(&format!("{prefix}/{{id}}/info"), get(blobs::info))
        .route(
            &format!("{prefix}/{{id}}/download-url"),
            get(blobs::download_url),
        )
}

/// Every route, wrapped (outermost first) in request id, CORS and CSRF.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(routes::root))
        .route("/health", get(routes::health))
        .route("/version", get(routes::version))
        .route("/auth/providers", get(auth::providers))
        .route("/auth/session", get(auth::session))
        .route("/auth/signout", post(auth::signout))
        .route("/api", get(routes::api_index))
        .route("/admin", get(routes::admin_index))
        .route("/admin/db/health", get(routes::admin_db_health))
        .route("/admin/users", get(routes::admin_users));
    blobs::MOUNTS
        .iter()
        .fold(routes, |r, prefix| blob_routes(r, prefix))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), middleware::csrf))
        .layer(from_fn_with_state(state.clone(), middleware::cors))
        .layer(from_fn(middleware::request_id))
        .with_state(state)
}

#[derive(Debug)]
pub enum StartupError {
    Database(db::DbError),
    Storage(storage::StorageError),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::Database(e) => e.fmt(f),
            StartupError::Storage(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartupError {}

/// Connects to Postgres (retrying within `config.db_connect_budget`), applies the embedded
/// migrations and sets up storage.
pub async fn prepare(config: Config) -> Result<AppState, StartupError> {
    let pool = db::build_pool(&config.database_url, 16).map_err(StartupError::Database)?;
    db::wait_for_database(&pool, config.db_connect_budget)
        .await
        .map_err(StartupError::Database)?;
    let ran = db::migrate(&pool).await.map_err(StartupError::Database)?;
    let schema = db::schema_version(&pool).await.ok().flatten();
    tracing::info!(
        applied_now = ran,
        schema_version = schema.unwrap_or_default(),
        "migrations up to date"
    );

    let storage = match &config.storage {
        Some(cfg) => Some(storage::Storage::new(cfg).map_err(StartupError::Storage)?),
        None => None,
    };
    Ok(AppState::new(config, pool, storage))
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        _ = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

/// Logs a warning when the bucket is missing or unreachable; never blocks start-up.
fn check_storage_in_background(state: &AppState) {
    let Some(storage) = state.storage.clone() else {
        match &state.config.storage_problem {
            Some(p) => {
                tracing::warn!(problem = %p, "object storage disabled; blob routes answer 503")
            }
            None => tracing::info!("STORAGE_ENDPOINT not set; blob routes answer 503"),
        }
        return;
    };
    tokio::spawn(async move {
        let bucket = storage.bucket_name().to_string();
        let endpoint = storage.endpoint().to_string();
        match tokio::time::timeout(Duration::from_secs(10), storage.bucket_exists()).await {
            Ok(Ok(true)) => tracing::info!(%endpoint, %bucket, "object storage reachable"),
            Ok(Ok(false)) => {
                tracing::warn!(%endpoint, %bucket, "bucket does not exist; blob uploads will fail")
            }
            Ok(Err(e)) => {
                tracing::warn!(%endpoint, %bucket, error = %e, "object storage check failed")
            }
            Err(_) => tracing::warn!(%endpoint, %bucket, "object storage check timed out"),
        }
    });
}

/// The binary's entry point.
pub async fn run() -> ExitCode {
    init_logging();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration; refusing to start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        version = routes::VERSION,
        environment = %config.environment,
        public_url = %config.public_url,
        frontend_url = %config.frontend_url,
        storage = config.storage.is_some(),
        dev_bypass = config.dev_bypass,
        "starting ignition-api"
    );
    if config.dev_bypass {
        tracing::warn!(
            "AUTH_DEV_BYPASS=true: requests whose Host is localhost or 127.0.0.1 act as the dev admin user"
        );
    }
    let addr = config.bind_addr();
    let state = match prepare(config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    check_storage_in_background(&state);

    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, "listening");
    let app = router(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        tracing::error!(error = %e, "server error");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
