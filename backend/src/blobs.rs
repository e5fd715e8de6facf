//! Blob routes, mounted at `/api/blobs` and `/blobs`: per-user files in object storage,
//! metadata in the `blobs` table.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::{Storage, StorageError, extension_for, object_key, valid_category};

pub const DEFAULT_CATEGORY: &str = "files";
/// Upload size limit for `POST .../upload` (the whole multipart body).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;
/// Lifetime of the presigned upload and download URLs (five minutes, as the real service).
pub const PRESIGN_SECS: u64 = 300;
/// Where the blob routes are mounted; both serve the same handlers.
pub const MOUNTS: &[&str] = &["/api/blobs", "/blobs"];

/// A blob as every route shows it (upload, info, list).
#[derive(Debug, Clone, Serialize)]
pub struct BlobInfo {
    pub id: Uuid,
    pub key: String,
    pub category: String,
    pub filename: Option<String>,
    pub mime_type: String,
    pub size_bytes: i64,
    pub created_at: Timestamp,
    pub url: String,
}

const BLOB_COLUMNS: &str = "id, key, category, filename, content_type, size, created_at";

fn blob_from_row(r: &tokio_postgres::Row) -> BlobInfo {
    let id: Uuid = r.get(0);
    BlobInfo {
        id,
        key: r.get(1),
        category: r.get(2),
        filename: r.get(3),
        mime_type: r.get(4),
        size_bytes: r.get(5),
        created_at: r.get(6),
        url: format!("/api/blobs/{id}"),
    }
}

fn storage(state: &AppState) -> ApiResult<&Storage> {
    state.storage.as_ref().ok_or_else(|| {
        let why = state
            .config
            .storage_problem
            .clone()
            .unwrap_or_else(|| "STORAGE_ENDPOINT is not set".to_string());
        ApiError::StorageUnavailable(format!(
            "object storage is not configured ({why}); blob routes need STORAGE_ENDPOINT, \
             STORAGE_BUCKET, STORAGE_ACCESS_KEY_ID and STORAGE_SECRET_ACCESS_KEY"
        ))
    })
}

fn storage_error(e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::not_found("the blob's object is missing from storage"),
        StorageError::Transport(m) => {
            tracing::error!(error = %m, "object storage unreachable");
            ApiError::StorageUnavailable(format!("object storage unreachable: {m}"))
        }
        other => ApiError::internal(other.to_string()),
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("upload exceeds {MAX_UPLOAD_BYTES} bytes"))
    } else {
        ApiError::validation(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// Blob ids are UUIDs; anything else names no blob, so it is a 404 like an unknown id.
fn parse_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::not_found(format!("blob {raw:?} not found (ids are UUIDs)")))
}

/// Strips what must not reach a header or a log: control characters and path parts.
pub fn clean_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(255)
        .collect();
    let cleaned = cleaned.trim().to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// `type/subtype` (parameters allowed) that can travel as a `Content-Type` header.
pub fn valid_mime_type(m: &str) -> bool {
    let essence = m.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((t, s)) => {
            !t.is_empty()
                && !s.is_empty()
                && !s.contains('/')
                && essence.bytes().all(|b| b.is_ascii_graphic())
                && HeaderValue::from_str(m).is_ok()
        }
        None => false,
    }
}

/// A category from the caller, or the default; 422 when it cannot be a key segment.
fn category_or_default(c: Option<String>) -> ApiResult<String> {
    match c.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()) {
        None => Ok(DEFAULT_CATEGORY.to_string()),
        Some(c) if valid_category(&c) => Ok(c),
        Some(c) => Err(ApiError::validation(format!(
            "category {c:?} must be 1-64 characters of a-z, 0-9, '-' or '_'"
        ))),
    }
}

/// The optional `metadata` part of an upload: a JSON object. `category` is the only key
/// the reference backend uses; others are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct UploadMetadata {
    pub category: Option<String>,
}

