//! Per-connection guards: a write timeout around the socket, the connection cap, and the
//! answer given to connections over the cap.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// A socket whose writes fail with `TimedOut` once one has made no progress for
/// `timeout`: a client that stops reading is disconnected, and with it whatever its
/// response still holds. As with nginx's `send_timeout`, the clock runs between two
/// successful writes, not over the whole response, so a slow but live client is served.
/// No timer exists until a write has to wait.
pub(crate) struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    /// Created at the first write that has to wait, then reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` counts down for the write waiting now.
    armed: bool,
    metrics: Arc<Metrics>,
}

impl<T> WriteTimeout<T> {
    pub(crate) fn new(inner: T, timeout: Duration, metrics: Arc<Metrics>) -> WriteTimeout<T> {
        WriteTimeout {
            inner,
            timeout,
            timer: None,
            armed: false,
            metrics,
        }
    }

    /// Called when a write returned `Pending`: starts the clock if it is not running, and
    /// fails once it has run out.
    fn stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = Instant::now() + self.timeout;
        if !self.armed {
            self.armed = true;
            match &mut self.timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        ready!(timer.as_mut().poll(cx));
        self.metrics.write_timeouts.fetch_add(1, Relaxed);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading",
        )))
    }

    fn progressed<R>(
        &mut self,
        r: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

use std::future::Future as _;

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progressed(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progressed(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progressed(r, cx)
    }
}

/// One open connection, counted in `parparchik_connections_open` until dropped.
pub(crate) struct ConnectionSlot {
    metrics: Arc<Metrics>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.metrics.connections_open.fetch_sub(1, Relaxed);
    }
}

/// A slot for a new connection, or `None` when `max` are open already.
pub(crate) fn try_open(metrics: &Arc<Metrics>, max: usize) -> Option<ConnectionSlot> {
    let max = max as u64;
    let before = metrics.connections_open.fetch_add(1, Relaxed);
    if before >= max {
        metrics.connections_open.fetch_sub(1, Relaxed);
        metrics.connections_rejected.fetch_add(1, Relaxed);
        return None;
    }
    Some(ConnectionSlot {
        metrics: Arc::clone(metrics),
    })
}

const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
cache-control: no-store\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 33\r\n\r\n\
{\"error\":\"too many connections\"}\n";

/// Rejections being written at once; beyond this a connection over the cap is closed
/// without a word, so a flood cannot pile up rejection tasks either.
const MAX_REJECTING: usize = 256;
/// Time a rejected client gets to take its answer.
const REJECT_FOR: Duration = Duration::from_secs(1);

/// Answers a connection over the cap with 503 and closes it; spawns at most
/// [`MAX_REJECTING`] such tasks at once.
pub(crate) fn reject(stream: TcpStream, rejecting: &Arc<AtomicUsize>) {
    if rejecting.fetch_add(1, Relaxed) >= MAX_REJECTING {
        rejecting.fetch_sub(1, Relaxed);
        return;
    }
    let rejecting = Arc::clone(rejecting);
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(REJECT_FOR, async {
            stream.write_all(OVER_CAPACITY).await?;
            stream.shutdown().await?;
            // Read what the client sent, so closing does not reset the connection and
            // destroy the answer before the client has read it.
            let mut sink = [0u8; 4096];
            let mut total = 0;
            while total < 64 * 1024 {
                let n = stream.read(&mut sink).await?;
                if n == 0 {
                    break;
                }
                total += n;
            }
            io::Result::Ok(())
        })
        .await;
        rejecting.fetch_sub(1, Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rejection_is_well_formed() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn slots_are_capped_and_given_back() {
        let m = Arc::new(Metrics::default());
        let a = try_open(&m, 2).unwrap();
        let _b = try_open(&m, 2).unwrap();
        assert!(try_open(&m, 2).is_none());
        assert_eq!(m.connections_rejected.load(Relaxed), 1);
        drop(a);
        assert!(try_open(&m, 2).is_some());
        assert_eq!(m.connections_open.load(Relaxed), 1);
    }

    /// A peer that never reads: the writer fails after the timeout, not before.
    #[tokio::test]
    async fn a_stalled_write_times_out() {
        let (a, _b) = tokio::io::duplex(1024);
        let m = Arc::new(Metrics::default());
        let mut w = WriteTimeout::new(a, Duration::from_millis(200), Arc::clone(&m));
        let started = std::time::Instant::now();
        let chunk = vec![0u8; 512];
        let e = loop {
            if let Err(e) = w.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(m.write_timeouts.load(Relaxed), 1);
    }

    /// A slow reader that keeps taking bytes is never cut off, though the whole answer
    /// takes several times the timeout.
    #[tokio::test]
    async fn a_slow_but_live_reader_is_served() {
        let (a, mut b) = tokio::io::duplex(64);
        let m = Arc::new(Metrics::default());
        let mut w = WriteTimeout::new(a, Duration::from_millis(400), m);
        let started = std::time::Instant::now();
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 1024 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                got += b.read(&mut buf).await.unwrap();
            }
            got
        });
        w.write_all(&[1u8; 1024]).await.expect("never timed out");
        assert!(started.elapsed() > Duration::from_millis(400));
        assert_eq!(reader.await.unwrap(), 1024);
    }
}
