//! devenv's S3-compatible stand-in.
//!
//! The storage is the `s3s-fs` library (objects are files under the data directory); this
//! binary adds what devenv needs of it:
//! - MinIO's command line (`server DIR [--address ADDR] [--console-address ADDR]`) and its
//!   credentials from the environment (`MINIO_ROOT_USER`, `MINIO_ROOT_PASSWORD`), so that one
//!   compose service runs either server, and no secret is ever on a command line (`ps` shows
//!   those to every user of the machine);
//! - a store that leaves the data directory as it found it: s3s-fs keeps two sidecar files per
//!   object (`.bucket-B.object-K.metadata.json` and `.internal.json`, beside the buckets) and
//!   leaves them, and the object's parent directories, behind when the object is deleted.
//!   Here a delete removes them too, and startup removes the sidecars of objects that are gone
//!   (left by an earlier stand-in);
//! - a clean stop on SIGTERM as well as SIGINT (as PID 1 in a container, an unhandled SIGTERM
//!   is ignored and `docker stop` waits for its timeout).

use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

const USER_VAR: &str = "MINIO_ROOT_USER";
const PASSWORD_VAR: &str = "MINIO_ROOT_PASSWORD";
const DEFAULT_ADDRESS: &str = ":9000";
const USAGE: &str = "usage: devenv-objectstore server DIR [--address [HOST]:PORT] \
                     [--console-address ADDR]  (credentials: MINIO_ROOT_USER, MINIO_ROOT_PASSWORD)";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    dir: PathBuf,
    host: String,
    port: u16,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut rest = args;
    if rest.first().map(String::as_str) == Some("server") {
        rest = &rest[1..];
    }
    let mut dir: Option<PathBuf> = None;
    let mut address = DEFAULT_ADDRESS.to_owned();
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg, None),
        };
        match name {
            "--address" | "--console-address" => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        rest.get(i)
                            .cloned()
                            .ok_or(format!("{name} needs a value"))?
                    }
                };
                if name == "--address" {
                    address = value; // the console has no equivalent here: accepted, unused
                }
            }
            _ if name.starts_with('-') => return Err(format!("unknown option {name}")),
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("one data directory only, got {arg:?} too")),
        }
        i += 1;
    }
    let dir = dir.ok_or("no data directory")?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or(format!("address {address:?} has no port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("address {address:?} has no valid port"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Args {
        dir,
        host: host.to_owned(),
        port,
    })
}

fn credential(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!(
            "{name} must be set (the server's credentials come from the environment)"
        )),
    }
}

fn encode(text: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(text)
}

/// The s3s-fs store, and the clean-up it does not do.
struct Store {
    fs: FileSystem,
    root: PathBuf,
}

impl Store {
    fn new(dir: &Path) -> io::Result<Self> {
        let root = dir.canonicalize()?;
        let fs = FileSystem::new(&root).map_err(|e| io::Error::other(format!("{e:?}")))?;
        Ok(Self { fs, root })
    }

    /// The two files s3s-fs keeps beside the buckets for one object.
    fn sidecars(&self, bucket: &str, key: &str) -> [PathBuf; 2] {
        let stem = format!(".bucket-{}.object-{}", encode(bucket), encode(key));
        [
            self.root.join(format!("{stem}.metadata.json")),
            self.root.join(format!("{stem}.internal.json")),
        ]
    }

    /// After a delete: the object's sidecars, and its parent directories once empty (S3 has no
    /// directories; s3s-fs makes them for keys with slashes and lists only files).
    async fn forget(&self, bucket: &str, key: &str) {
        for path in self.sidecars(bucket, key) {
            remove_quietly(&path).await;
        }
        let relative = Path::new(key);
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return; // s3s-fs resolves such keys inside the root; we prune plain ones only
        }
        let bucket_dir = self.root.join(bucket);
        let mut dir = bucket_dir.join(relative);
        while let Some(parent) = dir.parent() {
            if parent == bucket_dir || !parent.starts_with(&bucket_dir) {
                break;
            }
            if tokio::fs::remove_dir(parent).await.is_err() {
                break; // not empty (another object lives there), or gone already
            }
            dir = parent.to_path_buf();
        }
    }

    /// After deleting a bucket: every sidecar of its objects.
    async fn forget_bucket(&self, bucket: &str) {
        let prefix = format!(".bucket-{}.object-", encode(bucket));
        let Ok(mut entries) = tokio::fs::read_dir(&self.root).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                remove_quietly(&entry.path()).await;
            }
        }
    }

    /// At startup: the sidecars whose object no longer exists (an earlier stand-in's leak).
    async fn sweep(&self) -> usize {
        let mut removed = 0;
        let Ok(mut entries) = tokio::fs::read_dir(&self.root).await else {
            return 0;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name();
            let Some((bucket, key)) = name.to_str().and_then(sidecar_owner) else {
                continue;
            };
            let relative = Path::new(&key);
            if relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
            {
                continue;
            }
            if !tokio::fs::try_exists(self.root.join(&bucket).join(relative))
                .await
                .unwrap_or(true)
            {
                remove_quietly(&entry.path()).await;
                removed += 1;
            }
        }
        removed
    }
}

