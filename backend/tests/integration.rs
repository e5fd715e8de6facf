//! End-to-end checks against a real Postgres and a real S3-compatible store.
//!
//! Reads IGNITION_TEST_DATABASE_URL and IGNITION_TEST_STORAGE_{ENDPOINT,BUCKET,
//! ACCESS_KEY_ID,SECRET_ACCESS_KEY,REGION}. Without them each test prints that it was
//! skipped and passes. The app runs in-process on 127.0.0.1:0, built by the same
//! `prepare` + `router` functions the binary uses.

use std::collections::HashMap;
use std::net::SocketAddr;

use ignition_api::{AppState, Config, db, prepare, router};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;
use uuid::Uuid;

const DEV_ORIGIN: &str = "http://localhost:3000";
const DEV_USER: &str = "00000000-0000-0000-0000-000000000001";

struct TestEnv {
    database_url: String,
    storage: Option<[(&'static str, String); 5]>,
}

/// Written straight to stderr so the note shows even while libtest captures output.
fn skip(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {msg}");
}

fn test_env(test: &str, needs_storage: bool) -> Option<TestEnv> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(database_url) = var("IGNITION_TEST_DATABASE_URL") else {
        skip(&format!("{test}: IGNITION_TEST_DATABASE_URL is not set"));
        return None;
    };
    let storage = (|| {
        Some([
            ("STORAGE_ENDPOINT", var("IGNITION_TEST_STORAGE_ENDPOINT")?),
            ("STORAGE_BUCKET", var("IGNITION_TEST_STORAGE_BUCKET")?),
            (
                "STORAGE_ACCESS_KEY_ID",
                var("IGNITION_TEST_STORAGE_ACCESS_KEY_ID")?,
            ),
            (
                "STORAGE_SECRET_ACCESS_KEY",
                var("IGNITION_TEST_STORAGE_SECRET_ACCESS_KEY")?,
            ),
            (
                "STORAGE_REGION",
                var("IGNITION_TEST_STORAGE_REGION").unwrap_or_else(|| "us-east-1".into()),
            ),
        ])
    })();
    if needs_storage && storage.is_none() {
        skip(&format!(
            "{test}: the IGNITION_TEST_STORAGE_* variables are not all set"
        ));
        return None;
    }
    Some(TestEnv {
        database_url,
        storage,
    })
}

fn config(env: &TestEnv, bypass: bool, with_storage: bool) -> Config {
    let mut map = HashMap::new();
    map.insert("DATABASE_URL".to_string(), env.database_url.clone());
    map.insert("SERVER_ENVIRONMENT".to_string(), "development".to_string());
    map.insert("AUTH_DEV_BYPASS".to_string(), bypass.to_string());
    if with_storage && let Some(vars) = &env.storage {
        for (k, v) in vars {
            map.insert(k.to_string(), v.clone());
        }
    }
    Config::from_lookup(|k| map.get(k).cloned()).expect("valid test config")
}

struct App {
    base: String,
    state: AppState,
    http: reqwest::Client,
}

async fn start(config: Config) -> App {
    let state = prepare(config).await.expect("start-up (connect + migrate)");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    App {
        base: format!("http://{addr}"),
        state,
        http: reqwest::Client::new(),
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
        let mut req = self.http.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        finish(req).await
    }

    async fn db(&self) -> deadpool_postgres::Client {
        self.state.pool.get().await.expect("db connection")
    }
}

async fn finish(req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

async fn seed_dev_user(app: &App) {
    app.db()
        .await
        .execute(
            "INSERT INTO users (id, email, name, role, approved, age_verified, tos_accepted) \
             VALUES ($1, 'dev@localhost', 'Local Dev User', 'admin', TRUE, TRUE, TRUE) \
             ON CONFLICT (id) DO NOTHING",
            &[&Uuid::parse_str(DEV_USER).unwrap()],
        )
        .await
        .expect("seed dev user");
}

#[tokio::test]
async fn health_reports_schema_version_and_migrations_are_idempotent() {
    let Some(env) = test_env("health_and_migrations", false) else {
        return;
    };
    let app = start(config(&env, false, false)).await;
    let latest = db::latest_embedded_version().expect("at least one migration");

    let (status, headers, body) = app.get("/health", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["schema_version"], latest);
    assert!(body["version"].is_string() && body["timestamp"].is_string());
    assert!(headers.contains_key("x-request-id"));

    let (status, _, body) = app.get("/version", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["schema_version"], latest);

    let count = |app: &App| {
        let pool = app.state.pool.clone();
        async move {
            let c = pool.get().await.unwrap();
            let row = c
                .query_one(
                    "SELECT count(*), bool_and(success), min(length(checksum)) FROM _sqlx_migrations",
                    &[],
                )
                .await
                .unwrap();
            (
                row.get::<_, i64>(0),
                row.get::<_, bool>(1),
                row.get::<_, i32>(2),
            )
        }
    };
    let before = count(&app).await;
    assert_eq!(before.0 as usize, db::MIGRATIONS.len());
    assert!(before.1, "every migration recorded as successful");
    assert_eq!(before.2, 48, "sqlx-style SHA-384 checksums");

    // A second start applies nothing and succeeds.
    let again = start(config(&env, false, false)).await;
    assert_eq!(count(&again).await, before);
    assert_eq!(db::migrate(&again.state.pool).await.unwrap(), 0);
    let (status, _, body) = again.get("/health", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["schema_version"], latest);
}

#[tokio::test]
async fn auth_with_bypass_on_and_off() {
    let Some(env) = test_env("auth_with_bypass_on_and_off", false) else {
        return;
    };

    // --- bypass on: local Host gets the dev identity, any other Host does not.
    let on = start(config(&env, true, false)).await;
    let (status, _, body) = on.get("/auth/session", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["id"], DEV_USER);
    assert_eq!(body["user"]["email"], "dev@localhost");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(on.get("/api", &[]).await.0, StatusCode::OK);
    let (status, _, body) = on.get("/admin", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["role_required"], "admin");
    let (status, _, body) = on.get("/admin/db/health", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert!(body["total_size_estimate"].is_string(), "{body}");
    assert!(body["total_size_bytes"].as_i64().unwrap() > 0, "{body}");
    let tables = body["tables"].as_array().expect("tables list");
    let names: Vec<&str> = tables.iter().filter_map(|t| t["name"].as_str()).collect();
    for want in [
        "_sqlx_migrations",
        "blobs",
        "sessions",
        "user_roles",
        "users",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let migrations = tables
        .iter()
        .find(|t| t["name"] == "_sqlx_migrations")
        .unwrap();
    assert_eq!(migrations["row_count"], db::MIGRATIONS.len());
    assert_eq!(on.get("/admin/users", &[]).await.0, StatusCode::OK);
    for host in ["localhost.example.com", "example.com"] {
        let (_, _, body) = on.get("/auth/session", &[("host", host)]).await;
        assert!(body["user"].is_null(), "{host}");
        assert_eq!(
            on.get("/api", &[("host", host)]).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    // --- bypass off: cookie sessions only.
    let off = start(config(&env, false, false)).await;
    let (_, _, body) = off.get("/auth/session", &[]).await;
    assert!(body["user"].is_null());
    let (status, _, body) = off.get("/api", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(off.get("/admin", &[]).await.0, StatusCode::UNAUTHORIZED);

    let user_id = Uuid::new_v4();
    let email = format!("it-{user_id}@example.test");
    let token = format!("it-token-{}", Uuid::new_v4());
    let db = off.db().await;
    db.execute(
        "INSERT INTO users (id, email, name) VALUES ($1, $2, 'Integration User')",
        &[&user_id, &email],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO sessions (token, user_id, expires_at) VALUES ($1, $2, now() + interval '1 hour')",
        &[&token, &user_id],
    )
    .await
    .unwrap();
    let cookie = format!("session={token}");
    let with_cookie = [("cookie", cookie.as_str())];

    let (_, _, body) = off.get("/auth/session", &with_cookie).await;
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(off.get("/api", &with_cookie).await.0, StatusCode::OK);
    let (status, _, body) = off.get("/admin", &with_cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");

    // Admin through the role list.
    db.execute(
        "INSERT INTO user_roles (user_id, role) VALUES ($1, 'admin')",
        &[&user_id],
    )
    .await
    .unwrap();
    assert_eq!(off.get("/admin", &with_cookie).await.0, StatusCode::OK);

    // Non-admins are refused the admin routes, db health included.
    let other_id = Uuid::new_v4();
    let other_token = format!("it-token-{}", Uuid::new_v4());
    db.execute(
        "INSERT INTO users (id, email) VALUES ($1, $2)",
        &[&other_id, &format!("it-{other_id}@example.test")],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO sessions (token, user_id, expires_at) VALUES ($1, $2, now() + interval '1 hour')",
        &[&other_token, &other_id],
    )
    .await
    .unwrap();
    let other_cookie = format!("session={other_token}");
    let (status, _, body) = off
        .get("/admin/db/health", &[("cookie", other_cookie.as_str())])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    assert_eq!(
        off.get("/admin/db/health", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    db.execute("DELETE FROM users WHERE id = $1", &[&other_id])
        .await
        .unwrap();

    // Sign-out needs no Origin (`/auth/*` is outside the CSRF scope); the row and the
    // cookie go.
    let (status, headers, _) = finish(
        off.http
            .post(off.url("/auth/signout"))
            .header("cookie", &cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(set_cookie.starts_with("session=;") && set_cookie.contains("Max-Age=0"));
    let left: i64 = db
        .query_one("SELECT count(*) FROM sessions WHERE token = $1", &[&token])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert_eq!(
        off.get("/api", &with_cookie).await.0,
        StatusCode::UNAUTHORIZED
    );

    db.execute("DELETE FROM users WHERE id = $1", &[&user_id])
        .await
        .unwrap();
}

fn multipart(boundary: &str, filename: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n\
             {{\"category\":\"it-tests\"}}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn blob_round_trip() {
    let Some(env) = test_env("blob_round_trip", true) else {
        return;
    };
    let app = start(config(&env, true, true)).await;
    let storage = app.state.storage.clone().expect("storage configured");
    if !storage.bucket_exists().await.expect("reach object storage") {
        storage.create_bucket().await.expect("create test bucket");
    }
    seed_dev_user(&app).await;

    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let boundary = "itboundary7d1f";
    let upload = |mount: &str| {
        app.http
            .post(app.url(&format!("{mount}/upload")))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(multipart(boundary, "sample.PNG", "image/png", &data))
    };

    // No Origin: CSRF stops it even with the bypass.
    let (status, _, body) = finish(upload("/api/blobs")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "csrf_violation");

    // Both mounts serve the same blobs.
    for (mount, other) in [("/api/blobs", "/blobs"), ("/blobs", "/api/blobs")] {
        let (status, _, blob) = finish(upload(mount).header("origin", DEV_ORIGIN)).await;
        assert_eq!(status, StatusCode::OK, "{mount}: {blob}");
        let id = blob["id"].as_str().unwrap().to_string();
        let key = blob["key"].as_str().unwrap().to_string();
        assert_eq!(key, format!("{DEV_USER}/it-tests/{id}.png"));
        assert_eq!(blob["size_bytes"], data.len());
        assert_eq!(blob["mime_type"], "image/png");
        assert_eq!(blob["category"], "it-tests");

        let resp = app
            .http
            .get(app.url(&format!("{other}/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/png");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());

        // info and list show the same shape as the upload answer.
        let (status, _, info) = app.get(&format!("{other}/{id}/info"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info, blob);
        for list_path in [format!("{mount}/"), other.to_string()] {
            let (status, _, list) = app
                .get(&format!("{list_path}?category=it-tests"), &[])
                .await;
            assert_eq!(status, StatusCode::OK, "{list_path}");
            let listed = list["blobs"].as_array().unwrap();
            assert_eq!(
                listed.iter().find(|b| b["id"] == id.as_str()),
                Some(&blob),
                "{list_path}"
            );
        }
        let (_, _, usage) = app.get(&format!("{mount}/usage"), &[]).await;
        assert!(usage["count"].as_i64().unwrap() >= 1);
        assert!(usage["total_bytes"].as_i64().unwrap() >= data.len() as i64);

        // Presigned download works without a session, for five minutes.
        let (status, _, pre) = app.get(&format!("{mount}/{id}/download-url"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{pre}");
        assert_eq!(pre["method"], "GET");
        assert_eq!(pre["expires_in"], 300);
        let expires: jiff::Timestamp = pre["expires_at"].as_str().unwrap().parse().unwrap();
        let left = expires.duration_since(jiff::Timestamp::now()).as_secs();
        assert!((290..=300).contains(&left), "{left}");
        let fetched = reqwest::get(pre["url"].as_str().unwrap()).await.unwrap();
        assert_eq!(fetched.status(), StatusCode::OK);
        assert_eq!(fetched.bytes().await.unwrap().as_ref(), data.as_slice());

        // Delete, then it is gone from both the table and storage, on both mounts.
        let (status, _, body) = finish(
            app.http
                .delete(app.url(&format!("{mount}/{id}")))
                .header("origin", DEV_ORIGIN),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["deleted"], true);
        for m in [mount, other] {
            for suffix in ["", "/info", "/download-url"] {
                let (status, _, body) = app.get(&format!("{m}/{id}{suffix}"), &[]).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{m}/{id}{suffix}");
                assert_eq!(body["error"], "not_found");
            }
        }
        let (status, _, _) = finish(
            app.http
                .delete(app.url(&format!("{mount}/{id}")))
                .header("origin", DEV_ORIGIN),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(matches!(
            storage.get(&key).await,
            Err(ignition_api::storage::StorageError::NotFound)
        ));
    }

    // Bad metadata is refused before anything is stored.
    let bad_meta = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n\
         {{\"category\":\"../etc\"}}\r\n--{boundary}\r\nContent-Disposition: form-data; \
         name=\"file\"; filename=\"x.txt\"\r\n\r\nx\r\n--{boundary}--\r\n"
    );
    let (status, _, body) = finish(
        app.http
            .post(app.url("/api/blobs/upload"))
            .header("origin", DEV_ORIGIN)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(bad_meta),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "validation_error");

    // Presigned upload: PUT the bytes straight to storage.
    let (status, _, pu) = finish(
        app.http
            .post(app.url("/api/blobs/upload-url"))
            .header("origin", DEV_ORIGIN)
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"filename":"direct.txt","mime_type":"text/plain"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pu}");
    assert_eq!(pu["method"], "PUT");
    assert_eq!(pu["expires_in"], 300);
    assert!(pu["expires_at"].is_string());
    let direct_key = pu["key"].as_str().unwrap();
    assert!(direct_key.starts_with(&format!("{DEV_USER}/files/")));
    assert!(direct_key.ends_with(".txt"));
    let put = reqwest::Client::new()
        .put(pu["url"].as_str().unwrap())
        .header(header::CONTENT_TYPE, "text/plain")
        .body("direct upload")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "presigned PUT: {}", put.status());
    let (bytes, _) = storage.get(direct_key).await.unwrap();
    assert_eq!(bytes.as_ref(), b"direct upload");
    storage.delete(direct_key).await.unwrap();

    let (status, _, body) = finish(
        app.http
            .post(app.url("/blobs/upload-url"))
            .header("origin", DEV_ORIGIN)
            .body(r#"{"filename":"direct.txt"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "validation_error");
}

#[tokio::test]
async fn failed_migration_aborts_and_is_rolled_back() {
    let Some(env) = test_env("failed_migration_aborts_and_is_rolled_back", false) else {
        return;
    };
    let Ok(mut url) = url::Url::parse(&env.database_url) else {
        skip("failed_migration_aborts_and_is_rolled_back: database URL is not URL-shaped");
        return;
    };
    let admin = db::build_pool(&env.database_url, 1).unwrap();
    let admin = admin.get().await.expect("db connection");
    let name = format!("ignition_it_{}", Uuid::new_v4().simple());
    if let Err(e) = admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
    {
        skip(&format!(
            "failed_migration_aborts_and_is_rolled_back: cannot create a scratch database ({e})"
        ));
        return;
    }
    url.set_path(&format!("/{name}"));
    let pool = db::build_pool(url.as_str(), 2).unwrap();

    let migrations = [
        db::EmbeddedMigration {
            version: 1,
            description: "good",
            sql: "CREATE TABLE t_good (id INT)",
        },
        db::EmbeddedMigration {
            version: 2,
            description: "bad",
            sql: "CREATE TABLE t_bad (id INT); SELECT no_such_function()",
        },
    ];
    let err = db::migrate_with(&pool, &migrations).await.unwrap_err();
    assert!(matches!(err, db::DbError::Migration(_)), "{err}");
    assert!(err.to_string().contains("no_such_function"), "{err}");
    {
        let c = pool.get().await.unwrap();
        let versions: Vec<i64> = c
            .query("SELECT version FROM _sqlx_migrations ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1], "only the good migration is recorded");
        let bad_table: Option<String> = c
            .query_one("SELECT to_regclass('t_bad')::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(bad_table, None, "the failed migration was rolled back");
    }
    // The binary's own migrations refuse a database migrated by something else.
    let err = db::migrate(&pool).await.unwrap_err();
    assert!(err.to_string().contains("not in this binary"), "{err}");

    pool.close();
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}
