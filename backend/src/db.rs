//! Postgres: the connection pool, start-up retry, and a small migrator that keeps the
//! `_sqlx_migrations` bookkeeping table in the same shape sqlx uses.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha384};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
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
    // tokio-postgres knows only disable/prefer/require, so libpq's other modes are read
    // here and the driver is handed a URL it accepts. Errors never quote the URL: it
    // may hold a password.
    let (mode, driver_url) = split_sslmode(database_url).map_err(DbError::BadUrl)?;
    let mut pg = tokio_postgres::Config::from_str(&driver_url)
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
    // tokio-postgres applies the (rewritten) `sslmode` itself: `prefer` asks for TLS and
    // falls back to plain TCP when the server declines, `require` fails instead.
    let tls = |config: Result<rustls::ClientConfig, rustls::Error>| {
        config
            .map(MakeRustlsConnect::new)
            .map_err(|e| DbError::Tls(e.to_string()))
    };
    let mgr = match transport_for(mode, &pg) {
        Transport::Plain => Manager::from_config(pg, NoTls, manager_config),
        Transport::TlsUnverified => {
            Manager::from_config(pg, tls(unverified_tls_client_config())?, manager_config)
        }
        Transport::TlsVerified => {
            Manager::from_config(pg, tls(tls_client_config())?, manager_config)
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

/// `sslmode` with libpq's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibpqSslMode {
    /// Plain TCP only.
    Disable,
    /// libpq tries plain first; here it is handled like `prefer` (it connects wherever
    /// `allow` would, encrypted when the server offers TLS).
    Allow,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or nothing; the certificate is not checked.
    Require,
    /// TLS with a verified certificate chain (checked here like `verify-full`).
    VerifyCa,
    /// TLS with a verified certificate chain and host name.
    VerifyFull,
}

impl LibpqSslMode {
    pub fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "unknown sslmode `{other}` (expected disable, allow, prefer, require, \
                     verify-ca or verify-full)"
                ));
            }
        })
    }

    /// The value tokio-postgres is given: it decides only whether TLS is tried and
    /// whether it is mandatory; certificate checks belong to the connector.
    pub fn driver_value(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow | Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }

    pub fn verifies_certificate(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

/// Reads `sslmode` from a connection string (URL or key=value form) and returns the
/// mode in force (the last one given, `prefer` when none is) together with the string
/// rewritten so every `sslmode` holds a value tokio-postgres accepts. Everything else
/// is left byte for byte as it was. The string is split the way tokio-postgres splits
/// it; pieces it would reject are left alone for it to report.
pub fn split_sslmode(conn: &str) -> Result<(LibpqSslMode, String), String> {
    match ["postgres://", "postgresql://"]
        .iter()
        .find(|p| conn.starts_with(*p))
    {
        Some(prefix) => split_sslmode_url(conn, prefix.len()),
        None => split_sslmode_key_value(conn),
    }
}

fn percent_decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn split_sslmode_url(url: &str, prefix_len: usize) -> Result<(LibpqSslMode, String), String> {
    let mut mode = LibpqSslMode::Prefer;
    // The credentials end at the first `@`; the query starts at the first `?` after it.
    let after_prefix = &url[prefix_len..];
    let host_start = prefix_len + after_prefix.find('@').map_or(0, |i| i + 1);
    let Some(q) = url[host_start..].find('?') else {
        return Ok((mode, url.to_owned()));
    };
    let query_start = host_start + q + 1;
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..query_start]);
    let mut rest = &url[query_start..];
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            out.push_str(rest);
            break;
        };
        let key = &rest[..eq];
        let after_eq = &rest[eq + 1..];
        let (value, tail) = match after_eq.find('&') {
            Some(amp) => (&after_eq[..amp], Some(&after_eq[amp + 1..])),
            None => (after_eq, None),
        };
        out.push_str(key);
        out.push('=');
        if percent_decoded(key) == "sslmode" {
            mode = LibpqSslMode::parse(&percent_decoded(value))?;
            out.push_str(mode.driver_value());
        } else {
            out.push_str(value);
        }
        match tail {
            Some(tail) => {
                out.push('&');
                rest = tail;
            }
            None => break,
        }
    }
    Ok((mode, out))
}

