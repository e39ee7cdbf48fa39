//! The json-file log driver: one JSON object per line, like Docker's
//! (`{"log":"line\n","stream":"stdout","time":"2026-...Z"}`), size-rotated
//! into `container.log.1`, `.2`, ... (oldest has the highest number).
//!
//! The shim is the only writer; order within each stream is the order the
//! bytes came out of the pipe. `berth logs` reads the files back with
//! [`read_logs`].

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::LogConfig;
use crate::error::{Error, Result};

/// Docker splits lines longer than this into several entries.
pub const MAX_LINE: usize = 16 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries to `container.log`, rotating by size; with the `none`
/// driver it drops them and never creates the file.
pub struct LogWriter {
    path: PathBuf,
    opts: LogConfig,
    file: File,
    size: u64,
    discard: bool,
}

impl LogWriter {
    pub fn open(path: &Path, opts: LogConfig) -> Result<Self> {
        let discard = opts.driver == crate::config::LogDriver::None;
        let target = if discard {
            Path::new("/dev/null")
        } else {
            path
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(target)
            .map_err(|e| Error::io("open log", target, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_owned(),
            opts,
            file,
            size,
            discard,
        })
    }

    /// Writes one entry (`line` includes its `\n`, if it had one).
    pub fn write(&mut self, stream: Stream, line: &[u8], time: SystemTime) -> Result<()> {
        if self.discard {
            return Ok(());
        }
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.as_str().to_owned(),
            time: humantime::format_rfc3339_nanos(time).to_string(),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(|source| Error::Json {
            path: self.path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        if let Some(max) = self.opts.max_size
            && self.size > 0
            && self.size + bytes.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file
            .write_all(&bytes)
            .map_err(|e| Error::io("write log", &self.path, e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let keep = self.opts.max_files.max(1);
        if keep > 1 {
            // .{keep-1} falls off the end; the others shift up by one.
            for n in (1..keep - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    let to = rotated(&self.path, n + 1);
                    fs::rename(&from, &to).map_err(|e| Error::io("rotate log", &from, e))?;
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1))
                .map_err(|e| Error::io("rotate log", &self.path, e))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|e| Error::io("open log", &self.path, e))?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Cuts a pipe's byte stream into log lines: complete lines as they come,
/// overlong ones at [`MAX_LINE`], the rest at end of stream.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; calls `emit` for each finished line.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            for chunk in self.buf[start..end].chunks(MAX_LINE) {
                emit(chunk);
            }
            start = end;
        }
        while self.buf.len() - start >= MAX_LINE {
            emit(&self.buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        self.buf.drain(..start);
    }

    /// The unterminated rest, at end of stream.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// What `berth logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only the last N entries (of those that pass `since`).
    pub tail: Option<usize>,
    /// Keep reading new entries until `stop` says so.
    pub follow: bool,
}

/// Reads the log files oldest first and hands each matching entry to
/// `sink`. With `follow`, keeps polling the current file (surviving
/// rotation) until `stop()` returns true, then drains what is left.
pub fn read_logs(
    path: &Path,
    query: &LogQuery,
    stop: &mut dyn FnMut() -> bool,
    sink: &mut dyn FnMut(&LogEntry),
) -> Result<()> {
    let mut files: Vec<PathBuf> = (1..1000)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    let mut entries = Vec::new();
    for f in &files {
        read_entries(f, 0, &mut entries)?;
    }
    let (mut offset, mut inode) = (0, 0);
    if path.exists() {
        offset = read_entries(path, 0, &mut entries)?;
        inode = fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
    }
    let passes = |e: &LogEntry| match query.since {
        Some(since) => humantime::parse_rfc3339(&e.time).is_ok_and(|t| t >= since),
        None => true,
    };
    let mut selected: Vec<&LogEntry> = entries.iter().filter(|e| passes(e)).collect();
    if let Some(n) = query.tail {
        let skip = selected.len().saturating_sub(n);
        selected.drain(..skip);
    }
    for e in selected {
        sink(e);
    }
    if !query.follow {
        return Ok(());
    }
    loop {
        let stopping = stop();
        let meta = fs::metadata(path).ok();
        let (now_inode, now_len) = meta.map(|m| (m.ino(), m.len())).unwrap_or((0, 0));
        if now_inode != inode || now_len < offset {
            // Rotated: finish the old file (now `.1`) from where we were,
            // then start the new one from its beginning.
            if inode != 0 {
                let old = rotated(path, 1);
                if fs::metadata(&old).is_ok_and(|m| m.ino() == inode) {
                    let mut rest = Vec::new();
                    read_entries(&old, offset, &mut rest)?;
                    rest.iter().filter(|e| passes(e)).for_each(&mut *sink);
                }
            }
            inode = now_inode;
            offset = 0;
        }
        if now_inode != 0 && now_len > offset {
            let mut fresh = Vec::new();
            offset = read_entries(path, offset, &mut fresh)?;
            fresh.iter().filter(|e| passes(e)).for_each(&mut *sink);
        }
        if stopping {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses complete lines of `path` from byte `from`; returns the offset
/// after the last complete line.
fn read_entries(path: &Path, from: u64, out: &mut Vec<LogEntry>) -> Result<u64> {
    let mut f = File::open(path).map_err(|e| Error::io("open log", path, e))?;
    f.seek(SeekFrom::Start(from))
        .map_err(|e| Error::io("seek log", path, e))?;
    let mut reader = BufReader::new(f);
    let mut offset = from;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read log", path, e))?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(offset);
        }
        offset += n as u64;
        if let Ok(e) = serde_json::from_slice::<LogEntry>(&line) {
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all(path: &Path) -> Vec<LogEntry> {
        let mut out = Vec::new();
        read_logs(path, &LogQuery::default(), &mut || true, &mut |e| {
            out.push(e.clone())
        })
        .unwrap();
        out
    }

    #[test]
    fn entries_look_like_dockers_json_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path, LogConfig::default()).unwrap();
        w.write(Stream::Stdout, b"hello \"x\"\n", SystemTime::UNIX_EPOCH)
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"log\":\"hello \\\"x\\\"\\n\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00.000000000Z\"}\n"
        );
    }

    #[test]
    fn rotation_keeps_max_files_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let opts = LogConfig {
            max_size: Some(300),
            max_files: 3,
            ..Default::default()
        };
        let mut w = LogWriter::open(&path, opts).unwrap();
        for i in 0..100 {
            w.write(
                Stream::Stdout,
                format!("{i}\n").as_bytes(),
                SystemTime::now(),
            )
            .unwrap();
        }
        assert!(rotated(&path, 1).exists());
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert!(fs::metadata(&p).unwrap().len() <= 300, "{}", p.display());
        }
        let got: Vec<u32> = all(&path)
            .iter()
            .map(|e| e.log.trim().parse().unwrap())
            .collect();
        assert_eq!(*got.last().unwrap(), 99);
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
        assert!(got.len() < 100);
    }

    #[test]
    fn driver_none_keeps_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let opts = LogConfig {
            driver: crate::config::LogDriver::None,
            ..Default::default()
        };
        let mut w = LogWriter::open(&path, opts).unwrap();
        w.write(Stream::Stdout, b"dropped\n", SystemTime::now())
            .unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn max_files_one_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let opts = LogConfig {
            max_size: Some(200),
            max_files: 1,
            ..Default::default()
        };
        let mut w = LogWriter::open(&path, opts).unwrap();
        for i in 0..50 {
            w.write(
                Stream::Stderr,
                format!("{i}\n").as_bytes(),
                SystemTime::now(),
            )
            .unwrap();
        }
        assert!(!rotated(&path, 1).exists());
        assert!(fs::metadata(&path).unwrap().len() <= 200);
        assert_eq!(all(&path).last().unwrap().log, "49\n");
    }

    #[test]
    fn tail_and_since_select_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path, LogConfig::default()).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..10u64 {
            w.write(
                Stream::Stdout,
                format!("{i}\n").as_bytes(),
                t0 + Duration::from_secs(i),
            )
            .unwrap();
        }
        let mut got = Vec::new();
        let q = LogQuery {
            tail: Some(3),
            ..Default::default()
        };
        read_logs(&path, &q, &mut || true, &mut |e| got.push(e.log.clone())).unwrap();
        assert_eq!(got, ["7\n", "8\n", "9\n"]);
        got.clear();
        let q = LogQuery {
            since: Some(t0 + Duration::from_secs(8)),
            ..Default::default()
        };
        read_logs(&path, &q, &mut || true, &mut |e| got.push(e.log.clone())).unwrap();
        assert_eq!(got, ["8\n", "9\n"]);
    }

    #[test]
    fn splitter_cuts_lines_and_long_runs() {
        let mut s = LineSplitter::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        s.push(b"a\nb", |l| out.push(l.to_vec()));
        s.push(b"c\n\nd", |l| out.push(l.to_vec()));
        s.finish(|l| out.push(l.to_vec()));
        assert_eq!(
            out,
            vec![
                b"a\n".to_vec(),
                b"bc\n".to_vec(),
                b"\n".to_vec(),
                b"d".to_vec()
            ]
        );
        out.clear();
        s.push(&vec![b'x'; MAX_LINE + 5], |l| out.push(l.to_vec()));
        s.finish(|l| out.push(l.to_vec()));
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, 5]
        );
    }
}
