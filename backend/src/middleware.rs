//! Request id, CORS and CSRF. The decisions are pure functions; the `axum` middleware
//! functions only wire them to requests.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::config::Environment;
use crate::error::ApiError;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Origins allowed by CORS (credentials included).
pub fn cors_origins(env: Environment) -> Vec<String> {
    match env {
        Environment::Development => vec![
            "http://localhost:3000".into(),
            "http://localhost:3001".into(),
        ],
        Environment::Production => vec![
            "https://ignition.ecent.online".into(),
            "https://admin.ignition.ecent.online".into(),
        ],
    }
}

/// Origins accepted by the CSRF check (DEC-002): the CORS origins, plus the 127.0.0.1
/// spellings in development.
pub fn csrf_origins(env: Environment) -> Vec<String> {
    let mut v = cors_origins(env);
    if env == Environment::Development {
        v.push("http://127.0.0.1:3000".into());
        v.push("http://127.0.0.1:3001".into());
    }
    v
}

// ---------------------------------------------------------------- request id

/// The incoming id when it is usable (1..=200 visible ASCII characters), else a new v4 UUID.
pub fn resolve_request_id(incoming: Option<&HeaderValue>) -> HeaderValue {
    if let Some(v) = incoming {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is a valid header")
}

/// Outermost layer: assigns the request id, echoes it on every response and logs the request.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = resolve_request_id(req.headers().get(&REQUEST_ID));
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or_default(),
        method = %method,
        path = %path
    );
    let mut resp = next.run(req).instrument(span.clone()).await;
    resp.headers_mut().insert(REQUEST_ID, id);
    let status = resp.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        )
    });
    resp
}

// ---------------------------------------------------------------- CORS

pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    origin.is_some_and(|o| allowed.iter().any(|a| a == o))
}

fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Headers added to an answer for `origin` (none when the origin is not allowed).
pub fn cors_headers(
    origin: Option<&str>,
    allowed: &[String],
    preflight_request_headers: Option<&HeaderValue>,
    preflight: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    if !origin_allowed(origin, allowed) {
        return h;
    }
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return h;
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            preflight_request_headers
                .cloned()
                .unwrap_or(HeaderValue::from_static("content-type, x-request-id")),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    } else {
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id"),
        );
    }
    h
}

pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if is_preflight(req.method(), req.headers()) {
        let h = cors_headers(
            origin.as_deref(),
            &state.cors_origins,
            req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS),
            true,
        );
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp.headers_mut().extend(h);
        return resp;
    }
    let mut resp = next.run(req).await;
    let h = cors_headers(origin.as_deref(), &state.cors_origins, None, false);
    resp.headers_mut().extend(h);
    resp
}

// ---------------------------------------------------------------- CSRF

/// `referer` is `allowed` itself or continues it with a path, query or fragment (so
/// `http://localhost:3000.evil.test` does not pass for `http://localhost:3000`).
fn referer_matches(referer: &str, allowed: &str) -> bool {
    match referer.strip_prefix(allowed) {
        Some(rest) => rest.is_empty() || rest.starts_with(['/', '?', '#']),
        None => false,
    }
}

/// DEC-002: safe methods pass; others need an allowed `Origin`, or, when the request has
/// no `Origin`, a `Referer` under an allowed origin.
pub fn check_csrf(
    method: &Method,
    origin: Option<&str>,
    referer: Option<&str>,
    allowed: &[String],
) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(origin) = origin {
        return if allowed.iter().any(|a| a == origin) {
            Ok(())
        } else {
            Err(ApiError::CsrfViolation(format!(
                "origin {origin:?} is not allowed for {method} requests"
            )))
        };
    }
    match referer {
        Some(r) if allowed.iter().any(|a| referer_matches(r, a)) => Ok(()),
        Some(r) => Err(ApiError::CsrfViolation(format!(
            "referer {r:?} is not under an allowed origin"
        ))),
        None => Err(ApiError::CsrfViolation(format!(
            "{method} requests need an Origin or Referer header from an allowed origin"
        ))),
    }
}

/// Path prefixes the CSRF check guards, as in the real service. `/auth/*` is left out on
/// purpose (sign-out works without an Origin), as are `/`, `/health` and `/version`.
pub const CSRF_PREFIXES: &[&str] = &["/api", "/reference", "/blobs", "/admin"];

/// Whether `path` is one of [`CSRF_PREFIXES`] or lies below one (segment-wise, so `/apis`
/// is not under `/api`).
pub fn csrf_protected(path: &str) -> bool {
    CSRF_PREFIXES.iter().any(|p| match path.strip_prefix(p) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    })
}

