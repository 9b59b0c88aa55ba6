//! Maps a CREATE name onto the shared directory and refuses every path
//! that would leave it: absolute paths, drive letters and streams, `..`,
//! and symlinks (or symlinked parents) whose target is outside the share.
//!
//! The check resolves the path with `canonicalize` just before the open, so
//! a concurrent local rename between check and open (TOCTOU) is not covered:
//! the share is meant to be a directory only this server changes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::wire::status;

/// Resolves `name` (share-relative, `\`-separated, empty for the root)
/// under `root`, which must be canonical. Errors are NTSTATUS codes:
/// `OBJECT_PATH_SYNTAX_BAD` for absolute paths, drive letters, streams and
/// empty components; `ACCESS_DENIED` for `..` and for anything that
/// resolves outside `root`; `OBJECT_NAME_INVALID` for `/` or NUL inside a
/// component; `OBJECT_PATH_NOT_FOUND` when a parent is missing.
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, u32> {
    if name.starts_with('\\') || name.starts_with('/') || name.contains(':') {
        return Err(status::OBJECT_PATH_SYNTAX_BAD);
    }
    let mut path = root.to_path_buf();
    if !name.is_empty() {
        for comp in name.split('\\') {
            match comp {
                "" => return Err(status::OBJECT_PATH_SYNTAX_BAD),
                "." => {}
                ".." => return Err(status::ACCESS_DENIED),
                c if c.contains('/') || c.contains('\0') => {
                    return Err(status::OBJECT_NAME_INVALID)
                }
                c => path.push(c),
            }
        }
    }
    check_inside(root, &path)?;
    Ok(path)
}

/// Checks that `path` (or, when it does not exist yet, its parent) resolves
/// inside `root`.
fn check_inside(root: &Path, path: &Path) -> Result<(), u32> {
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(root) => Ok(()),
        Ok(_) => Err(status::ACCESS_DENIED),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(status::ACCESS_DENIED); // a dangling symlink: never follow it
            }
            let parent = path.parent().ok_or(status::ACCESS_DENIED)?;
            match fs::canonicalize(parent) {
                Ok(real) if real.starts_with(root) && real.is_dir() => Ok(()),
                Ok(real) if real.starts_with(root) => Err(status::OBJECT_PATH_NOT_FOUND),
                Ok(_) => Err(status::ACCESS_DENIED),
                Err(_) => Err(status::OBJECT_PATH_NOT_FOUND),
            }
        }
        Err(e) => Err(super::meta::io_status(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn share() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!(
            "smbiod-sandbox-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("share");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), b"s").unwrap();
        fs::write(root.join("sub/f.txt"), b"f").unwrap();
        symlink(base.join("outside"), root.join("out_dir")).unwrap();
        symlink(base.join("outside/secret"), root.join("out_file")).unwrap();
        symlink(base.join("outside/nothing"), root.join("dangling")).unwrap();
        symlink(root.join("sub"), root.join("in_dir")).unwrap();
        (fs::canonicalize(&root).unwrap(), base)
    }

    #[test]
    fn inside_paths_resolve() {
        let (root, base) = share();
        assert_eq!(resolve(&root, ""), Ok(root.clone()));
        assert_eq!(
            resolve(&root, "sub\\f.txt"),
            Ok(root.join("sub").join("f.txt"))
        );
        assert_eq!(
            resolve(&root, "sub\\.\\new.txt"),
            Ok(root.join("sub").join("new.txt"))
        );
        assert_eq!(
            resolve(&root, "in_dir\\f.txt"),
            Ok(root.join("in_dir").join("f.txt"))
        );
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        let (root, base) = share();
        assert_eq!(resolve(&root, ".."), Err(status::ACCESS_DENIED));
        assert_eq!(
            resolve(&root, "..\\outside\\secret"),
            Err(status::ACCESS_DENIED)
        );
        assert_eq!(
            resolve(&root, "sub\\..\\..\\outside"),
            Err(status::ACCESS_DENIED)
        );
        assert_eq!(
            resolve(&root, "\\etc\\passwd"),
            Err(status::OBJECT_PATH_SYNTAX_BAD)
        );
        assert_eq!(
            resolve(&root, "/etc/passwd"),
            Err(status::OBJECT_PATH_SYNTAX_BAD)
        );
        assert_eq!(
            resolve(&root, "C:\\Windows"),
            Err(status::OBJECT_PATH_SYNTAX_BAD)
        );
        assert_eq!(
            resolve(&root, "sub\\\\f.txt"),
            Err(status::OBJECT_PATH_SYNTAX_BAD)
        );
        assert_eq!(
            resolve(&root, "sub/../../x"),
            Err(status::OBJECT_NAME_INVALID)
        );
        assert_eq!(
            resolve(&root, "nodir\\x"),
            Err(status::OBJECT_PATH_NOT_FOUND)
        );
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn symlinks_leading_out_are_refused() {
        let (root, base) = share();
        assert_eq!(resolve(&root, "out_dir"), Err(status::ACCESS_DENIED));
        assert_eq!(
            resolve(&root, "out_dir\\secret"),
            Err(status::ACCESS_DENIED)
        );
        assert_eq!(
            resolve(&root, "out_dir\\new_file"),
            Err(status::ACCESS_DENIED)
        );
        assert_eq!(resolve(&root, "out_file"), Err(status::ACCESS_DENIED));
        assert_eq!(resolve(&root, "dangling"), Err(status::ACCESS_DENIED));
        fs::remove_dir_all(base).unwrap();
    }
}
