//! A directory enumeration in progress, streamed from the OS: an open
//! directory handle holds its `ReadDir` and at most one entry read ahead
//! (the one that did not fit the last reply), never the whole directory
//! (issue 25: every open of a 16k-entry directory held all of it).

use std::fs::{self, ReadDir};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::meta::{attrs, wildcard};
use crate::wire::dir::DirEntry;

/// The entries of a directory matching a pattern: `.` and `..` first, then
/// the rest in the order the file system gives them (as Samba does).
/// Entries whose metadata cannot be read (dangling symlinks), symlinks
/// leading outside the share (as Samba hides them: their target's size
/// and times would leak) and names that are not UTF-8 are skipped.
#[derive(Debug)]
pub struct Listing {
    root: PathBuf,
    pattern: String,
    /// `.` and `..`, while not yet returned.
    dots: Vec<DirEntry>,
    rd: ReadDir,
    /// Read but not yet returned.
    ahead: Option<DirEntry>,
    /// Entries returned so far.
    returned: usize,
}

impl Listing {
    /// Starts listing `dir` (whose parent is `parent`; both inside `root`).
    pub fn start(root: &Path, dir: &Path, parent: &Path, pattern: &str) -> io::Result<Listing> {
        let mut dots = Vec::new();
        for (name, p) in [("..", parent), (".", dir)] {
            if wildcard(pattern, name) {
                let md = fs::metadata(p)?;
                dots.push(DirEntry {
                    name: name.into(),
                    attrs: attrs(&md),
                    file_id: md.ino(),
                });
            }
        }
        Ok(Listing {
            root: root.to_path_buf(),
            pattern: pattern.to_string(),
            dots,
            rd: fs::read_dir(dir)?,
            ahead: None,
            returned: 0,
        })
    }

    /// The next entry, without taking it; `None` at the end.
    pub fn peek(&mut self) -> io::Result<Option<&DirEntry>> {
        if self.ahead.is_none() {
            self.ahead = match self.dots.pop() {
                Some(d) => Some(d),
                None => self.read_next()?,
            };
        }
        Ok(self.ahead.as_ref())
    }

    /// Takes the entry [`peek`](Self::peek) showed.
    pub fn advance(&mut self) {
        if self.ahead.take().is_some() {
            self.returned += 1;
        }
    }

    /// How many entries were taken so far.
    pub fn returned(&self) -> usize {
        self.returned
    }

    fn read_next(&mut self) -> io::Result<Option<DirEntry>> {
        for ent in self.rd.by_ref() {
            let ent = ent?;
            let Ok(name) = ent.file_name().into_string() else {
                continue;
            };
            if !wildcard(&self.pattern, &name) {
                continue;
            }
            let is_link = ent.file_type().is_ok_and(|t| t.is_symlink());
            if is_link
                && !fs::canonicalize(ent.path()).is_ok_and(|real| real.starts_with(&self.root))
            {
                continue;
            }
            let Ok(md) = fs::metadata(ent.path()) else {
                continue;
            };
            return Ok(Some(DirEntry {
                name,
                attrs: attrs(&md),
                file_id: md.ino(),
            }));
        }
        Ok(None)
    }
}
