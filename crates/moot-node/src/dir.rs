//! The data directory on disk: created readable only by its owner (0700, files 0600, whatever the
//! umask), modes of an existing directory tightened on open, one command at a time (an exclusive
//! lock on `DIR/lock`, waited for within a bound), and atomic file replacement.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::NodeError;

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";

/// The control socket of a running node (`moot serve`), inside the data directory: other
/// commands on the same directory talk to the node through it.
pub const SOCKET_FILE: &str = "moot.sock";

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

/// The web token's file in the data directory: whoever can read it (the directory's owner) can
/// open the node's web UI as the node's owner.
pub const WEB_TOKEN_FILE: &str = "web-token";

/// Creates `dir` if needed and makes it and every file in it readable by its owner only.
/// A mode that cannot be changed (the file is someone else's) is refused, not ignored.
pub fn prepare(dir: &Path) -> Result<(), NodeError> {
    // Made 0700 (and so are the parents it makes), never open to others for a moment.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(data_dir_error(dir))?;
    // Only a new, empty or moot-made directory becomes a data directory: `--data ~/Documents`
    // must not make moot change the modes of someone's own files.
    let own = own_files();
    let mut foreign = false;
    let mut ours = false;
    for entry in std::fs::read_dir(dir).map_err(data_dir_error(dir))? {
        let entry = entry.map_err(data_dir_error(dir))?;
        if own.iter().any(|f| entry.file_name() == f.as_str()) {
            ours = true;
        } else {
            foreign = true;
        }
    }
    if foreign && !ours {
        return Err(NodeError::ForeignDir(dir.to_path_buf()));
    }
    tighten(dir, 0o700)?;
    for name in &own {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => tighten(&path, 0o600)?,
            _ => {}
        }
    }
    Ok(())
}

/// The files moot makes in a data directory: only these have their modes tightened. Built
/// from the constants that name them, so the two cannot drift apart.
fn own_files() -> [String; 12] {
    use crate::keyfile::{BACKUP_FILE, KEYS_FILE, temp_name};
    let store = crate::STORE_FILE;
    [
        WEB_TOKEN_FILE.to_string(),
        format!("{WEB_TOKEN_FILE}.tmp"),
        KEYS_FILE.to_string(),
        BACKUP_FILE.to_string(),
        temp_name(KEYS_FILE),
        temp_name(BACKUP_FILE),
        LOCK_FILE.to_string(),
        SOCKET_FILE.to_string(),
        store.to_string(),
        format!("{store}.new"),
        format!("{store}.closed"),
        format!("{store}.closed.tmp"),
    ]
}

#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(path).map_err(data_dir_error(path))?;
    if meta.permissions().mode() & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        NodeError::NotPrivate {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> Result<(), NodeError> {
    Ok(())
}

/// Options for a new file readable and writable by its owner only.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Replaces `path` with `bytes` atomically: a temporary file (0600) is written and fsynced, then
/// renamed over `path`, then the directory is fsynced. A crash leaves the old or the new file,
/// never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    write_private(path, bytes).map_err(data_dir_error(path))
}

/// [`write_atomic`] for any file (an export), with the I/O error as it is: the new file is
/// readable by its owner only, whatever the umask and whatever file it replaces.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_private(path, |e| e, |file| file.write_all(bytes))
}

/// [`write_private`] for a file written in pieces (a bundle of a whole hub): `write` fills a
/// temporary file beside `path` (0600), which is fsynced and renamed over `path` only if `write`
/// succeeds. Whatever stops it half way — an error, a full disk, a crash, a pulled USB stick —
/// leaves the file that was at `path` as it was, never a truncated one in its place; the
/// temporary file is removed on an error (a crash may leave it, and the next write replaces it).
/// `io` makes this function's own I/O errors into `write`'s kind.
pub fn replace_private<T, E>(
    path: &Path,
    io: impl Fn(std::io::Error) -> E,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    // A symbolic link is followed: the file it names is replaced, not the link.
    let path = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path).map_err(&io)?,
        _ => path.to_path_buf(),
    };
    let path = path.as_path();
    // Not a file nor a directory (a pipe, a terminal, a device): nothing can be renamed over it,
    // and it keeps nothing to lose; written in place.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
        && !meta.is_dir()
    {
        let mut file = OpenOptions::new().write(true).open(path).map_err(&io)?;
        return write(&mut file);
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    // A temporary file left by a crash may have any mode: made afresh.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut file = private_options()
        .create_new(true)
        .open(&temp)
        .map_err(&io)?;
    let written = write(&mut file).and_then(|value| {
        file.sync_all().map_err(&io)?;
        Ok(value)
    });
    drop(file);
    let value = match written {
        Ok(value) => value,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(io(e));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
    Ok(value)
}

/// Takes the data directory's lock, waiting at most `wait`. `on_wait` is called once, after about
/// a second of waiting (to say why the command pauses). The lock is held until the file is
/// dropped.
pub fn lock(dir: &Path, wait: Duration, on_wait: &mut dyn FnMut()) -> Result<File, NodeError> {
    let path = dir.join(LOCK_FILE);
    let file = private_options()
        .open(&path)
        .map_err(data_dir_error(&path))?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(NodeError::DataDir { path, source });
            }
        }
        let waited = started.elapsed();
        if waited >= wait {
            return Err(NodeError::Busy {
                dir: dir.to_path_buf(),
                waited,
            });
        }
        if !told && waited >= Duration::from_secs(1) {
            told = true;
            on_wait();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A write that fails half way leaves the file that was there as it was, and no temporary
    /// file; one that succeeds replaces it, readable by its owner only.
    #[test]
    fn a_replacement_cut_short_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hall.bundle");
        std::fs::write(&path, b"the old bundle, whole").unwrap();
        let failed = replace_private(
            &path,
            |e| e,
            |file| {
                file.write_all(b"half of a new")?;
                Err::<(), _>(std::io::Error::other("the stick was pulled"))
            },
        );
        assert_eq!(failed.unwrap_err().to_string(), "the stick was pulled");
        assert_eq!(std::fs::read(&path).unwrap(), b"the old bundle, whole");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["hall.bundle"], "a temporary file is left");
        let written = replace_private(&path, |e| e, |file| file.write_all(b"new").map(|()| 3));
        assert_eq!(written.unwrap(), 3);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A link is followed (the file it names is replaced, the link stays), and a device is
    /// written in place, never replaced by a file.
    #[cfg(unix)]
    #[test]
    fn a_link_is_followed_and_a_device_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.bundle");
        let link = dir.path().join("link.bundle");
        std::fs::write(&target, b"old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        replace_private(&link, |e| e, |file| file.write_all(b"new")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let null = Path::new("/dev/null");
        replace_private(null, |e| e, |file| file.write_all(b"gone")).unwrap();
        assert!(!std::fs::metadata(null).unwrap().is_file());
        assert!(!Path::new("/dev/null.tmp").exists());
    }
}
