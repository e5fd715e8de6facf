//! Sessions, the development bypass, RBAC, and the `/auth/*` routes.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::config::Environment;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "session";
pub const DEV_USER_ID: Uuid = Uuid::from_u128(1);
pub const DEV_USER_EMAIL: &str = "dev@localhost";
pub const DEV_USER_NAME: &str = "Local Dev User";
pub const DEV_USER_ROLE: &str = "admin";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurrentUser {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub roles: Vec<String>,
    pub approved: bool,
    pub age_verified: bool,
    pub tos_accepted: bool,
    pub created_at: Option<Timestamp>,
    /// `session` or `dev_bypass`.
    pub auth_method: &'static str,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == "admin" || self.roles.iter().any(|r| r == "admin")
    }

    /// The identity the bypass injects when no `users` row exists for it.
    pub fn dev_identity() -> Self {
        CurrentUser {
            id: DEV_USER_ID,
            email: DEV_USER_EMAIL.into(),
            name: Some(DEV_USER_NAME.into()),
            role: DEV_USER_ROLE.into(),
            roles: vec![DEV_USER_ROLE.into()],
            approved: true,
            age_verified: true,
            tos_accepted: true,
            created_at: None,
            auth_method: "dev_bypass",
        }
    }
}

// ---------------------------------------------------------------- dev bypass

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BypassDecision {
    /// `AUTH_DEV_BYPASS` is not `true`.
    Off,
    Active,
    /// The flag is on but a condition fails; the reason is logged and cookie auth is used.
    Refused(String),
}

/// `localhost` or `127.0.0.1`, optionally followed by `:port`, and nothing else.
pub fn is_local_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            if port.parse::<u16>().is_err() {
                return false;
            }
            name
        }
        None => host,
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1"
}

pub fn bypass_decision(flag: bool, env: Environment, host: Option<&str>) -> BypassDecision {
    if !flag {
        return BypassDecision::Off;
    }
    if env != Environment::Development {
        return BypassDecision::Refused(format!("environment is {env}, not development"));
    }
    match host {
        Some(h) if is_local_host(h) => BypassDecision::Active,
        Some(h) => BypassDecision::Refused(format!(
            "Host {h:?} is not localhost or 127.0.0.1 (optionally with a port)"
        )),
        None => BypassDecision::Refused("the request has no Host".into()),
    }
}

fn request_host(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
}

// ---------------------------------------------------------------- RBAC

pub fn require_auth(user: Option<CurrentUser>) -> ApiResult<CurrentUser> {
    user.ok_or_else(ApiError::unauthorized)
}

pub fn require_admin(user: Option<CurrentUser>) -> ApiResult<CurrentUser> {
    let user = require_auth(user)?;
    if user.is_admin() {
        Ok(user)
    } else {
        Err(ApiError::forbidden())
    }
}

// ---------------------------------------------------------------- sessions

/// The `session` cookie's value, from any `Cookie` header.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.role, u.approved, u.age_verified, \
     u.tos_accepted, u.created_at, \
     COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}')";

fn user_from_row(row: &tokio_postgres::Row, auth_method: &'static str) -> CurrentUser {
    let role: String = row.get(3);
    let mut roles: Vec<String> = row.get(8);
    if !roles.contains(&role) {
        roles.insert(0, role.clone());
    }
    CurrentUser {
        id: row.get(0),
        email: row.get(1),
        name: row.get(2),
        role,
        roles,
        approved: row.get(4),
        age_verified: row.get(5),
        tos_accepted: row.get(6),
        created_at: row.get(7),
        auth_method,
    }
}

async fn user_by_id(state: &AppState, id: Uuid) -> ApiResult<Option<CurrentUser>> {
    let client = state.pool.get().await?;
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    let row = client.query_opt(&sql, &[&id]).await?;
    Ok(row.map(|r| user_from_row(&r, "dev_bypass")))
}

async fn user_by_session(state: &AppState, token: &str) -> ApiResult<Option<CurrentUser>> {
    let client = state.pool.get().await?;
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token = $1 AND s.expires_at > now()"
    );
    let row = client.query_opt(&sql, &[&token]).await?;
    Ok(row.map(|r| user_from_row(&r, "session")))
}

/// The caller's identity: the dev user when the bypass applies, else the session cookie's.
pub async fn resolve_user(parts: &Parts, state: &AppState) -> ApiResult<Option<CurrentUser>> {
    let host = request_host(parts);
    match bypass_decision(
        state.config.dev_bypass,
        state.config.environment,
        host.as_deref(),
    ) {
        BypassDecision::Active => {
            // Prefer the seeded row (it may carry more fields); fall back to the fixed identity.
            let user = match user_by_id(state, DEV_USER_ID).await {
                Ok(Some(mut u)) => {
                    if !u.is_admin() {
                        u.roles.push(DEV_USER_ROLE.into());
                    }
                    u.role = DEV_USER_ROLE.into();
                    u
                }
                Ok(None) => CurrentUser::dev_identity(),
                Err(e) => {
                    tracing::warn!(error = %e, "dev user lookup failed; using the fixed identity");
                    CurrentUser::dev_identity()
                }
            };
            return Ok(Some(user));
        }
        BypassDecision::Refused(reason) => {
            tracing::warn!(
                reason = %reason,
                "AUTH_DEV_BYPASS=true but the bypass does not apply to this request; using cookie auth"
            );
        }
        BypassDecision::Off => {}
    }
    match session_token(&parts.headers) {
        Some(token) => user_by_session(state, &token).await,
        None => Ok(None),
    }
}