pub fn parse_metadata(raw: &str) -> ApiResult<UploadMetadata> {
    if raw.trim().is_empty() {
        return Ok(UploadMetadata::default());
    }
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::validation(format!("`metadata` is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::validation("`metadata` must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::validation(format!("`metadata` is invalid: {e}")))
}

async fn load_blob(state: &AppState, user: Uuid, id: Uuid) -> ApiResult<BlobInfo> {
    let client = state.pool.get().await?;
    let sql = format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE id = $1 AND user_id = $2");
    let row = client.query_opt(&sql, &[&id, &user]).await?;
    row.as_ref()
        .map(blob_from_row)
        .ok_or_else(|| ApiError::not_found(format!("blob {id} not found")))
}

/// `POST .../upload`: multipart with a `file` part and an optional `metadata` part (JSON).
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    mut multipart: Multipart,
) -> ApiResult<Json<BlobInfo>> {
    let storage = storage(&state)?;
    let mut file: Option<(Option<String>, Option<String>, Bytes)> = None;
    let mut metadata = UploadMetadata::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                let filename = field.file_name().and_then(clean_filename);
                let ct = field.content_type().map(str::to_string);
                let data = field.bytes().await.map_err(multipart_error)?;
                file = Some((filename, ct, data));
            }
            Some("metadata") => {
                metadata = parse_metadata(&field.text().await.map_err(multipart_error)?)?;
            }
            _ => {}
        }
    }
    let (filename, content_type, data) =
        file.ok_or_else(|| ApiError::validation("multipart field `file` is required"))?;
    let category = category_or_default(metadata.category)?;
    let content_type = content_type
        .filter(|c| valid_mime_type(c))
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let id = Uuid::new_v4();
    let key = object_key(
        &user.id,
        &category,
        &id,
        &extension_for(filename.as_deref()),
    );
    let size = data.len() as i64;

    storage
        .put(&key, data, &content_type)
        .await
        .map_err(storage_error)?;

    let client = state.pool.get().await?;
    let sql = format!(
        "INSERT INTO blobs (id, user_id, key, category, filename, content_type, size) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {BLOB_COLUMNS}"
    );
    let inserted = client
        .query_one(
            &sql,
            &[
                &id,
                &user.id,
                &key,
                &category,
                &filename,
                &content_type,
                &size,
            ],
        )
        .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) => {
            // Do not leave an object that no row points to.
            if let Err(de) = storage.delete(&key).await {
                tracing::warn!(error = %de, key, "could not remove the orphaned object");
            }
            let fk = e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION);
            return Err(if fk {
                ApiError::internal(format!(
                    "user {} has no row in `users`; the dev user must be seeded before writes",
                    user.id
                ))
            } else {
                ApiError::from(e)
            });
        }
    };
    let blob = blob_from_row(&row);
    tracing::info!(blob_id = %blob.id, key = %blob.key, size, "blob uploaded");
    Ok(Json(blob))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub category: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET .../` (and without the slash): the caller's blobs, newest first.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    storage(&state)?;
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(ApiError::validation(
            "limit must be 1..=1000 and offset >= 0",
        ));
    }
    let client = state.pool.get().await?;
    let sql = format!(
        "SELECT {BLOB_COLUMNS} FROM blobs WHERE user_id = $1 \
         AND ($2::text IS NULL OR category = $2) \
         ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    );
    let rows = client
        .query(&sql, &[&user.id, &q.category, &limit, &offset])
        .await?;
    let blobs: Vec<BlobInfo> = rows.iter().map(blob_from_row).collect();
    Ok(Json(json!({ "count": blobs.len(), "blobs": blobs })))
}

/// `GET .../usage`: count and total bytes of the caller's blobs.
pub async fn usage(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Value>> {
    storage(&state)?;
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(sum(size), 0)::BIGINT FROM blobs WHERE user_id = $1",
            &[&user.id],
        )
        .await?;
    let count: i64 = row.get(0);
    let total: i64 = row.get(1);
    Ok(Json(json!({ "count": count, "total_bytes": total })))
}

/// `GET .../{id}`: the bytes.
pub async fn download(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let storage = storage(&state)?;
    let blob = load_blob(&state, user.id, id).await?;
    let (bytes, _) = storage.get(&blob.key).await.map_err(storage_error)?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&blob.mime_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Some(name) = blob.filename.as_deref()
        && let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    Ok(resp)
}

/// `GET .../{id}/info`: the metadata.
pub async fn info(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<BlobInfo>> {
    let id = parse_id(&id)?;
    storage(&state)?;
    load_blob(&state, user.id, id).await.map(Json)
}

/// `DELETE .../{id}`: removes the object, then the row.
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let storage = storage(&state)?;
    let blob = load_blob(&state, user.id, id).await?;
    storage.delete(&blob.key).await.map_err(storage_error)?;
    let client = state.pool.get().await?;
    client
        .execute(
            "DELETE FROM blobs WHERE id = $1 AND user_id = $2",
            &[&id, &user.id],
        )
        .await?;
    tracing::info!(blob_id = %id, key = %blob.key, "blob deleted");
    Ok(Json(json!({ "deleted": true, "id": id })))
}

fn expires_at(secs: u64) -> String {
    Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs as i64))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub struct UploadUrlRequest {
    pub filename: String,
    pub mime_type: String,
    pub category: Option<String>,
}

/// The JSON body of `POST .../upload-url`, with every problem as one 422 message.
pub fn parse_upload_url_request(body: &[u8]) -> ApiResult<UploadUrlRequest> {
    let req: UploadUrlRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(format!(
            "body must be JSON {{\"filename\": ..., \"mime_type\": ...}}: {e}"
        ))
    })?;
    if clean_filename(&req.filename).is_none() {
        return Err(ApiError::validation("`filename` must not be empty"));
    }
    if !valid_mime_type(&req.mime_type) {
        return Err(ApiError::validation(format!(
            "`mime_type` {:?} is not a type/subtype such as text/plain",
            req.mime_type
        )));
    }
    Ok(req)
}

/// `POST .../upload-url`: a URL the client PUTs the bytes to directly (five minutes). The
/// key is reserved under the caller's prefix; no `blobs` row is written for it.
pub async fn upload_url(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let storage = storage(&state)?;
    let req = parse_upload_url_request(&body)?;
    let category = category_or_default(req.category)?;
    let filename = clean_filename(&req.filename);
    let id = Uuid::new_v4();
    let key = object_key(
        &user.id,
        &category,
        &id,
        &extension_for(filename.as_deref()),
    );
    let url = storage.presign_put(&key, Duration::from_secs(PRESIGN_SECS));
    Ok(Json(json!({
        "url": url.as_str(),
        "method": "PUT",
        "expires_at": expires_at(PRESIGN_SECS),
        "expires_in": PRESIGN_SECS,
        "headers": { "content-type": req.mime_type },
        "id": id,
        "key": key,
    })))
}

/// `GET .../{id}/download-url`: a URL that downloads the blob without a session (five
/// minutes).
pub async fn download_url(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let storage = storage(&state)?;
    let blob = load_blob(&state, user.id, id).await?;
    let url = storage.presign_get(&blob.key, Duration::from_secs(PRESIGN_SECS));
    Ok(Json(json!({
        "url": url.as_str(),
        "method": "GET",
        "expires_at": expires_at(PRESIGN_SECS),
        "expires_in": PRESIGN_SECS,
        "id": blob.id,
        "key": blob.key,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_cleaned() {
        assert_eq!(clean_filename("a.png").as_deref(), Some("a.png"));
        assert_eq!(
            clean_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(clean_filename("C:\\x\\y.txt").as_deref(), Some("y.txt"));
        assert_eq!(clean_filename("a\"b\n.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_filename("  "), None);
    }

    #[test]
    fn mime_types() {
        for ok in ["text/plain", "image/png", "text/plain; charset=utf-8"] {
            assert!(valid_mime_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "a/b/c",
            "text/pl ain",
            "t\n/x",
        ] {
            assert!(!valid_mime_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn upload_metadata() {
        assert!(parse_metadata("").unwrap().category.is_none());
        assert!(parse_metadata("{}").unwrap().category.is_none());
        let m = parse_metadata(r#"{"category":"avatars","note":"ignored"}"#).unwrap();
        assert_eq!(m.category.as_deref(), Some("avatars"));
        for bad in ["not json", "[1]", r#"{"category":3}"#] {
            let e = parse_metadata(bad).unwrap_err();
            assert_eq!(e.code(), "validation_error", "{bad}");
        }
        assert_eq!(category_or_default(None).unwrap(), DEFAULT_CATEGORY);
        assert_eq!(
            category_or_default(Some(" ".into())).unwrap(),
            DEFAULT_CATEGORY
        );
        assert!(category_or_default(Some("../etc".into())).is_err());
    }

    #[test]
    fn upload_url_body() {
        let r =
            parse_upload_url_request(br#"{"filename":"a.txt","mime_type":"text/plain"}"#).unwrap();
        assert_eq!(
            (r.filename.as_str(), r.mime_type.as_str()),
            ("a.txt", "text/plain")
        );
        for bad in [
            &b""[..],
            b"{}",
            br#"{"filename":"a.txt"}"#,
            br#"{"mime_type":"text/plain"}"#,
            br#"{"filename":" ","mime_type":"text/plain"}"#,
            br#"{"filename":"a.txt","mime_type":"plain"}"#,
        ] {
            let e = parse_upload_url_request(bad).unwrap_err();
            assert_eq!(
                e.code(),
                "validation_error",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
