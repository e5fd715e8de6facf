//! Router-level checks that need no database: the pool points at a closed port, so only
//! paths that never reach Postgres (or fall back when it is down) are exercised here.

use std::collections::HashMap;

use axum::body::{Body, to_bytes};
use axum::http::{Request, Response, StatusCode, header};
use ignition_api::{AppState, Config, router};
use serde_json::Value;
use tower::ServiceExt;

fn state(pairs: &[(&str, &str)]) -> AppState {
    let mut map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("DATABASE_URL".into())
        .or_insert_with(|| "postgres://nobody@127.0.0.1:1/none?connect_timeout=1".into());
    let config = Config::from_lookup(|k| map.get(k).cloned()).expect("config");
    let pool = ignition_api::db::build_pool(&config.database_url, 2).expect("pool");
    AppState::new(config, pool, None)
}

async fn send(state: &AppState, req: Request<Body>) -> (Response<Body>, Value) {
    let resp = router(state.clone()).oneshot(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (Response::from_parts(parts, Body::empty()), json)
}

fn get(uri: &str, host: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap()
}

fn request_id(resp: &Response<Body>) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("x-request-id on every response")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn unknown_route_is_json_404_with_request_id() {
    let s = state(&[]);
    let (resp, body) = send(&s, get("/does/not/exist", "localhost:8080")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let id = request_id(&resp);
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
}

#[tokio::test]
async fn incoming_request_id_is_echoed() {
    let s = state(&[]);
    let req = Request::get("/")
        .header("x-request-id", "trace-me-42")
        .body(Body::empty())
        .unwrap();
    let (resp, _) = send(&s, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(request_id(&resp), "trace-me-42");

    // Also on errors produced by middleware.
    let req = Request::post("/api/blobs/upload")
        .header("x-request-id", "csrf-trace")
        .body(Body::empty())
        .unwrap();
    let (resp, body) = send(&s, req).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "csrf_violation");
    assert_eq!(request_id(&resp), "csrf-trace");
}

/// A multipart body that would be a valid upload, so only CSRF can stop it.
fn upload(uri: &str) -> axum::http::request::Builder {
    Request::post(uri)
        .header(header::HOST, "localhost:8080")
        .header(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=b0undary",
        )
}

const UPLOAD_BODY: &str = "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; \
    filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b0undary--\r\n";

#[tokio::test]
async fn csrf_applies_even_with_the_bypass() {
    let s = state(&[("AUTH_DEV_BYPASS", "true")]);
    for (origin, referer, allowed) in [
        (None, None, false),
        (Some("http://evil.test"), None, false),
        (Some("http://localhost:3000"), None, true),
        (Some("http://127.0.0.1:3001"), None, true),
        (None, Some("http://localhost:3001/app"), true),
        (None, Some("http://localhost:3000.evil.test/"), false),
    ] {
        for uri in ["/api/blobs/upload", "/blobs/upload"] {
            let mut req = upload(uri);
            if let Some(o) = origin {
                req = req.header(header::ORIGIN, o);
            }
            if let Some(r) = referer {
                req = req.header(header::REFERER, r);
            }
            let (resp, body) = send(&s, req.body(Body::from(UPLOAD_BODY)).unwrap()).await;
            if allowed {
                // Past CSRF, the handler runs: without storage it answers 503.
                assert_eq!(
                    resp.status(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{uri} {origin:?} {referer:?}"
                );
                assert_eq!(body["error"], "storage_unavailable");
            } else {
                assert_eq!(
                    resp.status(),
                    StatusCode::FORBIDDEN,
                    "{uri} {origin:?} {referer:?}"
                );
                assert_eq!(body["error"], "csrf_violation");
            }
        }
    }
}

#[tokio::test]
async fn csrf_rejects_before_auth_and_body() {
    // No bypass and no session: were the body or the session looked at first, the answer
    // would be 401 or 422, not 403.
    let s = state(&[]);
    let req = upload("/api/blobs/upload")
        .body(Body::from("this is not multipart"))
        .unwrap();
    let (resp, body) = send(&s, req).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "csrf_violation");
    for (method, uri) in [
        ("POST", "/api/blobs/upload-url"),
        ("DELETE", "/api/blobs/00000000-0000-0000-0000-00000000abcd"),
        ("DELETE", "/blobs/00000000-0000-0000-0000-00000000abcd"),
        ("POST", "/admin/users"),
        ("POST", "/reference/anything"),
        ("PUT", "/api"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (resp, body) = send(&s, req).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(body["error"], "csrf_violation", "{method} {uri}");
    }
}

#[tokio::test]
async fn auth_and_public_routes_have_no_csrf() {
    let s = state(&[]);
    for (origin, referer) in [
        (None, None),
        (Some("http://evil.test"), None),
        (None, Some("http://evil.test/")),
    ] {
        let mut req = Request::post("/auth/signout").header(header::HOST, "localhost:8080");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        if let Some(r) = referer {
            req = req.header(header::REFERER, r);
        }
        let (resp, body) = send(&s, req.body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::OK, "{origin:?} {referer:?}");
        assert_eq!(body["success"], true);
        let cookie = resp.headers().get(header::SET_COOKIE).unwrap();
        assert!(cookie.to_str().unwrap().starts_with("session=;"));
    }
    // Unsafe methods on unprotected paths reach routing: 405 or 404, never csrf_violation.
    for (uri, want) in [
        ("/", StatusCode::METHOD_NOT_ALLOWED),
        ("/health", StatusCode::METHOD_NOT_ALLOWED),
        ("/version", StatusCode::METHOD_NOT_ALLOWED),
        ("/nowhere", StatusCode::NOT_FOUND),
    ] {
        let (resp, _) = send(&s, Request::post(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), want, "{uri}");
    }
}

#[tokio::test]
async fn old_blob_routes_are_gone() {
    let s = state(&[("AUTH_DEV_BYPASS", "true")]);
    let origin = |r: axum::http::request::Builder| {
        r.header(header::HOST, "localhost:8080")
            .header(header::ORIGIN, "http://localhost:3000")
    };
    // Uploading moved to `/upload`; the collection path only lists.
    let (resp, body) = send(
        &s,
        origin(Request::post("/api/blobs"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed");
    let (resp, _) = send(
        &s,
        origin(Request::post("/api/blobs/presign/upload"))
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (resp, _) = send(
        &s,
        get(
            "/api/blobs/00000000-0000-0000-0000-00000000abcd/presign",
            "localhost:8080",
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cors_preflight_only_for_dev_origins() {
    let s = state(&[]);
    let preflight = |origin: &str| {
        Request::options("/api/blobs/upload")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    for ok in ["http://localhost:3000", "http://localhost:3001"] {
        let (resp, _) = send(&s, preflight(ok)).await;
        let h = resp.headers();
        assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), ok);
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).unwrap(),
            "true"
        );
        request_id(&resp);
    }
    for bad in [
        "http://evil.test",
        "http://localhost:3002",
        "https://ignition.ecent.online",
    ] {
        let (resp, _) = send(&s, preflight(bad)).await;
        assert!(
            resp.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none(),
            "{bad}"
        );
    }
    let prod = state(&[("SERVER_ENVIRONMENT", "production")]);
    let (resp, _) = send(&prod, preflight("https://ignition.ecent.online")).await;
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_some()
    );
    let (resp, _) = send(&prod, preflight("http://localhost:3000")).await;
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn without_session_protected_routes_are_401() {
    let s = state(&[]);
    for uri in [
        "/api",
        "/admin",
        "/admin/db/health",
        "/api/blobs",
        "/api/blobs/",
        "/api/blobs/usage",
        "/blobs/",
        "/blobs/usage",
        "/api/blobs/00000000-0000-0000-0000-00000000abcd/download-url",
    ] {
        let (resp, body) = send(&s, get(uri, "localhost:8080")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(body["error"], "unauthorized");
    }
    let (resp, body) = send(&s, get("/auth/session", "localhost:8080")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body["user"].is_null());
}

#[tokio::test]
async fn bypass_follows_the_host_header() {
    let s = state(&[("AUTH_DEV_BYPASS", "true")]);
    for host in [
        "localhost",
        "localhost:8080",
        "127.0.0.1:8080",
        "localhost:3000",
    ] {
        let (resp, body) = send(&s, get("/admin", host)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{host}");
        assert_eq!(body["role_required"], "admin");
        let (_, body) = send(&s, get("/auth/session", host)).await;
        assert_eq!(body["user"]["id"], "00000000-0000-0000-0000-000000000001");
        assert_eq!(body["user"]["email"], "dev@localhost");
        assert_eq!(body["user"]["name"], "Local Dev User");
        assert_eq!(body["user"]["role"], "admin");
    }
    for host in [
        "localhost.example.com",
        "example.com",
        "127.0.0.1.nip.io:8080",
    ] {
        let (resp, _) = send(&s, get("/api", host)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{host}");
        let (_, body) = send(&s, get("/auth/session", host)).await;
        assert!(body["user"].is_null(), "{host}");
    }
}

#[tokio::test]
async fn blob_routes_without_storage_are_503() {
    let s = state(&[("AUTH_DEV_BYPASS", "true")]);
    for mount in ["/api/blobs", "/blobs"] {
        for path in [
            "",
            "/",
            "/usage",
            "/00000000-0000-0000-0000-00000000abcd",
            "/00000000-0000-0000-0000-00000000abcd/info",
            "/00000000-0000-0000-0000-00000000abcd/download-url",
        ] {
            let uri = format!("{mount}{path}");
            let (resp, body) = send(&s, get(&uri, "localhost:8080")).await;
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
            assert_eq!(body["error"], "storage_unavailable", "{uri}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("STORAGE_ENDPOINT"),
                "{uri}"
            );
        }
        let req = Request::post(format!("{mount}/upload-url"))
            .header(header::HOST, "localhost:8080")
            .header(header::ORIGIN, "http://localhost:3000")
            .body(Body::from(
                r#"{"filename":"a.txt","mime_type":"text/plain"}"#,
            ))
            .unwrap();
        let (resp, body) = send(&s, req).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{mount}");
        assert_eq!(body["error"], "storage_unavailable");
    }
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_404() {
    let s = state(&[("AUTH_DEV_BYPASS", "true")]);
    for mount in ["/api/blobs", "/blobs"] {
        for suffix in ["", "/info", "/download-url"] {
            let uri = format!("{mount}/not-a-blob{suffix}");
            let (resp, body) = send(&s, get(&uri, "localhost:8080")).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(body["error"], "not_found", "{uri}");
        }
        let req = Request::delete(format!("{mount}/not-a-blob"))
            .header(header::HOST, "localhost:8080")
            .header(header::ORIGIN, "http://localhost:3000")
            .body(Body::empty())
            .unwrap();
        let (resp, _) = send(&s, req).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{mount}");
    }
}

#[tokio::test]
async fn providers_empty_without_oauth() {
    let s = state(&[]);
    let (resp, body) = send(&s, get("/auth/providers", "localhost")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));

    let s = state(&[
        ("AUTH_OAUTH_GOOGLE_CLIENT_ID", "id"),
        ("AUTH_OAUTH_GOOGLE_CLIENT_SECRET", "secret"),
    ]);
    let (_, body) = send(&s, get("/auth/providers", "localhost")).await;
    assert_eq!(
        body,
        serde_json::json!([{ "id": "google", "name": "Google", "enabled": true }])
    );
}
