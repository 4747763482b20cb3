//! An S3-compatible bucket for the archive's sealed segments and the
//! uploaded source maps (`--object-store s3://bucket/prefix`), through
//! `object_store`. The endpoint and credentials come from the usual
//! `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`; `AWS_ALLOW_HTTP=true` for a
//! plain-HTTP endpoint).
//!
//! The archive and the map store are synchronous where they are called
//! (the replay thread, ingest's error grouping), so this wraps the async
//! calls: [`Objects::block`] runs one on the runtime the bucket was opened
//! in.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("--object-store `{0}`: use s3://bucket/prefix or file:///absolute/path")]
    Url(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// One object as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its key under the bucket's prefix.
    pub key: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// An object's version: its entity tag, else its time.
fn version_of(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag.clone().unwrap_or_else(|| meta.last_modified.to_rfc3339())
}

/// A bucket (under a prefix); cheap to clone.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Handle,
    url: String,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Objects {
    /// The bucket of an `s3://bucket/prefix` URL. Call inside the runtime
    /// that should run its requests.
    pub fn s3(url: &str) -> Result<Objects, ObjectsError> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| ObjectsError::Url(url.to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectsError::Url(url.to_owned()));
        }
        let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        Ok(Objects { store, runtime: tokio::runtime::Handle::current(), url: url.to_owned() })
    }

    /// Runs `future` to its end from synchronous code: on a thread of the
    /// runtime (moved off its async work meanwhile) or on any other thread.
    pub fn block<F: Future>(&self, future: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(|| self.runtime.block_on(future)),
            Err(_) => self.runtime.block_on(future),
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectsError> {
        self.store.put(&ObjectPath::from(key), PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// An object's bytes and version, `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, ObjectsError> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(got) => {
                let version = version_of(&got.meta);
                Ok(Some((got.bytes().await?.to_vec(), version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// An object's version, `None` if there is none.
    pub async fn version(&self, key: &str) -> Result<Option<String>, ObjectsError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(version_of(&meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix`, by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectsError> {
        let prefix = ObjectPath::from(prefix);
        let mut listed: Vec<Listed> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| Listed {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified: meta.last_modified.into(),
            })
            .try_collect()
            .await?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    pub async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
