//! Where log lines go: a buffer in memory that a thread of its own writes to stderr every
//! [`FLUSH_EVERY`] (sooner once [`WAKE_AT`] bytes wait), so a request's thread only appends its
//! lines under a lock: no system call, no thread woken.
//!
//! A channel to a writer thread (`tracing-appender`) woke that thread for nearly every line, and
//! the thread spun and yielded before it slept again: about a fifth of the CPU a proxied read
//! cost the front (bench/README.md, "Proxied vs direct"). Nothing is dropped: when more than
//! [`MOST_PENDING`] bytes wait (stderr slower than the lines come), the thread that adds a line
//! writes them out itself, holding the others back. Dropping the [`Guard`] writes out what waits.

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in memory before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(5);

/// Bytes waiting that wake the writer thread before its time.
const WAKE_AT: usize = 64 * 1024;

/// Bytes waiting beyond which the thread adding a line writes them out itself.
const MOST_PENDING: usize = 4 * 1024 * 1024;

/// The lines not written yet, shared by every thread that logs and the writer thread.
struct Pending {
    lines: Mutex<Lines>,
    wake: Condvar,
}

#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    /// The guard dropped: write out what is left and stop.
    closing: bool,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The [`MakeWriter`] of the log layers: cheap to clone, one per layer.
#[derive(Clone)]
pub struct Batched<W: Sink> {
    pending: Arc<Pending>,
    sink: W,
}

/// Where the writer thread writes (stderr; a buffer in tests).
pub trait Sink: Clone + Send + Sync + 'static {
    fn write_out(&self, bytes: &[u8]);
}

/// The process's stderr.
#[derive(Clone, Copy)]
pub struct Stderr;

impl Sink for Stderr {
    fn write_out(&self, bytes: &[u8]) {
        let mut stderr = std::io::stderr().lock();
        // A log that cannot be written has nowhere to say so.
        let _ = stderr.write_all(bytes).and_then(|()| stderr.flush());
    }
}

/// Keeps the writer thread; dropped, it writes out what waits and ends the thread.
pub struct Guard {
    pending: Arc<Pending>,
    thread: Option<JoinHandle<()>>,
}

/// A writer for `sink` and the guard of its thread.
pub fn batched<W: Sink>(sink: W) -> (Batched<W>, Guard) {
    let pending = Arc::new(Pending { lines: Mutex::new(Lines::default()), wake: Condvar::new() });
    let writer = Batched { pending: pending.clone(), sink: sink.clone() };
    let shared = pending.clone();
    let thread = std::thread::Builder::new().name("log-writer".into()).spawn(move || write_out(&shared, &sink));
    if let Err(e) = &thread {
        // Without the thread each line is written by the thread that adds it.
        pending.lock().closing = true;
        eprintln!("fhirgate: no log writer thread ({e}); each log line is written as it comes");
    }
    (writer, Guard { pending, thread: thread.ok() })
}

/// The writer thread: what waits, every [`FLUSH_EVERY`] (or when woken), until closing.
fn write_out<W: Sink>(pending: &Pending, sink: &W) {
    let mut spare = Vec::new();
    loop {
        let mut lines = pending.lock();
        if !lines.closing && lines.bytes.len() < WAKE_AT {
            lines = pending.wake.wait_timeout(lines, FLUSH_EVERY).unwrap_or_else(PoisonError::into_inner).0;
        }
        if lines.closing {
            // The last lines, under the lock: a line added from now on is written by its own
            // thread ([`Line::write`]), after these.
            sink.write_out(&lines.bytes);
            lines.bytes.clear();
            return;
        }
        std::mem::swap(&mut lines.bytes, &mut spare);
        drop(lines);
        if !spare.is_empty() {
            sink.write_out(&spare);
            spare.clear();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.pending.lock().closing = true;
        self.pending.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line (or part of one) being written.
pub struct Line<'a, W: Sink> {
    writer: &'a Batched<W>,
}

impl<W: Sink> std::io::Write for Line<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut lines = self.writer.pending.lock();
        lines.bytes.extend_from_slice(buf);
        let waiting = lines.bytes.len();
        if waiting > MOST_PENDING || lines.closing {
            // The writer thread falls behind (or is gone): out now, the other threads held back.
            self.writer.sink.write_out(&lines.bytes);
            lines.bytes.clear();
        } else if waiting >= WAKE_AT && waiting - buf.len() < WAKE_AT {
            self.writer.pending.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Sink> MakeWriter<'a> for Batched<W> {
    type Writer = Line<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { writer: self }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Instant;

    use super::*;

    /// A sink that keeps what it is given and how many writes it took.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Sink for Kept {
        fn write_out(&self, bytes: &[u8]) {
            let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            kept.0.extend_from_slice(bytes);
            kept.1 += 1;
        }
    }

    impl Kept {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner).0).into_owned()
        }
        fn writes(&self) -> usize {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).1
        }
    }

    #[test]
    fn lines_go_out_in_order_in_few_writes_and_soon() -> std::io::Result<()> {
        let kept = Kept::default();
        let (writer, guard) = batched(kept.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for n in 0..500 {
                        let _ = writer.make_writer().write_all(format!("{t} {n}\n").as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().map_err(|_| std::io::Error::other("a logging thread panicked"))?;
        }
        let started = Instant::now();
        while kept.text().lines().count() < 2000 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let text = kept.text();
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.split_once(' ').filter(|(who, _)| *who == t.to_string()))
                .filter_map(|(_, n)| n.parse().ok())
                .collect();
            assert_eq!(mine, (0..500).collect::<Vec<_>>(), "every line of thread {t} once, in order");
        }
        assert!(kept.writes() < 200, "2,000 lines in {} writes: batched", kept.writes());
        drop(guard);
        Ok(())
    }

    #[test]
    fn the_guard_writes_out_what_waits() -> std::io::Result<()> {
        let kept = Kept::default();
        let (writer, guard) = batched(kept.clone());
        writer.make_writer().write_all(b"last words\n")?;
        drop(guard);
        assert_eq!(kept.text(), "last words\n");
        writer.make_writer().write_all(b"after the end\n")?;
        assert_eq!(kept.text(), "last words\nafter the end\n", "a line after the guard goes out at once");
        Ok(())
    }
}
