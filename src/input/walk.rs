//! Finding the input files under the paths a user gives: folders are walked recursively (as
//! `aws s3 sync` leaves them), in byte order of names so every run sees the same order.

use std::path::{Path, PathBuf};

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

/// Sorts files by name (bytewise): the order a build reads them in, so that the index does not
/// depend on the order in which paths were given.
pub fn sort_by_name(files: &mut [InputFile]) {
    files.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
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

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