fn split_sslmode_key_value(conn: &str) -> Result<(LibpqSslMode, String), String> {
    let mut mode = LibpqSslMode::Prefer;
    let mut out = String::with_capacity(conn.len());
    // Byte offset in `conn` up to which `out` already holds the text.
    let mut copied = 0;
    let mut it = conn.char_indices().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    };
    let offset = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        it.peek().map_or(conn.len(), |&(i, _)| i)
    };
    loop {
        skip_ws(&mut it);
        let key_start = offset(&mut it);
        while it
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key = &conn[key_start..offset(&mut it)];
        if key.is_empty() {
            break;
        }
        skip_ws(&mut it);
        if it.next_if(|&(_, c)| c == '=').is_none() {
            break;
        }
        skip_ws(&mut it);
        let value_start = offset(&mut it);
        let mut value = String::new();
        let quoted = it.next_if(|&(_, c)| c == '\'').is_some();
        let mut closed = !quoted;
        while let Some(&(_, c)) = it.peek() {
            if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                break;
            }
            it.next();
            if c == '\\' {
                if let Some((_, escaped)) = it.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        if quoted {
            closed = it.next_if(|&(_, c)| c == '\'').is_some();
        }
        if !closed || (!quoted && value.is_empty()) {
            break;
        }
        let value_end = offset(&mut it);
        if key == "sslmode" {
            mode = LibpqSslMode::parse(&value)?;
            out.push_str(&conn[copied..value_start]);
            out.push_str(mode.driver_value());
            copied = value_end;
        }
    }
    out.push_str(&conn[copied..]);
    Ok((mode, out))
}

/// Whether connections may use TLS, and whether its certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP or a Unix socket only.
    Plain,
    /// TLS (`allow`, `prefer`, `require`): encrypted, certificate not checked, as libpq.
    TlsUnverified,
    /// TLS (`verify-ca`, `verify-full`): chain and host name checked.
    TlsVerified,
}

/// `sslmode=disable`, or only Unix-socket hosts (Postgres offers no TLS there), mean
/// plain connections, exactly as before TLS support existed.
pub fn transport_for(mode: LibpqSslMode, pg: &tokio_postgres::Config) -> Transport {
    let any_tcp = pg.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)));
    if mode == LibpqSslMode::Disable || !any_tcp {
        Transport::Plain
    } else if mode.verifies_certificate() {
        Transport::TlsVerified
    } else {
        Transport::TlsUnverified
    }
}

/// rustls client settings for `verify-ca` / `verify-full`: ring chosen explicitly (no
/// reliance on a process-wide default provider) and the compiled-in web PKI roots, so the
/// server certificate and host name are verified without a CA bundle on the machine.
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

