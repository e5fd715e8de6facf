//! Shared application state.

use std::ops::Deref;
use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::config::Config;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub pool: Pool,
    pub storage: Option<Storage>,
    pub cors_origins: Vec<String>,
    pub csrf_origins: Vec<String>,
}

impl AppState {
    pub fn new(config: Config, pool: Pool, storage: Option<Storage>) -> Self {
        let cors_origins = crate::middleware::cors_origins(config.environment);
        let csrf_origins = crate::middleware::csrf_origins(config.environment);
        AppState(Arc::new(Inner {
            config,
            pool,
            storage,
            cors_origins,
            csrf_origins,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
