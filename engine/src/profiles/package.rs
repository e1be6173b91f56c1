//! FHIR packages (<https://confluence.hl7.org/display/FHIR/NPM+Package+Specification>): the
//! npm-style `.tgz` an implementation guide publishes, or the same unpacked. What is read: every
//! JSON file of the package's `package/` folder whose `resourceType` is one of
//! [`CONFORMANCE_TYPES`](super::CONFORMANCE_TYPES); the rest (examples, `package.json`,
//! `.index.json`, other folders) is skipped. Anything malformed stops the load with a message
//! naming the package and the file.
//!
//! Bounds: a package may not unpack to more than [`MAX_PACKAGE_BYTES`], nor hold a file larger
//! than [`MAX_FILE_BYTES`].

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::{CONFORMANCE_TYPES, Conformance};

/// The most a package may unpack to.
pub const MAX_PACKAGE_BYTES: u64 = 512 * 1024 * 1024;
/// The largest file of a package that is read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Loads every package in `dir` (each a `.tgz` file or a directory with a `package/` folder
/// or JSON files) into `conformance`, in name order. Returns how many packages were read.
pub fn load_dir(dir: &Path, conformance: &mut Conformance) -> Result<usize, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read the packages directory `{}`: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut count = 0;
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            let folder = if path.join("package").is_dir() { path.join("package") } else { path.clone() };
            load_folder(&folder, conformance).map_err(|e| format!("package `{}`: {e}", path.display()))?;
            count += 1;
        } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
            let bytes = std::fs::read(&path).map_err(|e| format!("package `{}`: cannot read: {e}", path.display()))?;
            load_tgz(&bytes, conformance).map_err(|e| format!("package `{}`: {e}", path.display()))?;
            count += 1;
        }
    }
    Ok(count)
}

fn load_folder(folder: &Path, conformance: &mut Conformance) -> Result<(), String> {
    let entries = std::fs::read_dir(folder).map_err(|e| format!("cannot read `{}`: {e}", folder.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !path.is_file() || !name.ends_with(".json") || name.starts_with('.') || name == "package.json" {
            continue;
        }
        let size = path.metadata().map(|m| m.len()).unwrap_or(0);
        if size > MAX_FILE_BYTES {
            return Err(format!("`{name}` is larger than {MAX_FILE_BYTES} bytes"));
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        add_file(&name, &bytes, conformance)?;
    }
    Ok(())
}

/// Loads one gzipped tar package.
pub fn load_tgz(bytes: &[u8], conformance: &mut Conformance) -> Result<(), String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_PACKAGE_BYTES + 1)
        .read_to_end(&mut tar)
        .map_err(|e| format!("not a gzip file: {e}"))?;
    if tar.len() as u64 > MAX_PACKAGE_BYTES {
        return Err(format!("unpacks to more than {MAX_PACKAGE_BYTES} bytes"));
    }
    for (name, content) in tar_entries(&tar)? {
        let Some(file) = name.strip_prefix("package/") else { continue };
        if file.contains('/') || !file.ends_with(".json") || file.starts_with('.') || file == "package.json" {
            continue;
        }
        add_file(&name, content, conformance)?;
    }
    Ok(())
}

fn add_file(name: &str, bytes: &[u8], conformance: &mut Conformance) -> Result<(), String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("`{name}` is not JSON: {e}"))?;
    let Some(resource_type) = value.get("resourceType").and_then(Value::as_str) else { return Ok(()) };
    if !CONFORMANCE_TYPES.contains(&resource_type) {
        return Ok(());
    }
    if value.get("url").and_then(Value::as_str).is_none() {
        return Err(format!("`{name}`: a {resource_type} without `url`"));
    }
    if resource_type == "StructureDefinition" && value.get("type").and_then(Value::as_str).is_none() {
        return Err(format!("`{name}`: a StructureDefinition without `type`"));
    }
    conformance.add(value);
    Ok(())
}

/// The regular files of a POSIX (ustar/GNU) tar archive: (name, content).
fn tar_entries(tar: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut long_name: Option<String> = None;
    while offset + 512 <= tar.len() {
        let header = &tar[offset..offset + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&header[124..136]).ok_or_else(|| format!("bad tar header at byte {offset}"))?;
        let start = offset + 512;
        let end = start
            .checked_add(usize::try_from(size).map_err(|_| "tar entry too large")?)
            .ok_or("tar entry too large")?;
        if end > tar.len() {
            return Err(format!("truncated tar archive at byte {offset}"));
        }
        let content = &tar[start..end];
        let kind = header[156];
        match kind {
            b'L' => long_name = Some(c_string(content)),
            b'0' | 0 => {
                let mut name = c_string(&header[..100]);
                let prefix = c_string(&header[345..500]);
                if header[257..262] == *b"ustar" && !prefix.is_empty() {
                    name = format!("{prefix}/{name}");
                }
                out.push((long_name.take().unwrap_or(name), content));
            }
            _ => long_name = None,
        }
        offset = start + size.div_ceil(512) as usize * 512;
    }
    Ok(out)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn octal(field: &[u8]) -> Option<u64> {
    let text = c_string(field);
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Builds a `.tgz` package from (file name under `package/`, content): for tests.
#[cfg(test)]
pub(crate) fn build_tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut tar = Vec::new();
    for (name, content) in files {
        let mut header = [0u8; 512];
        let path = format!("package/{name}");
        header[..path.len()].copy_from_slice(path.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        let size = format!("{:011o}", content.len());
        header[124..135].copy_from_slice(size.as_bytes());
        header[156] = b'0';
        header[257..262].copy_from_slice(b"ustar");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        tar.extend_from_slice(&header);
        tar.extend_from_slice(content);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(&tar);
    gz.finish().unwrap_or_default()
}
