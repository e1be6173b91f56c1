//! The files of bulk jobs (export output, import error reports) in their output location
//! ([`Location`]): a directory (`<dir>/<job id>/<file>`) or an Azure Blob Storage container
//! (`<container>/<job id>/<file>`, block blobs). A file grows a chunk at a time after what the
//! job committed: on disk it is cut back to the committed length first; in a container each
//! chunk is block `n` of the blob and the blob's committed list is blocks `0..=n`, so a chunk
//! written again after a crash replaces the one whose checkpoint never happened. Files are read
//! back up to their committed length and removed with their job. Disk work runs on tokio's
//! blocking pool.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::bulk::blob;
use crate::error::{Error, Result};
use crate::interaction::{FileBody, Response};

/// Where bulk jobs keep their files.
#[derive(Debug, Clone)]
pub enum Location {
    /// A directory (replicas sharing jobs share it).
    Dir(PathBuf),
    /// A Blob Storage container; the manifest of an export names its blobs' URLs.
    Blob(blob::Container),
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::Internal(format!("bulk file `{}`: {what}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Internal(format!("bulk file work stopped: {e}")))?
}

/// How far a file got: its committed length and chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) bytes: u64,
    pub(crate) chunks: u32,
}

impl Location {
    fn dir(root: &Path, job: &str) -> PathBuf {
        root.join(job)
    }

    fn blob(job: &str, file: &str) -> String {
        format!("{job}/{file}")
    }

    /// Makes room for a new job's files.
    pub(crate) async fn create(&self, job: &str) -> Result<()> {
        match self {
            Self::Dir(root) => {
                let dir = Self::dir(root, job);
                blocking(move || std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, &e))).await
            }
            Self::Blob(_) => Ok(()),
        }
    }

    /// Writes `lines` after what `file` of `job` committed (`at`), dropping anything written
    /// after it; what it committed then. On disk the job's directory must exist: a job
    /// cancelled meanwhile writes nothing.
    pub(crate) async fn append(&self, job: &str, file: &str, at: Committed, lines: Vec<u8>) -> Result<Committed> {
        let next = Committed { bytes: at.bytes + lines.len() as u64, chunks: at.chunks + 1 };
        match self {
            Self::Dir(root) => {
                let path = Self::dir(root, job).join(file);
                blocking(move || {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)
                        .map_err(|e| io("cannot open", &path, &e))?;
                    f.set_len(at.bytes).map_err(|e| io("cannot cut", &path, &e))?;
                    f.seek(SeekFrom::Start(at.bytes)).map_err(|e| io("cannot seek", &path, &e))?;
                    f.write_all(&lines).map_err(|e| io("cannot write", &path, &e))?;
                    f.sync_data().map_err(|e| io("cannot sync", &path, &e))
                })
                .await?;
            }
            Self::Blob(container) => container.put_block(&Self::blob(job, file), at.chunks, lines).await?,
        }
        Ok(next)
    }

    /// The first `len` bytes of NDJSON `file` of `job` (what the job committed) as a 200
    /// response: sent from the disk a piece at a time (a file can hold a whole store's resources
    /// of one type), or read from the container.
    pub(crate) async fn ndjson(&self, job: &str, file: &str, len: u64) -> Result<Response> {
        const NDJSON: &str = "application/fhir+ndjson";
        match self {
            Self::Dir(root) => {
                let path = Self::dir(root, job).join(file);
                let path = blocking(move || {
                    let found = std::fs::metadata(&path).map_err(|e| io("cannot read", &path, &e))?.len();
                    if found < len {
                        return Err(Error::Internal(format!(
                            "bulk file `{}` is shorter than committed",
                            path.display()
                        )));
                    }
                    Ok(path)
                })
                .await?;
                Ok(Response::from_file(200, NDJSON, FileBody { path, len }))
            }
            Self::Blob(container) => {
                let body = container.read(&Self::blob(job, file), len).await?;
                Ok(Response::rendered(200, NDJSON, body))
            }
        }
    }

    /// Where a client downloads `file` of `job` itself, when it does not go through the server:
    /// the blob's URL.
    pub(crate) fn public_url(&self, job: &str, file: &str) -> Option<String> {
        match self {
            Self::Dir(_) => None,
            Self::Blob(container) => Some(container.url(&Self::blob(job, file))),
        }
    }

    /// Removes a job's files (nothing when already gone).
    pub(crate) async fn remove(&self, job: &str) -> Result<()> {
        match self {
            Self::Dir(root) => {
                let dir = Self::dir(root, job);
                blocking(move || match std::fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io("cannot remove", &dir, &e)),
                })
                .await
            }
            Self::Blob(container) => container.remove_prefix(&format!("{job}/")).await,
        }
    }
}
