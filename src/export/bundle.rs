//! A bundle as bytes: an ordered list of files, written as a folder or a tar, and checked again
//! from either. Knows nothing of records; [`super::export`] decides what the files hold.
//!
//! `SHA256SUMS` is in `sha256sum`'s format, so `sha256sum -c SHA256SUMS` checks an extracted
//! bundle without flowdex. It covers every file except itself and [`CREATED_FILE`], the one file
//! whose bytes change from one export to the next.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::input::hex;

/// The list of the other files' SHA-256.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// When the bundle was written: outside `SHA256SUMS`, so that the rest is byte-identical.
pub const CREATED_FILE: &str = "created.json";

/// A `SHA256SUMS` larger than this is not one flowdex wrote (a line is about 100 bytes).
const MAX_SUMS_BYTES: u64 = 16 << 20;

/// Every tar entry gets these, so equal files give equal archives whoever writes them and when.
const TAR_MODE: u32 = 0o644;
const TAR_MTIME: u64 = 0;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {error}", path = .path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{path}: already exists; choose a new --output (an export never replaces anything)", path = .path.display())]
    Exists { path: PathBuf },
    #[error("{path}: a bundle is written as a folder or a .tar; compress the .tar afterwards if needed", path = .path.display())]
    UnsupportedOutput { path: PathBuf },
    #[error("{path}: not a flowdex bundle (no {SUMS_FILE})", path = .path.display())]
    NotABundle { path: PathBuf },
    #[error("{path}: a {what} file; decompress it first (a bundle is a folder or a .tar)", path = .path.display())]
    Compressed { path: PathBuf, what: &'static str },
    #[error("{path}: {SUMS_FILE} line {line}: {what}", path = .path.display())]
    BadSums { path: PathBuf, line: usize, what: String },
    /// `place`: where in the tar it broke ("at its first entry", "in or after entry `x`", ...).
    #[error(
        "{path}: not a readable tar ({place}): {why}; a bundle is a folder or a .tar as `flowdex export` wrote it",
        path = .path.display()
    )]
    BadTar { path: PathBuf, place: String, why: String },
}

impl BundleError {
    fn io(path: &Path, source: io::Error) -> BundleError {
        BundleError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}

/// One file of a bundle: a `/`-separated relative path and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The files of a bundle, in the order they are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub files: Vec<BundleFile>,
}

impl Bundle {
    /// A bundle of `files`, then `SHA256SUMS` over them, then the creation file.
    pub fn seal(files: Vec<BundleFile>, created: Vec<u8>) -> Bundle {
        let mut sums: Vec<(&str, String)> = files.iter().map(|f| (f.path.as_str(), sha256_hex(&f.bytes))).collect();
        sums.sort();
        let mut text = String::new();
        for (path, hash) in sums {
            text.push_str(&format!("{hash}  {path}\n"));
        }
        let mut files = files;
        files.push(BundleFile {
            path: SUMS_FILE.into(),
            bytes: text.into_bytes(),
        });
        files.push(BundleFile {
            path: CREATED_FILE.into(),
            bytes: created,
        });
        Bundle { files }
    }

