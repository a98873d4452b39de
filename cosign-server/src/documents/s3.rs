//! An S3-compatible [`BlobStore`] (MinIO, Ceph RGW, AWS S3) over the `object_store` crate, for
//! several servers sharing the document files. Same contract as [`super::LocalStore`]:
//! objects are named by the SM3 of their bytes (`<prefix>/<first two hex digits>/<sm3>`),
//! written once with a conditional create (`If-None-Match: *`; an object already there under
//! that name holds the same bytes), and every read is checked against its name, so a corrupted
//! or substituted object is an error, never served.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use zeroize::Zeroizing;

use super::store::{BlobStore, is_sm3_hex, sm3_hex};
use crate::error::{Error, Result};

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Settings {
    /// Endpoint URL, e.g. `http://minio.hospital.local:9000` (path-style requests are used).
    pub endpoint: String,
    /// Bucket (must exist).
    pub bucket: String,
    /// Region (MinIO accepts any, e.g. `us-east-1`).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// Key prefix inside the bucket (no leading or trailing `/`), e.g. `documents`.
    pub prefix: String,
    /// Allow plain `http://` endpoints (a MinIO inside the hospital network).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// Document files in an S3-compatible bucket.
#[derive(Debug)]
pub struct S3Store {
    s3: AmazonS3,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// A store over `settings` (no request is made until the first put or get).
    pub fn open(settings: &S3Settings) -> Result<Self> {
        let prefix = settings.prefix.trim_matches('/').to_owned();
        if settings.bucket.is_empty() || prefix.split('/').any(|p| p == ".." || p == ".") {
            return Err(Error::Config(
                "S3 store: a bucket is required and the prefix must be a plain path".into(),
            ));
        }
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.as_str())
            .with_allow_http(settings.allow_http)
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|e| Error::Config(format!("S3 store: {e}")))?;
        Ok(Self {
            s3,
            bucket: settings.bucket.clone(),
            prefix,
        })
    }

    fn key(&self, sm3: &str) -> String {
        let shard = sm3.get(..2).unwrap_or("00");
        if self.prefix.is_empty() {
            format!("{shard}/{sm3}")
        } else {
            format!("{}/{shard}/{sm3}", self.prefix)
        }
    }

    fn failure(&self, key: &str, e: &object_store::Error) -> Error {
        Error::io(
            format!("s3://{}/{key}", self.bucket),
            std::io::Error::other(e.to_string()),
        )
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn put(&self, bytes: Vec<u8>) -> Result<String> {
        let sm3 = sm3_hex(&bytes);
        let key = self.key(&sm3);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .s3
            .put_opts(
                &ObjectPath::from(key.as_str()),
                PutPayload::from(bytes),
                opts,
            )
            .await
        {
            // Content-addressed: an object already stored under this name has these bytes
            // (checked on every read).
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(sm3),
            Err(e) => Err(self.failure(&key, &e)),
        }
    }

    async fn get(&self, sm3: &str) -> Result<Option<Vec<u8>>> {
        if !is_sm3_hex(sm3) {
            return Ok(None);
        }
        let key = self.key(sm3);
        let got = match self.s3.get(&ObjectPath::from(key.as_str())).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failure(&key, &e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.failure(&key, &e))?;
        if sm3_hex(&bytes) != sm3 {
            tracing::error!(bucket = %self.bucket, key = %key, "stored document does not match its SM3 address");
            return Err(Error::Internal("a stored document is corrupted"));
        }
        Ok(Some(bytes.to_vec()))
    }
}
