//! Stream adapters that compute SHA-256 and count bytes as an archive passes through, and
//! report progress along the way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Progress is reported at most once per this many bytes.
const REPORT_EVERY: u64 = 1 << 20;

/// Called with the number of bytes seen so far.
pub(crate) type Report = Box<dyn FnMut(u64) + Send>;

/// Hashes and counts what is written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
    report: Option<Report>,
    next_report: u64,
}

impl<W> HashingWriter<W> {
    pub(crate) fn new(inner: W, report: Option<Report>) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            report,
            next_report: REPORT_EVERY,
        }
    }

    pub(crate) fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The SHA-256 (hex) and the byte count so far.
    pub(crate) fn digest(&self) -> (String, u64) {
        (hex::encode(self.hasher.clone().finalize()), self.bytes)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.hasher.update(&buf[..n]);
        this.bytes += n as u64;
        if this.bytes >= this.next_report {
            this.next_report = this.bytes + REPORT_EVERY;
            if let Some(r) = this.report.as_mut() {
                r(this.bytes);
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Hashes and counts what is read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    report: Option<Report>,
    next_report: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R, report: Option<Report>) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            report,
            next_report: REPORT_EVERY,
        }
    }

    /// The SHA-256 (hex) and the byte count so far.
    pub(crate) fn digest(&self) -> (String, u64) {
        (hex::encode(self.hasher.clone().finalize()), self.bytes)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let fresh = &buf.filled()[before..];
        this.hasher.update(fresh);
        this.bytes += fresh.len() as u64;
        if this.bytes >= this.next_report {
            this.next_report = this.bytes + REPORT_EVERY;
            if let Some(r) = this.report.as_mut() {
                r(this.bytes);
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_directions_hash_the_same_bytes() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let want = hex::encode(Sha256::digest(&data));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut w = HashingWriter::new(
            Vec::new(),
            Some(Box::new(move |n| s.lock().unwrap().push(n))),
        );
        for chunk in data.chunks(64 * 1024) {
            w.write_all(chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
        assert_eq!(w.digest(), (want.clone(), data.len() as u64));
        assert_eq!(w.inner_mut().len(), data.len());
        assert!(seen.lock().unwrap().len() >= 2);

        let mut r = HashingReader::new(&data[..], None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(r.digest(), (want, data.len() as u64));
    }
}