    /// How many files `SHA256SUMS` lists: all but itself and the creation file.
    pub fn listed_files(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.path != SUMS_FILE && f.path != CREATED_FILE)
            .count()
    }

    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The SHA-256 of `SHA256SUMS`: one value that names the whole bundle, for a report.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.file(SUMS_FILE).map_or(&[][..], |f| &f.bytes))
    }

    /// Writes the bundle as a tar when `out` ends in `.tar`, else as a folder. Either appears
    /// complete or not at all, and nothing that exists is replaced.
    pub fn write(&self, out: &Path) -> Result<(), BundleError> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if [".tar.gz", ".tgz", ".gz", ".zip", ".zst"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            return Err(BundleError::UnsupportedOutput {
                path: out.to_path_buf(),
            });
        }
        if fs::symlink_metadata(out).is_ok() {
            return Err(BundleError::Exists {
                path: out.to_path_buf(),
            });
        }
        // Else the error would name the temporary file written first.
        if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
            let missing = io::Error::new(io::ErrorKind::NotFound, "no such folder; create it first");
            return Err(BundleError::io(folder, missing));
        }
        let tmp = temporary_beside(out);
        let written = if name.ends_with(".tar") {
            self.write_tar(&tmp, out)
        } else {
            self.write_dir(&tmp, out)
        };
        if written.is_err() {
            // Best effort: the error being reported matters more than a leftover temporary.
            let _ = fs::remove_dir_all(&tmp).or_else(|_| fs::remove_file(&tmp));
        }
        written
    }

    fn write_dir(&self, tmp: &Path, out: &Path) -> Result<(), BundleError> {
        fs::create_dir(tmp).map_err(|e| BundleError::io(tmp, e))?;
        let mut dirs = BTreeSet::from([tmp.to_path_buf()]);
        for f in &self.files {
            let path = tmp.join(&f.path);
            if let Some(parent) = path.parent().filter(|p| !dirs.contains(*p)) {
                fs::create_dir_all(parent).map_err(|e| BundleError::io(parent, e))?;
                dirs.insert(parent.to_path_buf());
            }
            let mut file = File::create(&path).map_err(|e| BundleError::io(&path, e))?;
            file.write_all(&f.bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| BundleError::io(&path, e))?;
        }
        for dir in dirs.iter().rev() {
            sync_dir(dir).map_err(|e| BundleError::io(dir, e))?;
        }
        // rename(2) will not replace a non-empty folder, so a folder made meanwhile survives.
        fs::rename(tmp, out).map_err(|e| BundleError::io(out, e))?;
        sync_dir(&parent_of(out)).map_err(|e| BundleError::io(out, e))
    }

    fn write_tar(&self, tmp: &Path, out: &Path) -> Result<(), BundleError> {
        let file = File::create_new(tmp).map_err(|e| BundleError::io(tmp, e))?;
        let mut tar = tar::Builder::new(io::BufWriter::new(file));
        for f in &self.files {
            let mut header = tar::Header::new_ustar();
            header.set_path(&f.path).map_err(|e| BundleError::io(out, e))?;
            header.set_size(f.bytes.len() as u64);
            header.set_mode(TAR_MODE);
            header.set_mtime(TAR_MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            tar.append(&header, f.bytes.as_slice())
                .map_err(|e| BundleError::io(tmp, e))?;
        }
        let file = tar
            .into_inner()
            .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
            .map_err(|e| BundleError::io(tmp, e))?;
        file.sync_all().map_err(|e| BundleError::io(tmp, e))?;
        // A hard link fails when `out` exists, where a rename would silently replace it.
        fs::hard_link(tmp, out).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => BundleError::Exists {
                path: out.to_path_buf(),
            },
            _ => BundleError::io(out, e),
        })?;
        fs::remove_file(tmp).map_err(|e| BundleError::io(tmp, e))?;
        sync_dir(&parent_of(out)).map_err(|e| BundleError::io(out, e))
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temporary_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(out).join(format!(".{name}.tmp-{}", std::process::id()))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn sha256_of_reader(mut r: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(hex(&hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What is wrong with one file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Its bytes do not have the SHA-256 `SHA256SUMS` lists.
    Changed(String),
    /// `SHA256SUMS` lists it; the bundle lacks it.
    Missing(String),
    /// In the bundle, not in `SHA256SUMS`.
    Extra(String),
    /// Not read: a name with `..` or an absolute path, a link or some other non-file.
    Unsafe { name: String, why: &'static str },
    /// A tar holding the name twice: which copy an extractor keeps is up to the extractor.
    Duplicate(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Changed(p) => write!(f, "{p}: changed (its SHA-256 differs from {SUMS_FILE})"),
            Problem::Missing(p) => write!(f, "{p}: missing (listed in {SUMS_FILE})"),
            Problem::Extra(p) => write!(f, "{p}: not listed in {SUMS_FILE}"),
            Problem::Unsafe { name, why } => write!(f, "{name}: not read: {why}"),
            Problem::Duplicate(p) => write!(f, "{p}: appears more than once"),
        }
    }
}

/// The outcome of checking a bundle.
#[derive(Debug)]
pub struct Verification {
    /// The SHA-256 of `SHA256SUMS` (see [`Bundle::fingerprint`]).
    pub fingerprint: String,
    /// Files whose SHA-256 matched.
    pub intact: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a bundle holds as found on disk: each file's SHA-256, and `SHA256SUMS`'s bytes.
#[derive(Default)]
struct Found {
    hashes: BTreeMap<String, String>,
    sums: Option<Vec<u8>>,
    problems: Vec<Problem>,
}

impl Found {
    fn add(&mut self, name: String, hash: String) {
        if self.hashes.insert(name.clone(), hash).is_some() {
            self.problems.push(Problem::Duplicate(name));
        }
    }
}

/// Checks the bundle at `path` (a folder or a tar) against its `SHA256SUMS`. Never reads outside
/// the bundle: entries and listed names with `..` or absolute paths, and links, are reported.
pub fn verify(path: &Path) -> Result<Verification, BundleError> {
    let meta = fs::metadata(path).map_err(|e| BundleError::io(path, e))?;
    let found = if meta.is_dir() {
        read_dir_bundle(path)?
    } else {
        read_tar_bundle(path)?
    };
    let sums = found.sums.as_deref().ok_or_else(|| BundleError::NotABundle {
        path: path.to_path_buf(),
    })?;
    let listed = parse_sums(path, sums)?;
    let mut problems = found.problems.clone();
    let mut intact = Vec::new();
    for (name, want) in &listed {
        match found.hashes.get(name) {
            None => problems.push(Problem::Missing(name.clone())),
            Some(got) if got != want => problems.push(Problem::Changed(name.clone())),
            Some(_) => intact.push(name.clone()),
        }
    }
    for name in found.hashes.keys() {
        if !listed.contains_key(name) && name != SUMS_FILE && name != CREATED_FILE {
            problems.push(Problem::Extra(name.clone()));
        }
    }
    Ok(Verification {
        fingerprint: sha256_hex(sums),
        intact,
        problems,
    })
}

/// The names and hashes `SHA256SUMS` lists (`HASH  NAME` or `HASH *NAME`, as sha256sum writes).
fn parse_sums(path: &Path, sums: &[u8]) -> Result<BTreeMap<String, String>, BundleError> {
    let bad = |line: usize, what: &str| BundleError::BadSums {
        path: path.to_path_buf(),
        line,
        what: what.to_owned(),
    };
    let text = std::str::from_utf8(sums).map_err(|_| bad(0, "not UTF-8"))?;
    let mut listed = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (hash, rest) = line
            .split_at_checked(64)
            .ok_or_else(|| bad(n, "shorter than a SHA-256"))?;
        if !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad(n, "not a lower-case hex SHA-256"));
        }
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(|| bad(n, "expected two spaces (or ` *`) between hash and name"))?;
        if safe_name(name).is_none() {
            return Err(bad(
                n,
                &format!("`{name}` is not a plain relative name inside the bundle"),
            ));
        }
        if listed.insert(name.to_owned(), hash.to_owned()).is_some() {
            return Err(bad(n, &format!("`{name}` is listed twice")));
        }
    }
    Ok(listed)
}

