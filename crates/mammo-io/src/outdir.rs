//! Output folders owned by one writer at a time, and the temporary files of killed writers.
//!
//! Every command that writes a folder takes an [`OutputLock`] on it first: a file
//! `.mammo.lock` created exclusively, holding the writer's pid and command. A second writer
//! is refused with a message naming the first; a lock whose process is gone (killed) is
//! stale and taken over. Under the lock, [`sweep_temp_files`] removes what killed writers
//! left half-written (`*.tmp<pid>` files from [`crate::write_atomic`], `*.tmp` files and
//! folders), which no live writer can own.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name inside the output folder.
pub const LOCK_FILE: &str = ".mammo.lock";

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error(
        "{} is being written by another mammo process (pid {pid}: {holder}); wait for it to \
         finish, or use another output folder. If that process is gone, delete {}",
        dir.display(),
        lock.display()
    )]
    Busy {
        dir: PathBuf,
        lock: PathBuf,
        pid: u32,
        holder: String,
    },
    /// The folder or its lock file could not be created or read.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Exclusive ownership of an output folder; released (the lock file removed) on drop.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    /// The pid of a stale lock that was taken over, for callers that want to say so.
    pub took_over_from: Option<u32>,
}

impl OutputLock {
    /// Creates `dir` if needed and locks it for `command` (a short description such as
    /// `"mammo preprocess"`).
    pub fn acquire(dir: &Path, command: &str) -> Result<Self, LockError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let mut took_over_from = None;
        // Two rounds: the second after removing a stale lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let me = std::process::id();
                    let start = process_start(me).map_or(String::new(), |t| t.to_string());
                    let text = format!("{me}\n{command}\n{start}\n");
                    f.write_all(text.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(io(&path))?;
                    return Ok(Self {
                        path,
                        took_over_from,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = match std::fs::read_to_string(&path) {
                        Ok(t) => t,
                        // Removed meanwhile by its owner: try again.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io(&path)(e)),
                    };
                    let mut lines = text.lines();
                    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
                    let holder = lines.next().unwrap_or("unknown command").to_owned();
                    let start = lines.next().and_then(|l| l.trim().parse::<u64>().ok());
                    match pid {
                        Some(pid) if pid == std::process::id() || process_alive(pid, start) => {
                            return Err(LockError::Busy {
                                dir: dir.to_path_buf(),
                                lock: path,
                                pid,
                                holder,
                            });
                        }
                        // Dead owner, or a lock file cut short by a kill while written.
                        _ => {
                            took_over_from = pid;
                            match std::fs::remove_file(&path) {
                                Ok(()) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => return Err(io(&path)(e)),
                            }
                        }
                    }
                }
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Err(LockError::Io {
            path,
            source: std::io::Error::other("another process keeps re-creating the lock"),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the process that wrote a lock still runs: a process with this pid exists, has
/// not exited (a zombie writes nothing), and started when the lock's writer did (so that a
/// reused pid does not keep a stale lock alive). On platforms without /proc, assume it runs:
/// a stale lock then has to be removed by hand, which the error message says how to do.
fn process_alive(pid: u32, recorded_start: Option<u64>) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some((state, start)) = proc_stat(pid) else {
            return false;
        };
        if state.is_some_and(|c| c == 'Z' || c == 'X') {
            return false;
        }
        match (recorded_start, start) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, recorded_start);
        true
    }
}

/// A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat).
fn process_start(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        proc_stat(pid)?.1
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// State letter (field 3) and start time (field 22) of /proc/<pid>/stat; `None` when there
/// is no such process. Fields are counted after the command name, which may hold spaces.
#[cfg(target_os = "linux")]
fn proc_stat(pid: u32) -> Option<(Option<char>, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Some((None, None));
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().and_then(|s| s.chars().next());
    let start = fields.get(19).and_then(|s| s.parse().ok());
    Some((state, start))
}

/// Whether a file or folder name is one of mammo's temporaries: `name.tmp` or
/// `name.tmp<pid>` (what [`crate::write_atomic`] writes before its rename).
pub fn is_temp_name(name: &str) -> bool {
    match name.rfind(".tmp") {
        Some(i) if i > 0 => name[i + 4..].bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Removes every temporary file or folder under `dir` (recursively, not following links)
/// and returns how many entries and bytes went. Call it only while holding the folder's
/// [`OutputLock`]: then no live writer owns any of them.
pub fn sweep_temp_files(dir: &Path) -> std::io::Result<(usize, u64)> {
    let mut removed = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name();
            let temp = name.to_str().is_some_and(is_temp_name);
            let path = entry.path();
            if temp && kind.is_dir() {
                bytes += tree_size(&path);
                std::fs::remove_dir_all(&path)?;
                removed += 1;
            } else if temp && kind.is_file() {
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&path)?;
                removed += 1;
            } else if kind.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok((removed, bytes))
}

fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mammo-outdir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn temp_names() {
        assert!(is_temp_name("a.png.tmp1234"));
        assert!(is_temp_name("checkpoint.tmp"));
        assert!(is_temp_name("model.safetensors.tmp"));
        assert!(!is_temp_name(".tmp"));
        assert!(!is_temp_name("a.tmpl"));
        assert!(!is_temp_name("tmp"));
        assert!(!is_temp_name("notes.tmp.png"));
    }

    #[test]
    fn a_second_writer_is_refused_and_the_lock_goes_on_drop() {
        let d = scratch("busy");
        let first = OutputLock::acquire(&d, "mammo test").unwrap();
        let err = OutputLock::acquire(&d, "mammo test 2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pid") && err.contains("mammo test"), "{err}");
        assert!(err.contains(&d.display().to_string()), "{err}");
        drop(first);
        assert!(!d.join(LOCK_FILE).exists());
        let again = OutputLock::acquire(&d, "mammo test 3").unwrap();
        assert_eq!(again.took_over_from, None);
        drop(again);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let d = scratch("stale");
        std::fs::create_dir_all(&d).unwrap();
        // A pid far above Linux's pid_max (2^22): no such process.
        std::fs::write(d.join(LOCK_FILE), "99999999\nmammo train\n").unwrap();
        let lock = OutputLock::acquire(&d, "mammo test").unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(lock.took_over_from, Some(99_999_999));
        }
        // A live pid whose start time differs from the recorded one was reused: stale.
        drop(lock);
        std::fs::write(d.join(LOCK_FILE), "1\nmammo train\n987654321987\n").unwrap();
        let lock = OutputLock::acquire(&d, "mammo test").unwrap();
        if cfg!(target_os = "linux") && std::path::Path::new("/proc/1/stat").exists() {
            assert_eq!(lock.took_over_from, Some(1));
        }
        // A lock file cut short (killed while writing it) is stale too.
        drop(lock);
        std::fs::write(d.join(LOCK_FILE), "").unwrap();
        let lock = OutputLock::acquire(&d, "mammo test").unwrap();
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert!(text.starts_with(&std::process::id().to_string()), "{text}");
        drop(lock);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sweep_removes_temporaries_only() {
        let d = scratch("sweep");
        std::fs::create_dir_all(d.join("512/p1")).unwrap();
        std::fs::create_dir_all(d.join("fold0/checkpoint.tmp")).unwrap();
        std::fs::write(d.join("fold0/checkpoint.tmp/model.bpk"), [0u8; 100]).unwrap();
        std::fs::write(d.join("512/p1/a.png.tmp777"), [0u8; 10]).unwrap();
        std::fs::write(d.join("512/p1/a.png"), [0u8; 5]).unwrap();
        std::fs::write(d.join("manifest.csv"), "x").unwrap();
        let (n, bytes) = sweep_temp_files(&d).unwrap();
        assert_eq!((n, bytes), (2, 110));
        assert!(d.join("512/p1/a.png").exists());
        assert!(d.join("manifest.csv").exists());
        assert!(!d.join("512/p1/a.png.tmp777").exists());
        assert!(!d.join("fold0/checkpoint.tmp").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