/// Runs before routing and before any extractor, so a rejected request's body (a multipart
/// upload, say) is never read and its session never looked up.
pub async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !csrf_protected(req.uri().path()) {
        return next.run(req).await;
    }
    let h = req.headers();
    let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    if let Err(e) = check_csrf(
        req.method(),
        get(header::ORIGIN),
        get(header::REFERER),
        &state.csrf_origins,
    ) {
        tracing::warn!(reason = %e.message(), "CSRF check rejected a request");
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Vec<String> {
        csrf_origins(Environment::Development)
    }

    #[test]
    fn csrf_safe_methods_pass_without_headers() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(check_csrf(&m, None, None, &dev()).is_ok());
            assert!(check_csrf(&m, Some("http://evil.test"), None, &dev()).is_ok());
        }
    }

    #[test]
    fn csrf_unsafe_methods_need_allowed_origin() {
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            for o in [
                "http://localhost:3000",
                "http://localhost:3001",
                "http://127.0.0.1:3000",
                "http://127.0.0.1:3001",
            ] {
                assert!(check_csrf(&m, Some(o), None, &dev()).is_ok(), "{m} {o}");
            }
            for o in [
                "http://localhost:3002",
                "http://localhost:8080",
                "https://localhost:3000",
                "http://evil.test",
                "null",
                "http://localhost:3000/",
            ] {
                let e = check_csrf(&m, Some(o), None, &dev()).unwrap_err();
                assert_eq!(e.code(), "csrf_violation", "{m} {o}");
                assert_eq!(e.status(), StatusCode::FORBIDDEN);
            }
            let e = check_csrf(&m, None, None, &dev()).unwrap_err();
            assert_eq!(e.code(), "csrf_violation");
        }
    }

    #[test]
    fn csrf_origin_wins_over_referer() {
        // A bad Origin is not rescued by a good Referer.
        let r = check_csrf(
            &Method::POST,
            Some("http://evil.test"),
            Some("http://localhost:3000/page"),
            &dev(),
        );
        assert!(r.is_err());
    }

    #[test]
    fn csrf_referer_fallback() {
        let ok = [
            "http://localhost:3000",
            "http://localhost:3000/",
            "http://localhost:3000/settings?tab=1",
            "http://127.0.0.1:3001/x",
        ];
        for r in ok {
            assert!(
                check_csrf(&Method::POST, None, Some(r), &dev()).is_ok(),
                "{r}"
            );
        }
        let bad = [
            "http://localhost:3000.evil.test/",
            "http://localhost:30001/",
            "http://evil.test/http://localhost:3000",
            "",
        ];
        for r in bad {
            assert!(
                check_csrf(&Method::POST, None, Some(r), &dev()).is_err(),
                "{r}"
            );
        }
    }

    #[test]
    fn csrf_scope_is_api_reference_blobs_admin() {
        for p in [
            "/api",
            "/api/",
            "/api/blobs/upload",
            "/reference",
            "/reference/x",
            "/blobs",
            "/blobs/upload",
            "/admin",
            "/admin/db/health",
        ] {
            assert!(csrf_protected(p), "{p}");
        }
        for p in [
            "/",
            "/health",
            "/version",
            "/auth/signout",
            "/auth/session",
            "/apis",
            "/administrator",
            "/blobsx/upload",
            "/x/api",
        ] {
            assert!(!csrf_protected(p), "{p}");
        }
    }

    #[test]
    fn csrf_production_origins() {
        let prod = csrf_origins(Environment::Production);
        assert!(
            check_csrf(
                &Method::POST,
                Some("https://ignition.ecent.online"),
                None,
                &prod
            )
            .is_ok()
        );
        assert!(check_csrf(&Method::POST, Some("http://localhost:3000"), None, &prod).is_err());
        assert!(check_csrf(&Method::POST, Some("http://127.0.0.1:3000"), None, &prod).is_err());
    }

    #[test]
    fn cors_only_for_allowed_origins() {
        let allowed = cors_origins(Environment::Development);
        let h = cors_headers(Some("http://localhost:3000"), &allowed, None, true);
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).unwrap(),
            "true"
        );
        for o in [
            Some("http://evil.test"),
            Some("http://127.0.0.1:3000"),
            None,
        ] {
            let h = cors_headers(o, &allowed, None, true);
            assert!(
                h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
                "{o:?}"
            );
            assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        }
    }

    #[test]
    fn request_id_kept_or_generated() {
        let given = HeaderValue::from_static("abc-123");
        assert_eq!(resolve_request_id(Some(&given)), "abc-123");
        let generated = resolve_request_id(None);
        let parsed = uuid::Uuid::parse_str(generated.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        let empty = HeaderValue::from_static("");
        assert_ne!(resolve_request_id(Some(&empty)), "");
        let spaced = HeaderValue::from_static("a b");
        assert_ne!(resolve_request_id(Some(&spaced)), "a b");
    }
}