/// (bucket, key) of a sidecar file's name; None for anything else (in-flight uploads too).
fn sidecar_owner(name: &str) -> Option<(String, String)> {
    let stem = name
        .strip_suffix(".metadata.json")
        .or_else(|| name.strip_suffix(".internal.json"))?;
    let (bucket, key) = stem.strip_prefix(".bucket-")?.split_once(".object-")?;
    if key.contains('.') {
        return None; // `.upload-<id>`: a multipart upload's, which s3s-fs cleans itself
    }
    let decode = |s: &str| {
        let bytes = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(s).ok()?;
        String::from_utf8(bytes).ok()
    };
    Some((decode(bucket)?, decode(key)?))
}

async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != io::ErrorKind::NotFound {
            eprintln!("devenv-objectstore: cannot remove {}: {e}", path.display());
        }
    }
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let done = self.fs.delete_object(req).await?;
        self.forget(&bucket, &key).await;
        Ok(done)
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let done = self.fs.delete_objects(req).await?;
        for deleted in done.output.deleted.iter().flatten() {
            if let Some(key) = &deleted.key {
                self.forget(&bucket, key).await;
            }
        }
        Ok(done)
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket.clone();
        let done = self.fs.delete_bucket(req).await?;
        self.forget_bucket(&bucket).await;
        Ok(done)
    }

    // --- everything else is s3s-fs's own ------------------------------------------------

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.fs.copy_object(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.fs.complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(why) => {
            eprintln!("devenv-objectstore: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let credentials = credential(USER_VAR).and_then(|u| Ok((u, credential(PASSWORD_VAR)?)));
    let (user, password) = match credentials {
        Ok(pair) => pair,
        Err(why) => {
            eprintln!("devenv-objectstore: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("devenv-objectstore: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(parsed, user, password)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devenv-objectstore: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args, user: String, password: String) -> io::Result<()> {
    let store = Store::new(&args.dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("data directory {}: {e}", args.dir.display()),
        )
    })?;
    let swept = store.sweep().await;
    if swept > 0 {
        eprintln!("devenv-objectstore: removed {swept} sidecar file(s) of deleted objects");
    }
    let root = store.root.clone();
    let service = {
        let mut builder = S3ServiceBuilder::new(store);
        builder.set_auth(SimpleAuth::from_single(user, password));
        builder.build()
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    eprintln!(
        "devenv-objectstore: serving {} on http://{}",
        root.display(),
        listener.local_addr()?
    );

    let connections = ConnBuilder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    eprintln!("devenv-objectstore: accept failed: {e}");
                    continue;
                }
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let connection = connections.serve_connection(TokioIo::new(socket), service.clone());
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    // requests in flight finish (a few seconds at most); then the process ends
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    eprintln!("devenv-objectstore: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse_args(&words)
    }

    #[test]
    fn minio_command_lines_are_accepted() {
        let expected = Args {
            dir: "/data".into(),
            host: "0.0.0.0".into(),
            port: 9000,
        };
        assert_eq!(args("server /data").unwrap(), expected);
        assert_eq!(
            args("server /data --console-address :9001").unwrap(),
            expected
        );
        assert_eq!(
            args("server --console-address=:9001 /data").unwrap(),
            expected
        );
        assert_eq!(args("/data").unwrap(), expected);
        let moved = args("server /srv --address 127.0.0.1:9100").unwrap();
        assert_eq!((moved.host.as_str(), moved.port), ("127.0.0.1", 9100));
    }

    #[test]
    fn bad_command_lines_say_why() {
        assert!(args("server").unwrap_err().contains("no data directory"));
        assert!(
            args("server /data --access-key x")
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(
            args("server /a /b")
                .unwrap_err()
                .contains("one data directory")
        );
        assert!(
            args("server /data --address")
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            args("server /data --address :x")
                .unwrap_err()
                .contains("valid port")
        );
    }

    #[test]
    fn sidecar_names_parse_back_to_their_object() {
        let name = format!(
            ".bucket-{}.object-{}.metadata.json",
            encode("b"),
            encode("a/k.txt")
        );
        assert_eq!(sidecar_owner(&name), Some(("b".into(), "a/k.txt".into())));
        let internal = name.replace(".metadata.json", ".internal.json");
        assert_eq!(
            sidecar_owner(&internal),
            Some(("b".into(), "a/k.txt".into()))
        );
        let upload = name.replace(".metadata.json", ".upload-1234.metadata.json");
        assert_eq!(sidecar_owner(&upload), None);
        assert_eq!(sidecar_owner("b"), None);
        assert_eq!(sidecar_owner(".upload-x.json"), None);
    }
}
