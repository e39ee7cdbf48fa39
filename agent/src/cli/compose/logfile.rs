//! Reading a container's json-file log (`container.log`, rotated into
//! `.1`, `.2`, ... with `.1` the newest) incrementally: everything there
//! now, then whatever the shim appends, surviving rotation. `logs -f` and
//! attached `up` keep one [`LogFile`] per container and poll them all from
//! one loop, so lines of several containers can be merged in time order.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_runtime::logs::LogEntry;

/// A position in one container's log.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    /// Inode of the file `offset` is in (0: not opened yet).
    inode: u64,
    offset: u64,
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogFile {
    /// Every entry the files hold now, oldest first (rotated files
    /// included), and the position after the last one.
    pub fn read_all(path: &Path) -> (Self, Vec<LogEntry>) {
        let mut entries = Vec::new();
        let mut files: Vec<PathBuf> = (1..1000)
            .map(|n| rotated(path, n))
            .take_while(|p| p.exists())
            .collect();
        files.reverse();
        for f in &files {
            read_entries(f, 0, &mut entries);
        }
        let inode = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        let offset = if inode != 0 {
            read_entries(path, 0, &mut entries)
        } else {
            0
        };
        (
            LogFile {
                path: path.to_owned(),
                inode,
                offset,
            },
            entries,
        )
    }

    /// Appends the entries written since the last call to `out`.
    pub fn poll(&mut self, out: &mut Vec<LogEntry>) {
        let meta = std::fs::metadata(&self.path).ok();
        let (inode, len) = meta.map(|m| (m.ino(), m.len())).unwrap_or((0, 0));
        if inode != self.inode || len < self.offset {
            // Rotated (maybe more than once): the rest of the file we were
            // in is now `.k`, and `.k-1` ... `.1` came after it.
            if self.inode != 0 {
                let k = (1..1000)
                    .map(|n| (n, rotated(&self.path, n)))
                    .take_while(|(_, p)| p.exists())
                    .find(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.ino() == self.inode))
                    .map(|(n, _)| n);
                if let Some(k) = k {
                    read_entries(&rotated(&self.path, k), self.offset, out);
                    for n in (1..k).rev() {
                        read_entries(&rotated(&self.path, n), 0, out);
                    }
                }
            }
            self.inode = inode;
            self.offset = 0;
        }
        if inode != 0 && len > self.offset {
            self.offset = read_entries(&self.path, self.offset, out);
        }
    }
}

/// Parses the complete lines of `path` from byte `from` into `out`;
/// returns the offset after the last complete line. A file that cannot
/// be read yields nothing (a container removed meanwhile).
fn read_entries(path: &Path, from: u64, out: &mut Vec<LogEntry>) -> u64 {
    let Ok(mut f) = File::open(path) else {
        return from;
    };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return from;
    }
    let mut reader = BufReader::new(f);
    let mut offset = from;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(n) if n > 0 && line.last() == Some(&b'\n') => {
                offset += n as u64;
                if let Ok(e) = serde_json::from_slice::<LogEntry>(&line) {
                    out.push(e);
                }
            }
            _ => return offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::LogConfig;
    use berth_runtime::logs::{LogWriter, Stream};
    use std::time::SystemTime;

    fn texts(entries: &[LogEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.log.trim_end().to_owned())
            .collect()
    }

    #[test]
    fn reads_what_is_there_then_what_comes_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let (mut file, first) = LogFile::read_all(&path);
        assert!(first.is_empty());
        let mut w = LogWriter::open(
            &path,
            LogConfig {
                max_size: Some(200),
                max_files: 3,
                ..Default::default()
            },
        )
        .unwrap();
        w.write(Stream::Stdout, b"one\n", SystemTime::now())
            .unwrap();
        let mut got = Vec::new();
        file.poll(&mut got);
        assert_eq!(texts(&got), ["one"]);
        // Enough lines to rotate twice between two polls.
        for i in 0..4 {
            w.write(
                Stream::Stderr,
                format!("line {i}\n").as_bytes(),
                SystemTime::now(),
            )
            .unwrap();
        }
        assert!(rotated(&path, 1).exists());
        got.clear();
        file.poll(&mut got);
        // Every rotation kept its file (max_files 3, two rotations), so
        // nothing was lost.
        let expected: Vec<String> = (0..4).map(|i| format!("line {i}")).collect();
        assert_eq!(texts(&got), expected);
        let (_, all) = LogFile::read_all(&path);
        assert_eq!(texts(&all).last().unwrap(), "line 3");
    }
}
