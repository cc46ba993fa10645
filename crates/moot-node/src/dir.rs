//! The data directory on disk: created readable only by its owner (0700, files 0600, whatever the
//! umask), modes of an existing directory tightened on open, one command at a time (an exclusive
//! lock on `DIR/lock`, waited for within a bound), and atomic file replacement.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
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

/// Replaces `path` (a file of the data directory) with `bytes` atomically: a temporary file
/// (`NAME.tmp`, 0600: [`crate::keyfile::temp_name`], which the key file's loader removes when a
/// crash left it) is written and fsynced, then renamed over `path`, then the directory is
/// fsynced. A crash leaves the old or the new file, never a mix. A link is followed as by
/// [`replace_private`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    replace(path, Temp::Fixed, |e| e, |file| file.write_all(bytes)).map_err(data_dir_error(path))
}

/// [`write_atomic`] for any file (an export), with the I/O error as it is: the new file is
/// readable by its owner only, whatever the umask and whatever file it replaces.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_private(path, |e| e, |file| file.write_all(bytes))
}

/// [`write_private`] for a file written in pieces (a bundle of a whole hub): `write` fills a
/// temporary file beside `path` (0600, a name of this process's own: `NAME.PID.tmp`), which is
/// fsynced and renamed over `path` only if `write` succeeds. Whatever stops it half way — an
/// error, a full disk, a crash, a pulled USB stick — leaves the file that was at `path` as it
/// was, never a truncated one in its place; the temporary file is removed on an error (a crash
/// may leave it). `io` makes this function's own I/O errors into `write`'s kind.
///
/// A symbolic link to a file is followed (the file it names is replaced, the link stays),
/// after the link is opened as any open would (so the kernel's refusal to follow another
/// user's link in a sticky directory, `fs.protected_symlinks`, still applies). A terminal or a
/// device (`/dev/stdout` on a terminal), or a pipe of this user's (`/dev/stdout` into a pipe),
/// is written in place: nothing can be renamed over it. Any other kind of file, such as
/// another user's named pipe, is refused: what is written may be secret.
pub fn replace_private<T, E>(
    path: &Path,
    io: impl Fn(std::io::Error) -> E,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    replace(path, Temp::Own, io, write)
}

/// How [`replace`] names its temporary file.
enum Temp {
    /// `NAME.tmp`: a data directory's file, written under its lock (one writer).
    Fixed,
    /// `NAME.PID.tmp` (a number added if that exists): any file, which other processes may be
    /// writing too.
    Own,
}

fn replace<T, E>(
    path: &Path,
    temp_name: Temp,
    io: impl Fn(std::io::Error) -> E,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    // What is there, a link followed.
    let target = std::fs::metadata(path);
    if let Ok(meta) = &target
        && !meta.is_file()
        && !meta.is_dir()
    {
        let mut file = open_in_place(path, meta).map_err(&io)?;
        return write(&mut file);
    }
    let linked;
    let path = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            match target {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "a link to nothing: name the file itself",
                    )));
                }
                Err(e) => return Err(io(e)),
                Ok(_) => {}
            }
            // Opened first, as a path only (a file of any mode may be replaced as when named
            // itself): the kernel judges the link as for any open.
            open_path_only(path).map_err(&io)?;
            linked = std::fs::canonicalize(path).map_err(&io)?;
            linked.as_path()
        }
        _ => path,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "names no file",
        )));
    };
    let (temp, mut file) = create_temp(dir, name, temp_name).map_err(&io)?;
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
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
    Ok(value)
}

/// Creates the temporary file (0600) written before it is renamed over `name` in `dir`.
fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
    temp_name: Temp,
) -> std::io::Result<(std::path::PathBuf, File)> {
    let named = |suffix: &str| {
        let mut temp = name.to_owned();
        temp.push(suffix);
        dir.join(temp)
    };
    match temp_name {
        Temp::Fixed => {
            let temp = named(".tmp");
            // A temporary file left by a crash may have any mode: made afresh.
            match std::fs::remove_file(&temp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let file = private_options().create_new(true).open(&temp)?;
            Ok((temp, file))
        }
        Temp::Own => {
            let pid = std::process::id();
            for tries in 0..=100u32 {
                let temp = match tries {
                    0 => named(&format!(".{pid}.tmp")),
                    n => named(&format!(".{pid}.{n}.tmp")),
                };
                match private_options().create_new(true).open(&temp) {
                    Ok(file) => return Ok((temp, file)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 100 => {}
                    Err(e) => return Err(e),
                }
            }
            Err(std::io::ErrorKind::AlreadyExists.into())
        }
    }
}

fn refused() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "not a file, nor a terminal, device or pipe of this user's: not written",
    )
}

