//! Files that appear whole or not at all: written under a temporary name beside their
//! destination (`<name>.tmp<pid>`), synced, then renamed into place. Dropped before
//! [`AtomicFile::commit`] (an error, a panic), a file removes its temporary; one left by a
//! killed process has a name that [`crate::is_temp_name`] recognises and
//! [`crate::sweep_temp_files`] removes. Folders are replaced whole with [`swap_dir`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A streaming writer for `path` that replaces it only on [`commit`](Self::commit), so that
/// output of any size (a manifest of every RSNA image) is written without holding it in
/// memory and never seen half-written.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file beside `path` (`<name>.tmp<pid>`).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let tmp = tmp_path(path);
        let file = File::create(&tmp)?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the temporary onto the destination. On an error the
    /// temporary is removed and the destination is as it was.
    pub fn commit(mut self) -> std::io::Result<()> {
        let writer = self.file.take().expect("a file until committed");
        let result = (|| {
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&self.tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("a file until committed")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Flushes a CSV writer streaming into an [`AtomicFile`] and commits the file.
pub fn commit_csv(w: csv::Writer<AtomicFile>) -> std::io::Result<()> {
    w.into_inner().map_err(|e| e.into_error())?.commit()
}

/// Where [`AtomicFile`] writes before its rename: `<name>.tmp<pid>` beside `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// A file that could not be written, read or parsed. The message is one line, cause
/// included (`PATH: cannot parse: row 3: ...`), as every mammo crate words its file errors;
/// the cause stays typed in [`cause`](Self::cause) for callers that look inside.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot {action}: {cause}", path.display())]
pub struct FileError {
    /// "write", "read" or "parse".
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl FileError {
    pub fn new(
        action: &'static str,
        path: &Path,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            cause: cause.into(),
        }
    }
}

/// A CSV row that did not parse (1-based, the header is row 1).
#[derive(Debug, thiserror::Error)]
#[error("row {row}: {error}")]
pub struct CsvRowError {
    pub row: usize,
    #[source]
    pub error: csv::Error,
}

/// `value` as pretty JSON, written atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| FileError::new("write", path, e))?;
    write_atomic(path, text.as_bytes()).map_err(|e| FileError::new("write", path, e))
}

/// Reads a JSON file as `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::new("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| FileError::new("parse", path, e))
}

/// `rows` as CSV with a header from the first row's field names, streamed to an
/// [`AtomicFile`]. No rows: an empty file.
pub fn write_csv<T: Serialize>(
    path: &Path,
    rows: impl IntoIterator<Item = T>,
) -> Result<(), FileError> {
    let err = |e: csv::Error| FileError::new("write", path, e);
    let file = AtomicFile::create(path).map_err(|e| FileError::new("write", path, e))?;
    let mut w = csv::Writer::from_writer(file);
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    commit_csv(w).map_err(|e| FileError::new("write", path, e))
}

/// Reads every row of a CSV file with a header as `T`; a bad row is named
/// ([`CsvRowError`]).
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, FileError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| FileError::new("read", path, e))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|error| FileError::new("parse", path, CsvRowError { row: i + 2, error }))
        })
        .collect()
}

/// Replaces the folder `dst` by the complete folder `tmp` with two renames through
/// `<dst>.old`; a kill between them leaves `<dst>.old`, which [`recover_dir`] puts back.
pub fn swap_dir(tmp: &Path, dst: &Path) -> std::io::Result<()> {
    let old = dst.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if dst.exists() {
        std::fs::rename(dst, &old)?;
    }
    std::fs::rename(tmp, dst)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Undoes a [`swap_dir`] killed between its renames: `<dst>.old` back to `dst` when `dst` is
/// missing.
pub fn recover_dir(dst: &Path) -> std::io::Result<()> {
    let old = dst.with_extension("old");
    if !dst.exists() && old.exists() {
        std::fs::rename(&old, dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mammo-atomic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_destination_changes_only_on_commit() {
        let dir = scratch("commit");
        let path = dir.join("manifest.csv");
        std::fs::write(&path, "old\n").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        for i in 0..100_000 {
            writeln!(f, "row {i}").unwrap();
        }
        // Mid-write the old content is intact and the temporary is recognisable.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let listed = names(&dir);
        assert_eq!(listed.len(), 2, "{listed:?}");
        let tmp = format!("manifest.csv.tmp{}", std::process::id());
        assert!(listed.contains(&tmp), "{listed:?}");
        f.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 100_000);
        assert!(text.ends_with("row 99999\n"));
        assert_eq!(names(&dir), ["manifest.csv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropped_without_commit_leaves_nothing_behind() {
        let dir = scratch("drop");
        let path = dir.join("out.json");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
        write_atomic(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        assert_eq!(names(&dir), ["out.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_and_csv_round_trip_and_errors_keep_their_cause() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Row {
            id: String,
            label: u8,
        }
        let dir = scratch("helpers");
        let rows = vec![
            Row {
                id: "a".into(),
                label: 1,
            },
            Row {
                id: "b,c".into(),
                label: 0,
            },
        ];
        let csv_path = dir.join("rows.csv");
        write_csv(&csv_path, &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&csv_path).unwrap(),
            "id,label\na,1\n\"b,c\",0\n"
        );
        assert_eq!(read_csv::<Row>(&csv_path).unwrap(), rows);
        std::fs::write(&csv_path, "id,label\na,1\nb,x\n").unwrap();
        let e = read_csv::<Row>(&csv_path).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("{}: cannot parse: row 3: ", csv_path.display())),
            "{message}"
        );
        let row = e.cause.downcast_ref::<CsvRowError>().expect("a row error");
        assert_eq!(row.row, 3);

        let json_path = dir.join("v.json");
        write_json(&json_path, &rows[0]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&json_path).unwrap(),
            "{\n  \"id\": \"a\",\n  \"label\": 1\n}"
        );
        assert_eq!(read_json::<Row>(&json_path).unwrap(), rows[0]);
        let missing = read_json::<Row>(&dir.join("missing.json")).unwrap_err();
        assert_eq!(missing.action, "read");
        assert!(missing.cause.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(names(&dir), ["rows.csv", "v.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
