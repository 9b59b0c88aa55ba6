//! [`OpenOptions`]: [`std::fs::OpenOptions`] with an async `open`.

use std::io;
use std::path::Path;

use super::{on_path, File};

/// How to open a file: [`std::fs::OpenOptions`] (same methods), opened
/// on the blocking pool.
///
/// # Examples
///
/// ```
/// use waitrt::fs::OpenOptions;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("open-options-doc-{}", std::process::id()));
///     let file = OpenOptions::new().write(true).create_new(true).open(&path).await?;
///     drop(file);
///     // A second `create_new` finds it there.
///     let err = OpenOptions::new().write(true).create_new(true).open(&path).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
///     waitrt::fs::remove_file(&path).await
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl OpenOptions {
    /// Every option off (as [`std::fs::OpenOptions::new`]).
    #[allow(clippy::new_without_default)]
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Every write goes to the end of the file (`O_APPEND`).
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate the file to 0 bytes when opened for writing.
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it is not there.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing (`AlreadyExists`) if it is there.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// The permission bits a created file gets (before the umask).
    #[cfg(unix)]
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        std::os::unix::fs::OpenOptionsExt::mode(&mut self.0, mode);
        self
    }

    /// Extra `open(2)` flags.
    #[cfg(unix)]
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut self.0, flags);
        self
    }

    /// The std options inside.
    pub fn as_std(&self) -> &std::fs::OpenOptions {
        &self.0
    }

    /// The std options inside, to change.
    pub fn as_std_mut(&mut self) -> &mut std::fs::OpenOptions {
        &mut self.0
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// As [`std::fs::OpenOptions::open`], the message naming `path`.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the file may still be created (and is
    /// then closed).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let options = self.0.clone();
        let path = path.as_ref();
        let std = on_path(path, move |p| options.open(p)).await?;
        Ok(File::from_std(std).with_path(path))
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    fn from(options: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions(options)
    }
}
