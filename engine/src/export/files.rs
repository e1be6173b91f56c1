//! The job's files in the export directory (`<dir>/<job id>/<file>`): appended a chunk at a
//! time after the last committed length, read back for download, removed with the job. File
//! work runs on tokio's blocking pool.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn io(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::Internal(format!("export file `{}`: {what}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Internal(format!("export file work stopped: {e}")))?
}

/// The directory of job `id`.
pub(crate) fn job_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Creates the directory of a new job.
pub(crate) async fn create(dir: PathBuf) -> Result<()> {
    blocking(move || std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, &e))).await
}

/// Writes `lines` into `file` at byte `at` (what was committed), dropping anything after it (a
/// chunk written before a crash, whose checkpoint never happened). The job's directory must
/// exist: a job cancelled meanwhile writes nothing.
pub(crate) async fn append(file: PathBuf, at: u64, lines: Vec<u8>) -> Result<()> {
    blocking(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&file)
            .map_err(|e| io("cannot open", &file, &e))?;
        f.set_len(at).map_err(|e| io("cannot cut", &file, &e))?;
        f.seek(SeekFrom::Start(at)).map_err(|e| io("cannot seek", &file, &e))?;
        f.write_all(&lines).map_err(|e| io("cannot write", &file, &e))?;
        f.sync_data().map_err(|e| io("cannot sync", &file, &e))
    })
    .await
}

/// The first `len` bytes of `file` (what the job committed).
pub(crate) async fn read(file: PathBuf, len: u64) -> Result<Vec<u8>> {
    blocking(move || {
        use std::io::Read;
        let f = std::fs::File::open(&file).map_err(|e| io("cannot open", &file, &e))?;
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        f.take(len).read_to_end(&mut body).map_err(|e| io("cannot read", &file, &e))?;
        Ok(body)
    })
    .await
}

/// Removes a job's directory and files (nothing when already gone).
pub(crate) async fn remove(dir: PathBuf) -> Result<()> {
    blocking(move || match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", &dir, &e)),
    })
    .await
}
