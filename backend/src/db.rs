//! Postgres: the connection pool, start-up retry, and a small migrator that keeps the
//! `_sqlx_migrations` bookkeeping table in the same shape sqlx uses.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sha2::{Digest, Sha384};
use tokio_postgres::NoTls;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

pub struct EmbeddedMigration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Version of the newest migration embedded in this binary.
pub fn latest_embedded_version() -> Option<i64> {
    MIGRATIONS.iter().map(|m| m.version).max()
}

/// A fixed advisory-lock key so two instances starting together migrate one at a time.
const MIGRATION_LOCK_KEY: i64 = 0x1697_1714_0a11_cafe;

#[derive(Debug)]
pub enum DbError {
    BadUrl(String),
    Tls(String),
    Unreachable { waited: Duration, last: String },
    Migration(String),
    Query(tokio_postgres::Error),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::BadUrl(e) => write!(f, "DATABASE_URL cannot be parsed: {e}"),
            DbError::Tls(e) => write!(f, "TLS set-up for Postgres failed: {e}"),
            DbError::Unreachable { waited, last } => write!(
                f,
                "database unreachable after {:.1}s of retries; last error: {last}",
                waited.as_secs_f64()
            ),
            DbError::Migration(e) => write!(f, "migration failed: {e}"),
            DbError::Query(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Query(e)
    }
}

/// Builds the pool (lazily connecting); fails only on an unparsable URL.
pub fn build_pool(database_url: &str, max_size: usize) -> Result<Pool, DbError> {
    let mut pg = tokio_postgres::Config::from_str(database_url)
        .map_err(|e| DbError::BadUrl(e.to_string()))?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    if pg.get_application_name().is_none() {
        pg.application_name("ignition-api");
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    // tokio-postgres applies `sslmode` itself: `prefer` (the default) asks for TLS and
    // falls back to plain TCP when the server declines, `require` fails instead.
    let mgr = match transport_for(&pg) {
        Transport::Plain => Manager::from_config(pg, NoTls, manager_config),
        Transport::Tls => {
            let tls = tls_client_config().map_err(|e| DbError::Tls(e.to_string()))?;
            Manager::from_config(pg, MakeRustlsConnect::new(tls), manager_config)
        }
    };
    Pool::builder(mgr)
        .max_size(max_size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::BadUrl(e.to_string()))
}

/// Whether connections may use TLS at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP or a Unix socket only.
    Plain,
    /// TLS when `sslmode` asks for it (prefer or require).
    Tls,
}

/// `sslmode=disable`, or only Unix-socket hosts (Postgres offers no TLS there), mean
/// plain connections, exactly as before TLS support existed.
pub fn transport_for(pg: &tokio_postgres::Config) -> Transport {
    let any_tcp = pg.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)));
    if pg.get_ssl_mode() == SslMode::Disable || !any_tcp {
        Transport::Plain
    } else {
        Transport::Tls
    }
}

/// rustls client settings for Postgres: ring chosen explicitly (no reliance on a
/// process-wide default provider) and the compiled-in web PKI roots, so the server
/// certificate and host name are verified without a CA bundle on the machine.
pub fn tls_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Delay before retry number `attempt` (1-based): 250 ms doubling, capped at 4 s.
pub fn backoff_delay(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(4_000))
}

/// Waits until the pool hands out a working connection, retrying with backoff for at
/// most `budget` in total.
pub async fn wait_for_database(pool: &Pool, budget: Duration) -> Result<(), DbError> {
    let start = Instant::now();
    let deadline = start + budget;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let per_try = remaining.min(Duration::from_secs(5));
        let result = match tokio::time::timeout(per_try, pool.get()).await {
            Ok(Ok(client)) => match client.simple_query("SELECT 1").await {
                Ok(_) => Ok(()),
                Err(e) => Err(error_chain(&e)),
            },
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(_) => Err(format!(
                "connection attempt timed out after {:.1}s",
                per_try.as_secs_f64()
            )),
        };
        let last = match result {
            Ok(()) => {
                tracing::info!(attempt, "database reachable");
                return Ok(());
            }
            Err(e) => e,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(DbError::Unreachable {
                waited: start.elapsed(),
                last,
            });
        }
        let delay = backoff_delay(attempt).min(remaining);
        tracing::warn!(
            attempt,
            error = %last,
            retry_in_ms = delay.as_millis() as u64,
            "database not reachable yet; retrying"
        );
        tokio::time::sleep(delay).await;
        // An attempt with no time left could only time out at once and would hide the
        // real cause (refused, TLS not offered, bad password) behind that time-out.
        if Instant::now() >= deadline {
            return Err(DbError::Unreachable {
                waited: start.elapsed(),
                last,
            });
        }
    }
}

pub fn checksum(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Applies the embedded migrations that are not yet recorded. Returns how many ran.
pub async fn migrate(pool: &Pool) -> Result<usize, DbError> {
    migrate_with(pool, MIGRATIONS).await
}

pub async fn migrate_with(pool: &Pool, migrations: &[EmbeddedMigration]) -> Result<usize, DbError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| DbError::Migration(format!("no database connection: {e}")))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = apply_pending(&mut client, migrations).await;
    // Unlock even when a migration failed; the session ends with the connection anyway.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    result
}

