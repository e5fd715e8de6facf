//! S3-compatible object storage, path-style, SigV4 (query-string presigned requests sent
//! with a rustls HTTP client).

use std::time::Duration;

use bytes::Bytes;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;

use crate::config::StorageConfig;

/// Lifetime of the URLs the backend signs for its own requests.
const INTERNAL_SIGN_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Storage {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
    endpoint: String,
}

#[derive(Debug)]
pub enum StorageError {
    NotFound,
    Config(String),
    Transport(String),
    Status { status: u16, body: String },
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::NotFound => f.write_str("object not found"),
            StorageError::Config(e) => write!(f, "storage configuration: {e}"),
            StorageError::Transport(e) => write!(f, "storage request failed: {e}"),
            StorageError::Status { status, body } => {
                write!(f, "storage answered HTTP {status}: {body}")
            }
        }
    }
}

impl std::error::Error for StorageError {}

fn transport(e: reqwest::Error) -> StorageError {
    // reqwest hides the cause (connection refused, ...) behind `source()`.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    StorageError::Transport(msg)
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response, StorageError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status.as_u16() == 404 {
        return Err(StorageError::NotFound);
    }
    let mut body = resp.text().await.unwrap_or_default();
    body.truncate(500);
    Err(StorageError::Status {
        status: status.as_u16(),
        body,
    })
}

impl Storage {
    pub fn new(cfg: &StorageConfig) -> Result<Self, StorageError> {
        let endpoint = Url::parse(&cfg.endpoint).map_err(|e| {
            StorageError::Config(format!("STORAGE_ENDPOINT {:?}: {e}", cfg.endpoint))
        })?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            cfg.bucket.clone(),
            cfg.region.clone(),
        )
        .map_err(|e| StorageError::Config(format!("bucket {:?}: {e}", cfg.bucket)))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| StorageError::Config(format!("HTTP client: {e}")))?;
        Ok(Storage {
            bucket,
            credentials: Credentials::new(cfg.access_key_id.clone(), cfg.secret_access_key.clone()),
            http,
            endpoint: cfg.endpoint.clone(),
        })
    }

    pub fn bucket_name(&self) -> &str {
        self.bucket.name()
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn presign_get(&self, key: &str, ttl: Duration) -> Url {
        self.bucket
            .get_object(Some(&self.credentials), key)
            .sign(ttl)
    }

    pub fn presign_put(&self, key: &str, ttl: Duration) -> Url {
        self.bucket
            .put_object(Some(&self.credentials), key)
            .sign(ttl)
    }

    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let url = self.presign_put(key, INTERNAL_SIGN_TTL);
        let resp = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        check(resp).await.map(|_| ())
    }

    /// The object's bytes and the content type storage reports.
    pub async fn get(&self, key: &str) -> Result<(Bytes, Option<String>), StorageError> {
        let url = self.presign_get(key, INTERNAL_SIGN_TTL);
        let resp = check(self.http.get(url).send().await.map_err(transport)?).await?;
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(transport)?;
        Ok((body, ct))
    }

    /// Deletes the object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(INTERNAL_SIGN_TTL);
        match check(self.http.delete(url).send().await.map_err(transport)?).await {
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the bucket exists and the credentials can reach it.
    pub async fn bucket_exists(&self) -> Result<bool, StorageError> {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(INTERNAL_SIGN_TTL);
        let resp = self.http.head(url).send().await.map_err(transport)?;
        match check(resp).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the bucket (used by tests; the stack's tooling creates it normally).
    pub async fn create_bucket(&self) -> Result<(), StorageError> {
        // An empty body creates the bucket in the endpoint's default region, which is what
        // the local stand-ins expect.
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(INTERNAL_SIGN_TTL);
        let resp = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(transport)?;
        match check(resp).await {
            Ok(_) => Ok(()),
            Err(StorageError::Status { status: 409, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `{user_id}/{category}/{uuid}.{ext}`
pub fn object_key(user_id: &uuid::Uuid, category: &str, id: &uuid::Uuid, ext: &str) -> String {
    format!("{user_id}/{category}/{id}.{ext}")
}

/// Categories are path segments of the key: 1 to 64 of `[a-z0-9_-]`.
pub fn valid_category(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 64
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The extension of an uploaded file name, lower-cased, alphanumeric, at most 16
/// characters; `bin` when there is none usable.
pub fn extension_for(filename: Option<&str>) -> String {
    filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(stem, ext)| (stem, ext.to_ascii_lowercase()))
        .filter(|(stem, ext)| {
            !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 16
                && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(|(_, ext)| ext)
        .unwrap_or_else(|| "bin".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_extensions() {
        let u = uuid::Uuid::nil();
        let id = uuid::Uuid::from_u128(1);
        assert_eq!(
            object_key(&u, "files", &id, "png"),
            format!("{u}/files/{id}.png")
        );
        assert_eq!(extension_for(Some("photo.PNG")), "png");
        assert_eq!(extension_for(Some("archive.tar.gz")), "gz");
        assert_eq!(extension_for(Some("noext")), "bin");
        assert_eq!(extension_for(Some(".bashrc")), "bin");
        assert_eq!(extension_for(Some("x.a/b")), "bin");
        assert_eq!(extension_for(None), "bin");
    }

    #[test]
    fn categories() {
        assert!(valid_category("files"));
        assert!(valid_category("avatars_2-x"));
        assert!(!valid_category(""));
        assert!(!valid_category("../etc"));
        assert!(!valid_category("Files"));
        assert!(!valid_category(&"a".repeat(65)));
    }

    #[test]
    fn presigned_urls_are_path_style() {
        let s = Storage::new(&StorageConfig {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "ignition".into(),
            region: "us-east-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        })
        .unwrap();
        let url = s.presign_get("u/files/x.png", Duration::from_secs(60));
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert!(url.path().starts_with("/ignition/u/files/x.png"));
        assert!(url.query().unwrap().contains("X-Amz-Signature="));
    }
}
