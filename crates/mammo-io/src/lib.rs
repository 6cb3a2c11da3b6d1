//! mammo's file plumbing, shared by every stage: files and folders that appear whole or not
//! at all ([`AtomicFile`], [`write_atomic`], [`swap_dir`]), JSON and CSV read and written
//! through them with errors naming the file and the row ([`FileError`]), and output folders
//! owned by one writer at a time ([`OutputLock`]) with the temporaries of killed writers swept
//! ([`sweep_temp_files`]), and the progress bar of every long command ([`progress_bar`]).

mod atomic;
mod outdir;
mod progress;

pub use atomic::{
    AtomicFile, CsvRowError, FileError, commit_csv, read_csv, read_json, recover_dir, swap_dir,
    tmp_path, write_atomic, write_csv, write_json,
};
pub use outdir::{LOCK_FILE, LockError, OutputLock, is_temp_name, sweep_temp_files};
pub use progress::progress_bar;

/// Why an operation failed: an I/O, parser or codec error kept typed, or a message. Error
/// variants hold it as their `#[source]` and put its text in their own message.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;