async fn apply_pending(
    client: &mut deadpool_postgres::Client,
    migrations: &[EmbeddedMigration],
) -> Result<usize, DbError> {
    client.batch_execute(CREATE_MIGRATIONS_TABLE).await?;

    let dirty = client
        .query_opt(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            &[],
        )
        .await?;
    if let Some(row) = dirty {
        let v: i64 = row.get(0);
        return Err(DbError::Migration(format!(
            "migration {v} is recorded as failed (dirty); fix the database by hand"
        )));
    }

    let applied: Vec<(i64, Vec<u8>)> = client
        .query(
            "SELECT version, checksum FROM _sqlx_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    for (version, sum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            None => {
                return Err(DbError::Migration(format!(
                    "migration {version} was applied to the database but is not in this binary \
                     (was the database migrated by another build?)"
                )));
            }
            Some(m) if checksum(m.sql) != *sum => {
                return Err(DbError::Migration(format!(
                    "migration {version} ({}) was changed after it was applied (checksum mismatch)",
                    m.description
                )));
            }
            Some(_) => {}
        }
    }

    let mut ran = 0;
    for m in migrations {
        if applied.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        let started = Instant::now();
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await.map_err(|e| {
            DbError::Migration(format!(
                "{} ({}): {}",
                m.version,
                m.description,
                db_detail(&e)
            ))
        })?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, -1)",
            &[&m.version, &m.description, &checksum(m.sql)],
        )
        .await?;
        tx.commit().await?;
        let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        client
            .execute(
                "UPDATE _sqlx_migrations SET execution_time = $1 WHERE version = $2",
                &[&nanos, &m.version],
            )
            .await?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "migration applied"
        );
        ran += 1;
    }
    Ok(ran)
}

/// An error and its causes, `a: b: c` (pool and driver errors hide the cause otherwise).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    msg
}

/// The server's own message for a failed statement, which `Display` hides.
pub fn db_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error_chain(e),
    }
}

/// Latest applied migration, from `_sqlx_migrations`.
pub async fn schema_version(pool: &Pool) -> Result<Option<i64>, String> {
    let client = pool.get().await.map_err(|e| error_chain(&e))?;
    let row = client
        .query_one(
            "SELECT max(version) FROM _sqlx_migrations WHERE success",
            &[],
        )
        .await
        .map_err(|e| db_detail(&e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_ordered_and_named() {
        assert!(!MIGRATIONS.is_empty());
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        assert!(MIGRATIONS.iter().all(|m| !m.description.contains('_')));
        assert_eq!(
            latest_embedded_version(),
            MIGRATIONS.last().map(|m| m.version)
        );
    }

    #[test]
    fn checksum_is_sha384() {
        assert_eq!(checksum("").len(), 48);
        assert_ne!(checksum("a"), checksum("b"));
    }

    fn transport(url: &str) -> Transport {
        transport_for(&tokio_postgres::Config::from_str(url).unwrap())
    }

    #[test]
    fn sslmode_picks_the_transport() {
        assert_eq!(transport("postgres://u:p@db.example.com/d"), Transport::Tls);
        assert_eq!(
            transport("postgres://u:p@db.example.com/d?sslmode=prefer"),
            Transport::Tls
        );
        assert_eq!(
            transport("postgres://u:p@127.0.0.1:5432/d?sslmode=require"),
            Transport::Tls
        );
        assert_eq!(
            transport("postgres://u:p@db.example.com/d?sslmode=disable"),
            Transport::Plain
        );
        assert_eq!(
            transport("host=/var/run/postgresql user=u dbname=d"),
            Transport::Plain
        );
        assert_eq!(
            transport("host=/var/run/postgresql,db.example.com user=u"),
            Transport::Tls
        );
    }

    #[test]
    fn tls_config_uses_ring_and_builds_connectors() {
        use tokio_postgres::tls::MakeTlsConnect;

        let config = tls_client_config().expect("tls config");
        assert!(!config.crypto_provider().cipher_suites.is_empty());
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
        let mut make = MakeRustlsConnect::new(config);
        for host in ["db.example.com", "127.0.0.1", "::1"] {
            assert!(
                MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(&mut make, host).is_ok(),
                "{host}"
            );
        }
    }

    #[test]
    fn pool_builds_for_every_sslmode() {
        for mode in ["disable", "prefer", "require"] {
            let url = format!("postgres://u:p@127.0.0.1:1/d?sslmode={mode}");
            assert!(build_pool(&url, 1).is_ok(), "{mode}");
        }
        assert!(matches!(
            build_pool("postgres://u:p@127.0.0.1/d?sslmode=verify-full", 1),
            Err(DbError::BadUrl(_))
        ));
    }

    /// A loopback listener that answers every SSLRequest with `N`, as a server without
    /// TLS does, and then keeps the connection open.
    async fn server_without_tls() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                if sock.writable().await.is_ok() {
                    let _ = sock.try_write(b"N");
                }
                held.push(sock);
            }
        });
        port
    }

    #[tokio::test]
    async fn require_fails_and_gives_up_with_the_real_cause() {
        let port = server_without_tls().await;
        let url = format!("postgres://u:p@127.0.0.1:{port}/d?sslmode=require");
        let pool = build_pool(&url, 1).unwrap();
        match wait_for_database(&pool, Duration::from_millis(600)).await {
            Err(DbError::Unreachable { last, .. }) => {
                assert!(last.contains("server does not support TLS"), "{last}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff_delay(1), Duration::from_millis(250));
        assert_eq!(backoff_delay(2), Duration::from_millis(500));
        assert_eq!(backoff_delay(5), Duration::from_secs(4));
        assert_eq!(backoff_delay(60), Duration::from_secs(4));
    }
}
