//! `/api/blobs`: per-user files in object storage, metadata in the `blobs` table.

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
/// Upload size limit for `POST /api/blobs` (the whole multipart body).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_PRESIGN_SECS: u64 = 900;
/// SigV4 presigned URLs live at most seven days.
pub const MAX_PRESIGN_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize)]
pub struct BlobInfo {
    pub id: Uuid,
    pub key: String,
    pub category: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
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
        content_type: r.get(4),
        size: r.get(5),
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

fn parse_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::validation(format!("invalid blob id {raw:?}")))
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

async fn load_blob(state: &AppState, user: Uuid, id: Uuid) -> ApiResult<BlobInfo> {
    let client = state.pool.get().await?;
    let sql = format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE id = $1 AND user_id = $2");
    let row = client.query_opt(&sql, &[&id, &user]).await?;
    row.as_ref()
        .map(blob_from_row)
        .ok_or_else(|| ApiError::not_found(format!("blob {id} not found")))
}

/// `POST /api/blobs`: multipart with a `file` field and an optional `category` field.
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    mut multipart: Multipart,
) -> ApiResult<Response> {
    let storage = storage(&state)?;
    let mut file: Option<(Option<String>, Option<String>, Bytes)> = None;
    let mut category: Option<String> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                let filename = field.file_name().and_then(clean_filename);
                let ct = field.content_type().map(str::to_string);
                let data = field.bytes().await.map_err(multipart_error)?;
                file = Some((filename, ct, data));
            }
            Some("category") => {
                category = Some(
                    field
                        .text()
                        .await
                        .map_err(multipart_error)?
                        .trim()
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    let (filename, content_type, data) =
        file.ok_or_else(|| ApiError::validation("multipart field `file` is required"))?;
    let category = match category.filter(|c| !c.is_empty()) {
        None => DEFAULT_CATEGORY.to_string(),
        Some(c) if valid_category(&c) => c,
        Some(c) => {
            return Err(ApiError::validation(format!(
                "category {c:?} must be 1-64 characters of a-z, 0-9, '-' or '_'"
            )));
        }
    };
    let content_type = content_type
        .filter(|c| HeaderValue::from_str(c).is_ok())
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
    Ok((StatusCode::CREATED, Json(blob)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub category: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/blobs`: the caller's blobs, newest first.
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

/// `GET /api/blobs/usage`: count and total bytes of the caller's blobs.
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

/// `GET /api/blobs/{id}`: the bytes.
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
        HeaderValue::from_str(&blob.content_type)
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

/// `GET /api/blobs/{id}/info`: the metadata.
pub async fn info(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<BlobInfo>> {
    let id = parse_id(&id)?;
    storage(&state)?;
    load_blob(&state, user.id, id).await.map(Json)
}

/// `DELETE /api/blobs/{id}`: removes the object, then the row.
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

fn expiry(requested: Option<u64>) -> ApiResult<u64> {
    let secs = requested.unwrap_or(DEFAULT_PRESIGN_SECS);
    if !(1..=MAX_PRESIGN_SECS).contains(&secs) {
        return Err(ApiError::validation(format!(
            "expires_in must be between 1 and {MAX_PRESIGN_SECS} seconds"
        )));
    }
    Ok(secs)
}

fn expires_at(secs: u64) -> String {
    Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs as i64))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
pub struct PresignUploadRequest {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub category: Option<String>,
    pub expires_in: Option<u64>,
}

/// `POST /api/blobs/presign/upload`: a URL the client PUTs the bytes to directly. The key
/// is reserved under the caller's prefix; no `blobs` row is written for it.
pub async fn presign_upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let storage = storage(&state)?;
    let req: PresignUploadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PresignUploadRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))?
    };
    let category = req
        .category
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| DEFAULT_CATEGORY.to_string());
    if !valid_category(&category) {
        return Err(ApiError::validation(format!(
            "category {category:?} must be 1-64 characters of a-z, 0-9, '-' or '_'"
        )));
    }
    let secs = expiry(req.expires_in)?;
    let filename = req.filename.as_deref().and_then(clean_filename);
    let id = Uuid::new_v4();
    let key = object_key(
        &user.id,
        &category,
        &id,
        &extension_for(filename.as_deref()),
    );
    let url = storage.presign_put(&key, Duration::from_secs(secs));
    let mut headers = serde_json::Map::new();
    if let Some(ct) = req.content_type.filter(|c| !c.is_empty()) {
        headers.insert("content-type".into(), Value::String(ct));
    }
    Ok(Json(json!({
        "id": id,
        "key": key,
        "url": url.as_str(),
        "method": "PUT",
        "headers": headers,
        "expires_in": secs,
        "expires_at": expires_at(secs),
    })))
}

#[derive(Debug, Deserialize)]
pub struct PresignQuery {
    pub expires_in: Option<u64>,
}

/// `GET /api/blobs/{id}/presign`: a URL that downloads the blob without a session.
pub async fn presign_download(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Query(q): Query<PresignQuery>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let storage = storage(&state)?;
    let secs = expiry(q.expires_in)?;
    let blob = load_blob(&state, user.id, id).await?;
    let url = storage.presign_get(&blob.key, Duration::from_secs(secs));
    Ok(Json(json!({
        "id": blob.id,
        "key": blob.key,
        "url": url.as_str(),
        "method": "GET",
        "expires_in": secs,
        "expires_at": expires_at(secs),
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
    fn presign_expiry_bounds() {
        assert_eq!(expiry(None).unwrap(), DEFAULT_PRESIGN_SECS);
        assert_eq!(expiry(Some(60)).unwrap(), 60);
        assert!(expiry(Some(0)).is_err());
        assert!(expiry(Some(MAX_PRESIGN_SECS + 1)).is_err());
    }
}
