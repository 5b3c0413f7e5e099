//! S3-protocol object storage: the platform's blobs (`[source] blobs = "s3://..."`) and
//! snapshot delivery (`[output] dir = "s3://..."`), over `object_store`.
//!
//! `object_store` is async; ferry's stages are threads, so each [`S3`] owns a small
//! tokio runtime (one worker) and blocks on it. Credentials and endpoint come from the
//! usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`), overridden by
//! the job's `[s3]` table. Nothing here prints or stores them: [`S3Settings`]'s `Debug`
//! redacts the secret, and errors name only the bucket and key.

mod blobs;
mod deliver;
mod shards;

pub use blobs::S3BlobStore;
pub use deliver::{Delivered, Delivery, PartError, Upload, remove_snapshot};
pub use shards::{DownloadError, S3Shards, download_snapshot};
pub(crate) use shards::{remove_shard_leftovers, withdraw_shard};

use std::fmt;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;

/// `s3://bucket/prefix`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl S3Url {
    /// `None` when `s` is not an `s3://` URL at all (a local path); an error when it is
    /// one but malformed.
    pub fn parse(s: &str) -> Option<Result<S3Url, String>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok_bucket {
            return Some(Err(format!("{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' and '.')")));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == ".." || p == ".") || prefix.contains("//") {
            return Some(Err(format!("prefix {prefix:?} has empty, `.` or `..` segments")));
        }
        Some(Ok(S3Url { bucket: bucket.into(), prefix }))
    }

    /// The object key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.into() } else { format!("{}/{name}", self.prefix) }
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The job's `[s3]` overrides of the `AWS_*` environment.
#[derive(Clone, Default)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "<set>"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(
        "cannot set up S3 access to {url}: {reason}; set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (and AWS_ENDPOINT_URL for a non-AWS server) or the job's [s3] table"
    )]
    Config { url: String, reason: String },
    #[error("S3 {op} of s3://{bucket}/{key} failed: {source}")]
    Request { op: &'static str, bucket: String, key: String, source: Box<object_store::Error> },
    #[error("reading {path} for upload: {source}")]
    Local { path: std::path::PathBuf, source: std::io::Error },
}

/// A bucket, a prefix in it, and the runtime its requests run on.
#[derive(Clone)]
pub struct S3 {
    url: S3Url,
    store: Arc<AmazonS3>,
    rt: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for S3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3({})", self.url)
    }
}

impl S3 {
    pub fn connect(url: &S3Url, settings: &S3Settings) -> Result<S3, S3Error> {
        let config = |reason: String| S3Error::Config { url: url.to_string(), reason };
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&url.bucket);
        if let Some(e) = &settings.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &settings.region {
            b = b.with_region(r);
        }
        if let Some(k) = &settings.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &settings.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        // A plain-http endpoint (a local test server) is refused unless allowed.
        let http_endpoint = settings.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"))
            || std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).is_ok_and(|e| e.starts_with("http://"));
        if let Some(allow) = settings.allow_http.or(http_endpoint.then_some(true)) {
            b = b.with_allow_http(allow);
        }
        let store = b.build().map_err(|e| config(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ferry-s3")
            .enable_all()
            .build()
            .map_err(|e| config(format!("cannot start its runtime: {e}")))?;
        Ok(S3 { url: url.clone(), store: Arc::new(store), rt: Arc::new(rt) })
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    fn path(&self, name: &str) -> ObjectPath {
        ObjectPath::from(self.url.key(name))
    }

    fn err(&self, op: &'static str, name: &str) -> impl FnOnce(object_store::Error) -> S3Error {
        let (bucket, key) = (self.url.bucket.clone(), self.url.key(name));
        move |source| S3Error::Request { op, bucket, key, source: Box::new(source) }
    }

    /// Every object under `prefix/name` (a "directory"), names relative to the prefix,
    /// with sizes and last-modified times.
    pub fn list(&self, name: &str) -> Result<Vec<object_store::ObjectMeta>, S3Error> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let path = self.path(name);
        self.rt.block_on(self.store.list(Some(&path)).try_collect::<Vec<_>>()).map_err(self.err("list", name))
    }

    /// A whole object; for tests and small files such as manifests.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, S3Error> {
        use object_store::ObjectStoreExt;
        let path = self.path(name);
        self.rt.block_on(async { self.store.get(&path).await?.bytes().await }).map(|b| b.to_vec()).map_err(self.err("get", name))
    }

    /// Bytes `range` of an object as a stream of chunks, for a caller already on a tokio
    /// runtime (`ferry serve` streams delivered snapshots through it; nothing is held whole).
    pub async fn get_range_stream(
        &self,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<bytes::Bytes, S3Error>>, S3Error> {
        use futures_util::StreamExt;
        use object_store::ObjectStore;
        let path = self.path(name);
        let options = object_store::GetOptions { range: Some(object_store::GetRange::Bounded(range)), ..Default::default() };
        let result = self.store.get_opts(&path, options).await.map_err(self.err("get", name))?;
        let (bucket, key) = (self.url.bucket.clone(), self.url.key(name));
        Ok(result
            .into_stream()
            .map(move |chunk| {
                chunk.map_err(|source| S3Error::Request { op: "get", bucket: bucket.clone(), key: key.clone(), source: Box::new(source) })
            })
            .boxed())
    }

    /// Deletes one object (no error when it is not there).
    pub fn delete(&self, name: &str) -> Result<(), S3Error> {
        self.delete_key(&self.path(name))
    }

    /// Deletes the object at the full key `location`, as [`S3::list`] returns it.
    pub(crate) fn delete_key(&self, location: &ObjectPath) -> Result<(), S3Error> {
        use object_store::ObjectStoreExt;
        self.rt.block_on(self.store.delete(location)).map_err(|source| S3Error::Request {
            op: "delete",
            bucket: self.url.bucket.clone(),
            key: location.to_string(),
            source: Box::new(source),
        })
    }

    /// The object at the full key `location` (as [`S3::list`] returns it), relative to
    /// the prefix; `None` when it lies outside.
    pub(crate) fn relative<'a>(&self, location: &'a ObjectPath) -> Option<&'a str> {
        let key = location.as_ref();
        if self.url.prefix.is_empty() { Some(key) } else { key.strip_prefix(self.url.prefix.as_str())?.strip_prefix('/') }
    }

    /// Downloads object `name` into the file `to`, streamed in chunks.
    pub fn download(&self, name: &str, to: &std::path::Path) -> Result<u64, S3Error> {
        use futures_util::StreamExt;
        use object_store::ObjectStoreExt;
        use std::io::Write;
        let path = self.path(name);
        let local = |source| S3Error::Local { path: to.to_path_buf(), source };
        let mut file = std::fs::File::create(to).map_err(local)?;
        self.rt.block_on(async {
            let mut stream = self.store.get(&path).await.map_err(self.err("get", name))?.into_stream();
            let mut bytes = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(self.err("get", name))?;
                file.write_all(&chunk).map_err(local)?;
                bytes += chunk.len() as u64;
            }
            Ok(bytes)
        })
    }

    /// Writes a small object in one request.
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        use object_store::ObjectStoreExt;
        let path = self.path(name);
        self.rt.block_on(self.store.put(&path, bytes.into())).map(|_| ()).map_err(self.err("put", name))
    }
}

// Removing a delivered copy (DELETE, the service's retention, `ferry snapshots delete|purge`).
mod removal;
pub use removal::{RemovalError, delivered_to, remove_delivered};
