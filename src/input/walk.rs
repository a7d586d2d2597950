//! Finding the input files under the paths a user gives: folders are walked recursively (as
//! `aws s3 sync` leaves them), in byte order of names so every run sees the same order.

use std::path::{Path, PathBuf};

use super::s3key::S3Key;
use super::source::SourceError;

/// One file to read: a flow-log file or a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// The path as the user will see it in `_source`.
    pub name: String,
    /// Why the file cannot be read, when discovery already knows (a loop, a vanished file).
    pub error: Option<SourceError>,
}

/// Sorts files into the order a build reads them in: by the time their S3 object key names
/// (files without one first), then by name (bytewise). The index then does not depend on the
/// order in which paths were given, and each segment holds a stretch of time rather than one
/// account's month, so a time window reads few segments (index-format.md, "Reproducible
/// builds").
pub fn sort_for_build(files: &mut [InputFile]) {
    // `str` orders bytewise.
    files.sort_by_cached_key(|f| (S3Key::from_key(&f.name).time(), f.name.clone()));
}

/// AWS writes this object to test a CloudWatch export destination; it holds no flow logs.
pub(crate) const AWS_WRITE_TEST_OBJECT: &str = "aws-logs-write-test";

/// The files under `paths`, in a deterministic order: the paths in the order given, each folder's
/// files sorted by name. Symbolic links are followed; a link loop is reported as an error entry.
pub fn discover(paths: &[PathBuf]) -> Vec<InputFile> {
    discover_outside(paths, None)
}

/// [`discover`], leaving out the folder `skipped` wherever it appears (the index a build
/// writes, when it lies in its own input tree: its files are not evidence).
pub fn discover_outside(paths: &[PathBuf], skipped: Option<&Path>) -> Vec<InputFile> {
    let skipped = skipped.and_then(|p| p.canonicalize().ok());
    let is_skipped = |p: &Path| {
        skipped
            .as_ref()
            .is_some_and(|s| p.canonicalize().is_ok_and(|p| p == *s))
    };
    let mut files = Vec::new();
    for root in paths {
        if root.is_dir() && is_skipped(root) {
            continue;
        }
        if !root.is_dir() {
            files.push(InputFile {
                path: root.clone(),
                name: display(root),
                error: None,
            });
            continue;
        }
        let before = files.len();
        let walk = walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name();
        for entry in walk
            .into_iter()
            .filter_entry(|e| !(e.file_type().is_dir() && is_skipped(e.path())))
        {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) if e.file_name() == AWS_WRITE_TEST_OBJECT => {}
                Ok(e) => files.push(InputFile {
                    path: e.path().to_path_buf(),
                    name: display(e.path()),
                    error: None,
                }),
                Err(e) => {
                    let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| root.clone());
                    let message = match e.loop_ancestor() {
                        Some(a) => format!("symbolic link loop back to {}", a.display()),
                        None => e.io_error().map(ToString::to_string).unwrap_or_else(|| e.to_string()),
                    };
                    files.push(InputFile {
                        name: display(&path),
                        path,
                        error: Some(SourceError::Io { message }),
                    });
                }
            }
        }
        // A wrong path to an empty sync folder must not read as a clean run.
        if files.len() == before {
            files.push(InputFile {
                path: root.clone(),
                name: display(root),
                error: Some(SourceError::NoFiles),
            });
        }
    }
    files
}

/// A path as a source's name: as given, its control characters escaped (`\n`, `\u{1b}`). A
/// suspect may have named the files; their names are printed on terminals, one per line.
fn display(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

/// `name` with its control characters escaped as Rust writes them (`\n`, `\u{1b}`).
pub fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    name.chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped.into_iter().flatten().chain((!c.is_control()).then_some(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_reads_files_in_the_time_order_of_their_keys_then_by_name() {
        let file = |name: &str| InputFile {
            path: PathBuf::from(name),
            name: name.to_owned(),
            error: None,
        };
        let key = |account: &str, stamp: &str| {
            format!(
                "AWSLogs/{account}/vpcflowlogs/us-east-1/2024/04/28/\
                 {account}_vpcflowlogs_us-east-1_fl-1_{stamp}_ab.log.gz"
            )
        };
        let hive = "AWSLogs/aws-account-id=2/aws-service=vpcflowlogs/aws-region=eu-west-1/\
                    year=2024/month=04/day=28/hour=00/x.log.gz";
        let mut files = vec![
            file(&key("1", "20240428T0005Z")),
            file(&key("1", "20240428T0000Z")),
            file(hive),
            file("b.log"),
            file(&key("3", "20240428T0000Z")),
            file("a.log"),
        ];
        sort_for_build(&mut files);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let (k1, k3, k1later) = (
            key("1", "20240428T0000Z"),
            key("3", "20240428T0000Z"),
            key("1", "20240428T0005Z"),
        );
        // Midnight: two file stamps and the hive partition's hour, by name; then five past.
        assert_eq!(names, ["a.log", "b.log", &k1, &k3, hive, &k1later]);
    }

    #[test]
    fn walks_in_name_order_and_skips_the_write_test_object() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b/2.log", "a/1.log", "a/10.log", "aws-logs-write-test", "c.log"] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let names: Vec<String> = discover(&[dir.path().to_path_buf()])
            .iter()
            .map(|f| f.path.strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a/1.log", "a/10.log", "b/2.log", "c.log"]);
    }

    #[test]
    fn a_folder_without_files_is_an_input_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty/sub");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join("aws-logs-write-test"), "x").unwrap();
        let found = discover(&[dir.path().to_path_buf()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].error, Some(SourceError::NoFiles));
    }

    #[cfg(unix)]
    #[test]
    fn link_loops_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("d/up")).unwrap();
        let found = discover(&[dir.path().to_path_buf()]);
        assert!(found
            .iter()
            .any(|f| matches!(&f.error, Some(SourceError::Io { message }) if message.contains("loop"))));
    }
}