/// Extractor: the caller's identity when there is one.
pub struct MaybeUser(pub Option<CurrentUser>);

/// Extractor: a signed-in caller, else 401.
pub struct AuthUser(pub CurrentUser);

/// Extractor: an admin, else 401 (no session) or 403.
pub struct AdminUser(pub CurrentUser);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        resolve_user(parts, state).await.map(MaybeUser)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        require_auth(resolve_user(parts, state).await?).map(AuthUser)
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        require_admin(resolve_user(parts, state).await?).map(AdminUser)
    }
}

// ---------------------------------------------------------------- routes

pub async fn providers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .config
        .listed_providers()
        .into_iter()
        .map(|p| json!({ "id": p.id, "name": p.name, "enabled": p.enabled }))
        .collect();
    Json(serde_json::Value::Array(list))
}

pub async fn session(MaybeUser(user): MaybeUser) -> Json<serde_json::Value> {
    Json(json!({ "user": user }))
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(domain: Option<&str>) -> String {
    let mut c = format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         HttpOnly; Secure; SameSite=None"
    );
    if let Some(d) = domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    c
}

pub async fn signout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        let client = state.pool.get().await?;
        client
            .execute("DELETE FROM sessions WHERE token = $1", &[&token])
            .await?;
    }
    let cookie = clear_session_cookie(state.config.cookie_domain.as_deref());
    let mut resp = Json(json!({ "success": true })).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_identity_is_fixed() {
        let u = CurrentUser::dev_identity();
        assert_eq!(u.id.to_string(), "00000000-0000-0000-0000-000000000001");
        assert_eq!(u.email, "dev@localhost");
        assert_eq!(u.name.as_deref(), Some("Local Dev User"));
        assert_eq!(u.role, "admin");
        assert!(u.is_admin());
    }

    #[test]
    fn host_matching_is_exact() {
        let table = [
            ("localhost", true),
            ("localhost:3000", true),
            ("localhost:8080", true),
            ("LOCALHOST:8080", true),
            ("127.0.0.1", true),
            ("127.0.0.1:8080", true),
            ("localhost.example.com", false),
            ("localhost.example", false),
            ("localhost.example.com:8080", false),
            ("127.0.0.1.nip.io", false),
            ("127.0.0.10", false),
            ("127.0.0.1:", false),
            ("127.0.0.1:99999", false),
            ("localhost:80abc", false),
            ("localhost:3000:3000", false),
            ("example.com", false),
            ("example.com:8080", false),
            ("evil-localhost", false),
            ("[::1]:8080", false),
            ("", false),
        ];
        for (host, want) in table {
            assert_eq!(is_local_host(host), want, "{host:?}");
        }
    }

    #[test]
    fn bypass_conditions() {
        use BypassDecision::*;
        let dev = Environment::Development;
        let prod = Environment::Production;
        assert_eq!(bypass_decision(false, dev, Some("localhost:8080")), Off);
        assert_eq!(bypass_decision(false, prod, Some("localhost")), Off);
        assert_eq!(bypass_decision(true, dev, Some("localhost:3000")), Active);
        assert_eq!(bypass_decision(true, dev, Some("127.0.0.1:8080")), Active);
        assert_eq!(bypass_decision(true, dev, Some("localhost")), Active);
        for host in [Some("localhost.example.com"), Some("example.com"), None] {
            assert!(
                matches!(bypass_decision(true, dev, host), Refused(_)),
                "{host:?}"
            );
        }
        assert!(matches!(
            bypass_decision(true, prod, Some("localhost:8080")),
            Refused(_)
        ));
    }

    fn user(role: &str, roles: &[&str]) -> CurrentUser {
        CurrentUser {
            role: role.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            auth_method: "session",
            ..CurrentUser::dev_identity()
        }
    }

    #[test]
    fn rbac() {
        assert_eq!(require_auth(None).unwrap_err().status().as_u16(), 401);
        assert_eq!(require_admin(None).unwrap_err().status().as_u16(), 401);
        let plain = user("user", &["user"]);
        assert!(require_auth(Some(plain.clone())).is_ok());
        let e = require_admin(Some(plain)).unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (403, "forbidden"));
        assert!(require_admin(Some(user("admin", &[]))).is_ok());
        assert!(require_admin(Some(user("user", &["user", "admin"]))).is_ok());
    }

    #[test]
    fn session_cookie_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(session_token(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; session=abc123; x=y"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc123"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=b"));
        h.append(header::COOKIE, HeaderValue::from_static("session=tok"));
        assert_eq!(session_token(&h).as_deref(), Some("tok"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("mysession=zzz; session="),
        );
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn signout_cookie() {
        let c = clear_session_cookie(Some("localhost"));
        assert!(c.starts_with("session=;"));
        assert!(c.contains("Max-Age=0"));
        assert!(c.contains("HttpOnly"));
        assert!(c.contains("Domain=localhost"));
        assert!(!clear_session_cookie(None).contains("Domain"));
    }
}