/// rustls client settings for `prefer` / `require`: encryption without certificate
/// checks, which is what libpq does in these modes (self-signed and private-CA servers
/// work). The handshake signatures are still verified.
pub fn unverified_tls_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyServerCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Takes any server certificate (no chain, validity or name check) but still requires
/// the server to prove it holds that certificate's key: the handshake signatures are
/// checked with the crypto provider's algorithms.
#[derive(Debug)]
pub struct AnyServerCertificate {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
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
        let (mode, driver_url) = split_sslmode(url).unwrap();
        transport_for(
            mode,
            &tokio_postgres::Config::from_str(&driver_url).unwrap(),
        )
    }

    #[test]
    fn sslmode_picks_the_transport() {
        use Transport::*;
        for (url, want) in [
            ("postgres://u:p@db.example.com/d", TlsUnverified),
            (
                "postgres://u:p@db.example.com/d?sslmode=prefer",
                TlsUnverified,
            ),
            (
                "postgres://u:p@db.example.com/d?sslmode=allow",
                TlsUnverified,
            ),
            (
                "postgres://u:p@127.0.0.1:5432/d?sslmode=require",
                TlsUnverified,
            ),
            (
                "postgres://u:p@db.example.com/d?sslmode=verify-ca",
                TlsVerified,
            ),
            (
                "postgres://u:p@db.example.com/d?sslmode=verify-full",
                TlsVerified,
            ),
            ("postgres://u:p@db.example.com/d?sslmode=disable", Plain),
            ("host=/var/run/postgresql user=u dbname=d", Plain),
            ("host=/var/run/postgresql user=u sslmode=verify-full", Plain),
            (
                "host=/var/run/postgresql,db.example.com user=u",
                TlsUnverified,
            ),
            ("host=db.example.com sslmode=verify-full", TlsVerified),
        ] {
            assert_eq!(transport(url), want, "{url}");
        }
    }

    #[test]
    fn sslmode_is_read_and_rewritten_for_the_driver() {
        use LibpqSslMode::*;
        let cases: &[(&str, LibpqSslMode, &str)] = &[
            // URL form, no query or no sslmode: untouched, libpq's default.
            ("postgres://u:p@h/d", Prefer, "postgres://u:p@h/d"),
            (
                "postgresql://h:5433/d?application_name=x",
                Prefer,
                "postgresql://h:5433/d?application_name=x",
            ),
            (
                "postgres://u:p@h/d?sslmode=disable",
                Disable,
                "postgres://u:p@h/d?sslmode=disable",
            ),
            (
                "postgres://u:p@h/d?sslmode=allow",
                Allow,
                "postgres://u:p@h/d?sslmode=prefer",
            ),
            (
                "postgres://u:p@h/d?sslmode=prefer",
                Prefer,
                "postgres://u:p@h/d?sslmode=prefer",
            ),
            (
                "postgres://u:p@h/d?sslmode=require",
                Require,
                "postgres://u:p@h/d?sslmode=require",
            ),
            (
                "postgres://u:p@h/d?sslmode=verify-ca",
                VerifyCa,
                "postgres://u:p@h/d?sslmode=require",
            ),
            (
                "postgres://u:p@h/d?sslmode=verify-full",
                VerifyFull,
                "postgres://u:p@h/d?sslmode=require",
            ),
            // Other parameters around it are kept as they were, percent escapes included.
            (
                "postgres://u:p%40ss@h1,h2:6000/d?application_name=a%20b&sslmode=verify-full&connect_timeout=3",
                VerifyFull,
                "postgres://u:p%40ss@h1,h2:6000/d?application_name=a%20b&sslmode=require&connect_timeout=3",
            ),
            (
                "postgres://h?sslmode=verify-full&",
                VerifyFull,
                "postgres://h?sslmode=require&",
            ),
            (
                "postgres://h/d?ssl%6dode=verify%2Dfull",
                VerifyFull,
                "postgres://h/d?ssl%6dode=require",
            ),
            // A `?` in the password is credentials, not the query.
            (
                "postgres://u:a?sslmode=x@h/d?sslmode=verify-ca",
                VerifyCa,
                "postgres://u:a?sslmode=x@h/d?sslmode=require",
            ),
            // The last sslmode wins, as in the driver; each one is rewritten.
            (
                "postgres://h/d?sslmode=verify-full&sslmode=disable",
                Disable,
                "postgres://h/d?sslmode=require&sslmode=disable",
            ),
            // key=value form, bare and quoted, spaces around `=`.
            (
                "host=h user=u sslmode=verify-full dbname=d",
                VerifyFull,
                "host=h user=u sslmode=require dbname=d",
            ),
            (
                "host=h sslmode = 'verify-ca'",
                VerifyCa,
                "host=h sslmode = require",
            ),
            (
                "password='a sslmode=verify-full' sslmode=disable",
                Disable,
                "password='a sslmode=verify-full' sslmode=disable",
            ),
            (
                "password=x\\ sslmode=verify-full host=h",
                Prefer,
                "password=x\\ sslmode=verify-full host=h",
            ),
            (
                "  host=h   sslmode=allow  ",
                Allow,
                "  host=h   sslmode=prefer  ",
            ),
            ("", Prefer, ""),
        ];
        for (input, mode, driver) in cases {
            let got = split_sslmode(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, (*mode, driver.to_string()), "{input}");
            // The driver accepts every rewritten string.
            if !driver.is_empty() {
                tokio_postgres::Config::from_str(driver)
                    .unwrap_or_else(|e| panic!("{driver}: {e}"));
            }
        }
    }

    #[test]
    fn unknown_sslmode_is_a_clear_error_without_the_url() {
        for input in [
            "postgres://u:secret@h/d?sslmode=verify_full",
            "postgres://u:secret@h/d?sslmode=",
            "host=h password=secret sslmode=Require",
        ] {
            let err = split_sslmode(input).unwrap_err();
            assert!(err.starts_with("unknown sslmode `"), "{err}");
            assert!(err.contains("verify-full"), "{err}");
            assert!(!err.contains("secret"), "{err}");
            match build_pool(input, 1) {
                Err(DbError::BadUrl(e)) => assert_eq!(e, err),
                other => panic!("{input}: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn tls_configs_use_ring_and_build_connectors() {
        use tokio_postgres::tls::MakeTlsConnect;

        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
        for config in [tls_client_config(), unverified_tls_client_config()] {
            let config = config.expect("tls config");
            assert!(!config.crypto_provider().cipher_suites.is_empty());
            let mut make = MakeRustlsConnect::new(config);
            for host in ["db.example.com", "127.0.0.1", "::1"] {
                assert!(
                    MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(&mut make, host)
                        .is_ok(),
                    "{host}"
                );
            }
        }
    }

    /// A server config presenting `certs`, signing the handshake with `key` (which need
    /// not belong to the certificate: no consistency check on purpose).
    fn test_server_config(
        certs: Vec<CertificateDer<'static>>,
        key: &rcgen::KeyPair,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> rustls::ServerConfig {
        #[derive(Debug)]
        struct Fixed(Arc<rustls::sign::CertifiedKey>);
        impl rustls::server::ResolvesServerCert for Fixed {
            fn resolve(
                &self,
                _hello: rustls::server::ClientHello<'_>,
            ) -> Option<Arc<rustls::sign::CertifiedKey>> {
                Some(self.0.clone())
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = provider.key_provider.load_private_key(der).unwrap();
        let certified = Arc::new(rustls::sign::CertifiedKey::new(certs, signer));
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(certified)))
    }

    /// Runs a TLS handshake in memory; the client's error if it fails.
    fn handshake(
        client: rustls::ClientConfig,
        server: rustls::ServerConfig,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut s = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
                if s.process_new_packets().is_err() {
                    break;
                }
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
                c.process_new_packets()?;
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn unverified_config_accepts_a_self_signed_certificate_but_checks_signatures() {
        let own = rcgen::generate_simple_self_signed(vec!["db.internal".to_string()]).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let certs = vec![own.cert.der().clone()];
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            // prefer/require: a self-signed certificate for another name is fine.
            let server = test_server_config(certs.clone(), &own.signing_key, version);
            handshake(unverified_tls_client_config().unwrap(), server, "127.0.0.1")
                .unwrap_or_else(|e| panic!("{version:?}: {e}"));

            // verify-ca/verify-full: the same server is refused.
            let server = test_server_config(certs.clone(), &own.signing_key, version);
            let err = handshake(tls_client_config().unwrap(), server, "db.internal").unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                ),
                "{version:?}: {err:?}"
            );

            // A server without the certificate's key fails even unverified.
            let server = test_server_config(certs.clone(), &other, version);
            let err = handshake(
                unverified_tls_client_config().unwrap(),
                server,
                "db.internal",
            )
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
                ),
                "{version:?}: {err:?}"
            );
        }
    }

    #[test]
    fn pool_builds_for_every_sslmode() {
        for mode in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let url = format!("postgres://u:p@127.0.0.1:1/d?sslmode={mode}");
            assert!(build_pool(&url, 1).is_ok(), "{mode}");
        }
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
