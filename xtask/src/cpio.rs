//! A reproducible initramfs: a newc cpio archive with sorted entries, owner root and
//! time zero, so the same inputs give the same bytes on every machine.

use std::collections::BTreeMap;
use std::io::Write;

/// One entry of the archive.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
    CharDev { mode: u32, major: u32, minor: u32 },
}

/// The archive's contents, keyed by path without a leading slash.
#[derive(Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub fn dir(&mut self, path: &str) {
        self.parents(path);
        self.entries.insert(path.to_owned(), Entry::Dir { mode: 0o755 });
    }

    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.parents(path);
        self.entries.insert(path.to_owned(), Entry::File { mode, data });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.entries.insert(path.to_owned(), Entry::Symlink { target: target.to_owned() });
    }

    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.parents(path);
        self.entries.insert(path.to_owned(), Entry::CharDev { mode, major, minor });
    }

    fn parents(&mut self, path: &str) {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.entries.entry(prefix.clone()).or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    /// The archive in newc format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
                Entry::Dir { mode } => (0o040000 | mode, &[], (0, 0)),
                Entry::File { mode, data } => (0o100000 | mode, data, (0, 0)),
                Entry::Symlink { target } => (0o120777, target.as_bytes(), (0, 0)),
                Entry::CharDev { mode, major, minor } => (0o020000 | mode, &[], (*major, *minor)),
            };
            let nlink = if matches!(entry, Entry::Dir { .. }) { 2 } else { 1 };
            let header = Header { ino: u32::try_from(ino + 1).unwrap_or(u32::MAX), mode, nlink, size: data.len(), rdev };
            write_header(&mut out, &header, path);
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        write_header(&mut out, &Header { ino: 0, mode: 0, nlink: 1, size: 0, rdev: (0, 0) }, "TRAILER!!!");
        out
    }
}

struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    size: usize,
    rdev: (u32, u32),
}

fn write_header(out: &mut Vec<u8>, h: &Header, name: &str) {
    let namesize = name.len() + 1;
    let size = u32::try_from(h.size).unwrap_or(u32::MAX);
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor
    let fields = [h.ino, h.mode, 0, 0, h.nlink, 0, size, 0, 0, h.rdev.0, h.rdev.1];
    let _ = write!(out, "070701");
    for f in fields {
        let _ = write!(out, "{f:08x}");
    }
    let _ = write!(out, "{:08x}{:08x}", namesize, 0);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_output_is_deterministic() {
        let mut a = Archive::default();
        a.file("etc/init.d/rcS", 0o755, b"#!/bin/sh\n".to_vec());
        a.symlink("init", "bin/busybox");
        let bytes = a.to_bytes();
        assert!(a.entries.contains_key("etc"));
        assert!(a.entries.contains_key("etc/init.d"));
        assert_eq!(bytes, a.to_bytes());
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
    }
}