/// `name` as a `/`-separated relative path, or `None` when it could leave the bundle.
fn safe_name(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn read_dir_bundle(root: &Path) -> Result<Found, BundleError> {
    let mut found = Found::default();
    for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            BundleError::io(&path, e.into())
        })?;
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let Some(name) = rel.to_str().and_then(safe_name) else {
            if !rel.as_os_str().is_empty() {
                found.problems.push(Problem::Unsafe {
                    name: rel.to_string_lossy().into_owned(),
                    why: "the name is not UTF-8",
                });
            }
            continue;
        };
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            found.problems.push(Problem::Unsafe {
                name,
                why: "a link or special file, not a regular file",
            });
            continue;
        }
        let file = File::open(entry.path()).map_err(|e| BundleError::io(entry.path(), e))?;
        let hash = if name == SUMS_FILE {
            let bytes = read_sums(file, entry.path())?;
            let hash = sha256_hex(&bytes);
            found.sums = Some(bytes);
            hash
        } else {
            sha256_of_reader(file).map_err(|e| BundleError::io(entry.path(), e))?
        };
        found.add(name, hash);
    }
    Ok(found)
}

fn read_tar_bundle(path: &Path) -> Result<Found, BundleError> {
    let mut file = io::BufReader::new(File::open(path).map_err(|e| BundleError::io(path, e))?);
    // A compressed tar of a bundle, read as a tar, gives errors about garbled headers.
    const COMPRESSED: [(&[u8], &str); 5] = [
        (&[0x1f, 0x8b], "gzip"),
        (b"\xfd7zXZ\0", "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (b"BZh", "bzip2"),
        (b"PK\x03\x04", "zip"),
    ];
    let head = io::BufRead::fill_buf(&mut file).map_err(|e| BundleError::io(path, e))?;
    if let Some((_, what)) = COMPRESSED.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(BundleError::Compressed {
            path: path.to_path_buf(),
            what,
        });
    }
    let mut archive = tar::Archive::new(file);
    let mut found = Found::default();
    // The tar crate's errors name neither the file nor where it broke. An entry cut short
    // reads short without an error, which comes at the next header: "in or after".
    let mut last: Option<String> = None;
    let bad_tar = |place: String, e: io::Error| BundleError::BadTar {
        path: path.to_path_buf(),
        place,
        why: e.to_string(),
    };
    let after = |last: &Option<String>| {
        last.as_ref().map_or_else(
            || "at its first entry".to_owned(),
            |name| format!("in or after entry `{name}`"),
        )
    };
    for entry in archive.entries().map_err(|e| bad_tar(after(&last), e))? {
        let mut entry = entry.map_err(|e| bad_tar(after(&last), e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        last = Some(raw.clone());
        let Some(name) = safe_name(&raw) else {
            // `tar -cf b.tar -C bundle .` names the bundle's folder itself `./`.
            let this_folder = Path::new(&raw).components().all(|c| c == Component::CurDir);
            if !(this_folder && entry.header().entry_type() == tar::EntryType::Directory) {
                found.problems.push(Problem::Unsafe {
                    name: raw,
                    why: "an absolute name or one with `..`",
                });
            }
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => {
                found.problems.push(Problem::Unsafe {
                    name,
                    why: "a link or special entry, not a regular file",
                });
                continue;
            }
        }
        let hash = if name == SUMS_FILE {
            let bytes = read_sums(&mut entry, path)?;
            let hash = sha256_hex(&bytes);
            found.sums = Some(bytes);
            hash
        } else {
            sha256_of_reader(&mut entry).map_err(|e| bad_tar(format!("in entry `{name}`"), e))?
        };
        found.add(name, hash);
    }
    Ok(found)
}

fn read_sums(r: impl Read, path: &Path) -> Result<Vec<u8>, BundleError> {
    let mut bytes = Vec::new();
    r.take(MAX_SUMS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BundleError::io(path, e))?;
    if bytes.len() as u64 > MAX_SUMS_BYTES {
        return Err(BundleError::BadSums {
            path: path.to_path_buf(),
            line: 0,
            what: format!("larger than {MAX_SUMS_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_bundle_are_refused() {
        assert_eq!(safe_name("lines/a.txt").as_deref(), Some("lines/a.txt"));
        assert_eq!(safe_name("./a.txt").as_deref(), Some("a.txt"));
        for bad in ["../a", "a/../../b", "/etc/passwd", "", "."] {
            assert_eq!(safe_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sums_are_sha256sum_lines_sorted_by_name() {
        let b = Bundle::seal(
            vec![
                BundleFile {
                    path: "z.txt".into(),
                    bytes: b"z".to_vec(),
                },
                BundleFile {
                    path: "a.txt".into(),
                    bytes: Vec::new(),
                },
            ],
            b"{}".to_vec(),
        );
        let sums = String::from_utf8(b.file(SUMS_FILE).unwrap().bytes.clone()).unwrap();
        assert_eq!(
            sums,
            format!(
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a.txt\n{}  z.txt\n",
                sha256_hex(b"z")
            )
        );
        assert_eq!(b.files.last().unwrap().path, CREATED_FILE);
    }
}
