//! The program's standard streams as Wasmer virtual files over the descriptors the host
//! passes. Reads and writes are plain blocking calls on the descriptor: output reaches
//! the host's pipe or FIFO before the write returns (Wasmer's own host file type goes
//! through tokio's thread pool and may still hold output when the program exits).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use shim_wasm_abi::plugin::PluginError;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use virtual_fs::{FsError, VirtualFile};

#[derive(Debug)]
pub struct HostStream {
    file: File,
    /// The WASI descriptor number (0, 1 or 2) this stream stands for.
    wasi_fd: u32,
    seek_result: Option<io::Result<u64>>,
}

impl HostStream {
    /// A stream on a copy of `fd`; the host keeps its own descriptor.
    pub fn new(fd: BorrowedFd<'_>, wasi_fd: u32, what: &str) -> Result<Box<Self>, PluginError> {
        let file = fd
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|e| PluginError::io(format!("cannot duplicate the {what} descriptor: {e}")))?;
        Ok(Box::new(Self { file, wasi_fd, seek_result: None }))
    }
}

impl VirtualFile for HostStream {
    fn last_accessed(&self) -> u64 {
        0
    }

    fn last_modified(&self) -> u64 {
        0
    }

    fn created_time(&self) -> u64 {
        0
    }

    fn size(&self) -> u64 {
        0
    }

    fn set_len(&mut self, _new_size: u64) -> virtual_fs::Result<()> {
        Err(FsError::PermissionDenied)
    }

    fn unlink(&mut self) -> virtual_fs::Result<()> {
        Ok(())
    }

    fn get_special_fd(&self) -> Option<u32> {
        Some(self.wasi_fd)
    }

    fn poll_read_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // A read blocks until data or end of file, so the stream is always "ready".
        Poll::Ready(Ok(1))
    }

    fn poll_write_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(8192))
    }
}

impl AsyncRead for HostStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = self.file.read(buf.initialize_unfilled());
        Poll::Ready(read.map(|n| buf.advance(n)))
    }
}

impl AsyncWrite for HostStream {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.file.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.file.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for HostStream {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let result = self.file.seek(position);
        self.seek_result = Some(result);
        Ok(())
    }

    fn poll_complete(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let result = match self.seek_result.take() {
            Some(result) => result,
            None => self.file.stream_position(),
        };
        Poll::Ready(result)
    }
}
