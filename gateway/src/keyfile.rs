//! Secret key files the server keeps in its data directory (the local issuer's signing key, the
//! paging key): read when present, else created once, owner-only, without ever writing through
//! a path someone else may have prepared.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Reads the key, or creates it with the bytes of `generate`. The file must be a regular file
/// (a symlink in its place is refused: whoever placed it would know the key). Creation never
/// writes through a path someone else may have prepared: the key goes to a new file with an
/// unpredictable name, created exclusively (`O_CREAT|O_EXCL`, which also refuses a symlink
/// there) with mode 0600, then is linked to its final name, which fails if anything (a
/// concurrent creator's key, a symlink) is there already; such a key written by a concurrent
/// creator wins and both read it.
pub(crate) fn load_or_create(
    path: &Path,
    generate: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    match read_key(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = generate()?;
    let tmp = temporary_name(path)?;
    let written = write_new(&tmp, &key);
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                // The new name survives a crash once the directory is on disk too.
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            tracing::info!(key = %path.display(), "key file created");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(e),
    }
}

/// `n` random bytes from the system's generator.
pub(crate) fn random(n: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// The key file's bytes; a symlink or anything but a regular file is refused, and the file
/// opened is checked to be the one looked at (no swap in between).
fn read_key(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let seen = std::fs::symlink_metadata(path)?;
    if !seen.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file (a symlink here is refused); remove it"));
    }
    let file = std::fs::File::open(path)?;
    let opened = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
            return Err(std::io::Error::other("the file changed while it was opened"));
        }
        if opened.mode() & 0o077 != 0 {
            tracing::warn!(key = %path.display(), mode = format!("{:o}", opened.mode() & 0o777),
                "a key file is readable by other users: `chmod 600` it");
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0).min(4096));
    file.take(64 * 1024).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `<key file>.<32 random hex digits>.tmp`, beside the key file.
fn temporary_name(path: &Path) -> std::io::Result<PathBuf> {
    let suffix: String = random(16)?.iter().map(|b| format!("{b:02x}")).collect();
    Ok(PathBuf::from(format!("{}.{suffix}.tmp", path.display())))
}

/// Writes `bytes` to a file that must not exist yet, readable by its owner only.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_unpredictable() -> std::io::Result<()> {
        let path = Path::new("/x/key.p8");
        let (a, b) = (temporary_name(path)?, temporary_name(path)?);
        assert_ne!(a, b);
        assert!(a.display().to_string().starts_with("/x/key.p8.") && a.display().to_string().len() > 40);
        Ok(())
    }

    #[test]
    fn a_key_generated_elsewhere_first_wins() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("fhirgate-keyfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("k");
        let first = load_or_create(&path, || Ok(vec![1; 32]))?;
        let again = load_or_create(&path, || Ok(vec![2; 32]))?;
        assert_eq!((first, again), (vec![1; 32], vec![1; 32]), "created once, then read");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