/// Opens what may be written in place at `path` (`meta`: its metadata, a link followed): a
/// terminal or device; a pipe this process was handed (`/dev/stdout` into a pipe); a named pipe
/// of this user's. Anything else, such as another user's named pipe, is refused before a byte
/// is written: judged by the opened file, not by its name (a name may change in between), and
/// opened without waiting for a reader.
#[cfg(unix)]
fn open_in_place(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<File> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
    let kind = meta.file_type();
    if !kind.is_char_device() && !kind.is_fifo() {
        return Err(refused());
    }
    let file = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        // A named pipe nobody reads yet: this user's only, then opened to wait for its reader,
        // and written only if it is the same pipe.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) && kind.is_fifo() => {
            if meta.uid() != effective_uid() {
                return Err(refused());
            }
            let file = OpenOptions::new().write(true).open(path)?;
            let opened = file.metadata()?;
            if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
                return Err(refused());
            }
            return Ok(file);
        }
        Err(e) => return Err(e),
    };
    let opened = file.metadata()?;
    let kind = opened.file_type();
    let mine = opened.uid() == effective_uid() || is_unnamed_pipe(&opened);
    if !(kind.is_char_device() || (kind.is_fifo() && mine)) {
        return Err(refused());
    }
    set_blocking(&file)?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_in_place(_path: &Path, _meta: &std::fs::Metadata) -> std::io::Result<File> {
    Err(refused())
}

/// True for a pipe made by `pipe()` (one end of a shell's `|`), which no directory names: it
/// lives where a pipe made now does.
#[cfg(unix)]
fn is_unnamed_pipe(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::io::pipe()
        .ok()
        .and_then(|(reader, _)| {
            File::from(std::os::fd::OwnedFd::from(reader))
                .metadata()
                .ok()
        })
        .is_some_and(|pipe| pipe.dev() == meta.dev())
}

/// Opens `path` as a path only (`O_PATH`: no permission on the file needed), a link followed.
#[cfg(target_os = "linux")]
fn open_path_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_path_only(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Clears `O_NONBLOCK` (a pipe opened not to wait for a reader is then written as any file).
#[cfg(unix)]
#[allow(unsafe_code)]
fn set_blocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for the life of `file`; F_GETFL and F_SETFL read and set its status
    // flags and touch no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// This process's effective user id.
#[cfg(unix)]
#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: `geteuid` takes no argument, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
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

    /// A link is followed (the file it names is replaced, the link stays); a pipe of this user's
    /// is written in place, another user's refused; a directory is not replaced.
    #[cfg(unix)]
    #[test]
    fn a_link_is_followed_and_only_this_users_pipes_written_in_place() {
        use std::os::unix::ffi::OsStrExt as _;
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
        // A named pipe of this user's, read by another thread.
        let fifo = dir.path().join("pipe");
        let name = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(make_fifo(&name), 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        replace_private(&fifo, |e| e, |file| file.write_all(b"through the pipe")).unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(!std::fs::metadata(&fifo).unwrap().is_file());
        // A pipe this process holds, reached through /proc (as `/dev/stdout` into a `|`).
        let (reader, writer) = std::io::pipe().unwrap();
        let handed = std::path::PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&writer)
        ));
        replace_private(&handed, |e| e, |file| file.write_all(b"handed")).unwrap();
        drop(writer);
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut { reader }, &mut got).unwrap();
        assert_eq!(got, b"handed");
        // Another user's pipe: refused before anything is written. (Only a superuser can hand
        // a pipe to another user; elsewhere this part cannot be set up.)
        if std::os::unix::fs::chown(&fifo, Some(65534), None).is_ok() {
            // Judged before it is opened: no reader is needed for it to return.
            let refused = replace_private(&fifo, |e| e, |file| file.write_all(b"secret"));
            assert_eq!(
                refused.unwrap_err().kind(),
                std::io::ErrorKind::PermissionDenied
            );
        }
        // A link to nothing is refused, and stays a link.
        let dangling = dir.path().join("dangling.bundle");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
        assert!(replace_private(&dangling, |e| e, |file| file.write_all(b"x")).is_err());
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(replace_private(&sub, |e| e, |file| file.write_all(b"x")).is_err());
        assert!(std::fs::metadata(&sub).unwrap().is_dir());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[cfg(unix)]
    #[allow(unsafe_code)]
    fn make_fifo(name: &std::ffi::CStr) -> i32 {
        // SAFETY: `name` is a valid NUL-terminated path that outlives the call.
        unsafe { libc::mkfifo(name.as_ptr(), 0o600) }
    }
}
