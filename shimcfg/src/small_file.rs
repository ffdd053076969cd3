//! Reading a config or options file without ever blocking or reading without end: the
//! shim server reads these in request threads, so a FIFO, a device such as `/dev/zero`
//! or a huge file named by mistake must fail at once, with a reason.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Config and options files are small; anything larger is a mistake.
pub const MAX_BYTES: u64 = 1 << 20;

/// The text of a regular file of at most [`MAX_BYTES`].
pub fn read(path: &Path) -> io::Result<String> {
    // O_NONBLOCK: opening a FIFO with no writer must not wait.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is larger than {MAX_BYTES} bytes"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        assert!(read(Path::new("/dev/zero")).unwrap_err().to_string().contains("not a regular file"));
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read(&fifo).unwrap_err().to_string().contains("not a regular file"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
        assert!(read(&big).unwrap_err().to_string().contains("larger than"));
        std::fs::write(&big, "engine = 'x'\n").unwrap();
        assert_eq!(read(&big).unwrap(), "engine = 'x'\n");
    }
}
