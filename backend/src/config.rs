//! Configuration, read only from the environment variables the contract names.

use std::fmt;
use std::time::Duration;

/// The placeholder URL the real service refuses; we refuse it too so devenv
/// behaves the same against both backends.
pub const PLACEHOLDER_DATABASE_URL: &str = "postgres://localhost/ignition";

/// How long start-up keeps retrying an unreachable database (not configurable).
pub const DEFAULT_DB_CONNECT_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    /// `development` (or `dev`, `local`) and `production` (or `prod`), case-insensitive.
    /// Anything else is refused rather than guessed: a typo must not turn a production
    /// deployment into a development one.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" | "local" => Some(Environment::Development),
            "production" | "prod" => Some(Environment::Production),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct OAuthProvider {
    pub id: &'static str,
    pub name: &'static str,
    /// Some of its variables are set.
    pub configured: bool,
    /// Both its client id and secret are set.
    pub enabled: bool,
}

impl fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(enabled={})", self.id, self.enabled)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub environment: Environment,
    pub public_url: String,
    pub frontend_url: String,
    pub database_url: String,
    pub dev_bypass: bool,
    pub cookie_domain: Option<String>,
    /// `None` when `STORAGE_ENDPOINT` is unset: blob routes answer 503.
    pub storage: Option<StorageConfig>,
    /// Why storage is off although `STORAGE_ENDPOINT` is set (missing variables).
    pub storage_problem: Option<String>,
    pub oauth_providers: Vec<OAuthProvider>,
    pub db_connect_budget: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    MissingDatabaseUrl,
    PlaceholderDatabaseUrl,
    InvalidPort(String),
    InvalidEnvironment(String),
    BypassInProduction,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingDatabaseUrl => {
                f.write_str("DATABASE_URL is required but empty or unset")
            }
            ConfigError::PlaceholderDatabaseUrl => write!(
                f,
                "DATABASE_URL is the placeholder {PLACEHOLDER_DATABASE_URL}; set a real Postgres URL"
            ),
            ConfigError::InvalidPort(v) => write!(f, "SERVER_PORT is not a valid port: {v:?}"),
            ConfigError::InvalidEnvironment(v) => write!(
                f,
                "SERVER_ENVIRONMENT/APP_ENV is {v:?}; expected development or production"
            ),
            ConfigError::BypassInProduction => f.write_str(
                "AUTH_DEV_BYPASS=true is forbidden when the environment is production; refusing to start",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| non_empty(get(k));

        let host = var("SERVER_HOST").unwrap_or_else(|| "0.0.0.0".to_string());
        let port = match var("SERVER_PORT") {
            None => 8080,
            Some(p) => p.parse::<u16>().map_err(|_| ConfigError::InvalidPort(p))?,
        };
        let environment = match var("SERVER_ENVIRONMENT").or_else(|| var("APP_ENV")) {
            None => Environment::Development,
            Some(v) => Environment::parse(&v).ok_or(ConfigError::InvalidEnvironment(v))?,
        };

        let database_url = var("DATABASE_URL").ok_or(ConfigError::MissingDatabaseUrl)?;
        if database_url == PLACEHOLDER_DATABASE_URL {
            return Err(ConfigError::PlaceholderDatabaseUrl);
        }

        let dev_bypass = get("AUTH_DEV_BYPASS").as_deref() == Some("true");
        if dev_bypass && environment == Environment::Production {
            return Err(ConfigError::BypassInProduction);
        }

        let (storage, storage_problem) = match var("STORAGE_ENDPOINT") {
            None => (None, None),
            Some(endpoint) => {
                let bucket = var("STORAGE_BUCKET");
                let key = var("STORAGE_ACCESS_KEY_ID");
                let secret = var("STORAGE_SECRET_ACCESS_KEY");
                let mut missing = Vec::new();
                if bucket.is_none() {
                    missing.push("STORAGE_BUCKET");
                }
                if key.is_none() {
                    missing.push("STORAGE_ACCESS_KEY_ID");
                }
                if secret.is_none() {
                    missing.push("STORAGE_SECRET_ACCESS_KEY");
                }
                if missing.is_empty() {
                    (
                        Some(StorageConfig {
                            endpoint,
                            bucket: bucket.unwrap_or_default(),
                            region: var("STORAGE_REGION").unwrap_or_else(|| "auto".to_string()),
                            access_key_id: key.unwrap_or_default(),
                            secret_access_key: secret.unwrap_or_default(),
                        }),
                        None,
                    )
                } else {
                    (
                        None,
                        Some(format!(
                            "STORAGE_ENDPOINT is set but {} missing",
                            missing.join(", ")
                        )),
                    )
                }
            }
        };

        let provider = |id: &'static str, name: &'static str, prefix: &str| {
            let client_id = var(&format!("{prefix}_CLIENT_ID")).is_some();
            let secret = var(&format!("{prefix}_CLIENT_SECRET")).is_some();
            OAuthProvider {
                id,
                name,
                configured: client_id || secret,
                enabled: client_id && secret,
            }
        };
        let oauth_providers = vec![
            provider("google", "Google", "AUTH_OAUTH_GOOGLE"),
            provider("azure", "Microsoft", "AUTH_OAUTH_AZURE"),
        ];

        Ok(Config {
            host,
            port,
            environment,
            public_url: var("SERVER_PUBLIC_URL")
                .unwrap_or_else(|| "http://localhost:8080".to_string()),
            frontend_url: var("SERVER_FRONTEND_URL")
                .unwrap_or_else(|| "http://localhost:3000".to_string()),
            database_url,
            dev_bypass,
            cookie_domain: var("AUTH_COOKIE_DOMAIN"),
            storage,
            storage_problem,
            oauth_providers,
            db_connect_budget: DEFAULT_DB_CONNECT_BUDGET,
        })
    }

    /// Providers listed by `GET /auth/providers`: those with any variable set (so `[]`
    /// without OAuth), each `enabled` only when both its id and secret are set.
    pub fn listed_providers(&self) -> Vec<OAuthProvider> {
        self.oauth_providers
            .iter()
            .filter(|p| p.configured)
            .cloned()
            .collect()
    }

    pub fn bind_addr(&self) -> String {
        // IPv6 literals need brackets in a socket address.
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://u:p@127.0.0.1:5432/ignition");

    #[test]
    fn defaults() {
        let c = cfg(&[DB]).unwrap();
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.port, 8080);
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.public_url, "http://localhost:8080");
        assert_eq!(c.frontend_url, "http://localhost:3000");
        assert!(!c.dev_bypass);
        assert!(c.storage.is_none());
        assert!(c.listed_providers().is_empty());
        assert_eq!(c.db_connect_budget, Duration::from_secs(30));
    }

    #[test]
    fn database_url_required() {
        assert_eq!(cfg(&[]).unwrap_err(), ConfigError::MissingDatabaseUrl);
        assert_eq!(
            cfg(&[("DATABASE_URL", "  ")]).unwrap_err(),
            ConfigError::MissingDatabaseUrl
        );
        assert_eq!(
            cfg(&[("DATABASE_URL", PLACEHOLDER_DATABASE_URL)]).unwrap_err(),
            ConfigError::PlaceholderDatabaseUrl
        );
    }

    #[test]
    fn environment_fallback_chain() {
        let c = cfg(&[DB, ("APP_ENV", "production")]).unwrap();
        assert_eq!(c.environment, Environment::Production);
        let c = cfg(&[
            DB,
            ("APP_ENV", "production"),
            ("SERVER_ENVIRONMENT", "development"),
        ])
        .unwrap();
        assert_eq!(c.environment, Environment::Development);
    }

    #[test]
    fn unknown_environment_refused() {
        assert_eq!(
            cfg(&[DB, ("SERVER_ENVIRONMENT", "staging")]).unwrap_err(),
            ConfigError::InvalidEnvironment("staging".into())
        );
        let c = cfg(&[DB, ("SERVER_ENVIRONMENT", "Production")]).unwrap();
        assert_eq!(c.environment, Environment::Production);
    }

    #[test]
    fn bypass_flag_only_exact_true() {
        assert!(cfg(&[DB, ("AUTH_DEV_BYPASS", "true")]).unwrap().dev_bypass);
        for v in ["TRUE", "1", "yes", "false", ""] {
            assert!(
                !cfg(&[DB, ("AUTH_DEV_BYPASS", v)]).unwrap().dev_bypass,
                "{v}"
            );
        }
    }

    #[test]
    fn bypass_refused_in_production() {
        let err = cfg(&[
            DB,
            ("AUTH_DEV_BYPASS", "true"),
            ("SERVER_ENVIRONMENT", "production"),
        ])
        .unwrap_err();
        assert_eq!(err, ConfigError::BypassInProduction);
        let err = cfg(&[DB, ("AUTH_DEV_BYPASS", "true"), ("APP_ENV", "production")]).unwrap_err();
        assert_eq!(err, ConfigError::BypassInProduction);
    }

    #[test]
    fn storage_and_providers() {
        let c = cfg(&[
            DB,
            ("STORAGE_ENDPOINT", "http://127.0.0.1:9000"),
            ("STORAGE_BUCKET", "ignition"),
            ("STORAGE_ACCESS_KEY_ID", "k"),
            ("STORAGE_SECRET_ACCESS_KEY", "s"),
            ("AUTH_OAUTH_GOOGLE_CLIENT_ID", "id"),
            ("AUTH_OAUTH_GOOGLE_CLIENT_SECRET", "secret"),
            ("AUTH_OAUTH_AZURE_CLIENT_ID", "only-id"),
        ])
        .unwrap();
        let s = c.storage.as_ref().unwrap();
        assert_eq!(s.region, "auto");
        let listed: Vec<_> = c
            .listed_providers()
            .iter()
            .map(|p| (p.id, p.enabled))
            .collect();
        assert_eq!(listed, vec![("google", true), ("azure", false)]);

        let c = cfg(&[DB, ("STORAGE_ENDPOINT", "http://127.0.0.1:9000")]).unwrap();
        assert!(c.storage.is_none());
        assert!(c.storage_problem.unwrap().contains("STORAGE_BUCKET"));
    }
}
