//! Keeping a long-lived, mostly idle shim small in memory (also used by
//! the network DNS server, `berth dns`).

/// Drops the clean file pages of the shim's read-only mappings from its
/// resident set. Setting a container up touches code all over the binary,
/// and the kernel maps file pages 64 KiB at a time around each fault, so a
/// shim would keep ~2.5 MiB of text and constants resident for the life of
/// its container while its copy loop needs a few pages. A read-only
/// mapping none of whose pages was ever copied on write (`Anonymous: 0 kB`
/// in smaps: no relocation or RELRO fix-up landed in it) holds nothing but
/// the file's bytes, so `MADV_DONTNEED` only drops page table entries and
/// the next use faults the same bytes back in from the page cache.
pub fn release_setup_text() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidate: Option<(usize, usize)> = None;
    let mut release = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-') {
            // A mapping header: "start-end perms offset dev inode path".
            let perms = fields.next().unwrap_or_default();
            let is_file = fields.nth(3).is_some_and(|path| path.starts_with('/'));
            let read_only = perms == "r-xp" || perms == "r--p";
            candidate = match (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                (Ok(start), Ok(end)) if read_only && is_file => Some((start, end)),
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let Some(range) = candidate.take() {
                if fields.next() == Some("0") {
                    release.push(range);
                }
            }
        }
    }
    for (start, end) in release {
        // SAFETY: the range is a whole, page-aligned, read-only file mapping
        // from /proc/self/smaps with no privately modified page, so
        // MADV_DONTNEED discards nothing that cannot be read back from the
        // file: no code or data changes.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc != 0 {
            eprintln!(
                "berth shim: madvise of a read-only mapping failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
