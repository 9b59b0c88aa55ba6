//! [`OnceCell`]: a value set once, by one async initializer at a time.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::OnceLock;

use crate::sync::semaphore::Semaphore;

/// A cell written once; [`get_or_init`](Self::get_or_init) runs one
/// initializer at a time, and every caller gets the value it stored.
///
/// Initializers queue on a one-permit [`Semaphore`] (FIFO); once the value
/// is set the semaphore is closed, which wakes every waiter to read it. A
/// cancelled or failed initializer drops its permit, so the next waiter
/// tries. Kernel: `DO_ONCE()` comes closest.
///
/// # Examples
///
/// ```
/// use waitrt::sync::OnceCell;
///
/// static CONFIG: OnceCell<String> = OnceCell::const_new();
///
/// waitrt::block_on(async {
///     let value = CONFIG.get_or_init(|| async { "loaded".to_string() }).await;
///     assert_eq!(value, "loaded");
///     assert_eq!(CONFIG.get().map(String::as_str), Some("loaded"));
/// });
/// ```
pub struct OnceCell<T> {
    value: OnceLock<T>,
    /// One permit: the right to initialize. Closed once the value is set.
    init: Semaphore,
}

/// Why [`OnceCell::set`] failed; it gives the value back.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetError<T> {
    /// The cell already holds a value.
    AlreadyInitializedError(T),
    /// An initializer is running.
    InitializingError(T),
}

// ===== impl OnceCell =====

impl<T> OnceCell<T> {
    /// An empty cell.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = waitrt::sync::OnceCell::<u32>::new();
    /// assert!(!cell.initialized());
    /// ```
    pub fn new() -> Self {
        OnceCell {
            value: OnceLock::new(),
            init: Semaphore::new(1),
        }
    }

    /// [`new`](Self::new) for `static`s.
    ///
    /// # Examples
    ///
    /// ```
    /// static CELL: waitrt::sync::OnceCell<u32> = waitrt::sync::OnceCell::const_new();
    /// assert!(CELL.get().is_none());
    /// ```
    pub const fn const_new() -> Self {
        OnceCell {
            value: OnceLock::new(),
            init: Semaphore::const_new(1),
        }
    }

    /// A cell holding `value` already.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = waitrt::sync::OnceCell::new_with(Some(3));
    /// assert_eq!(cell.get(), Some(&3));
    /// ```
    pub fn new_with(value: Option<T>) -> Self {
        let cell = OnceCell::new();
        if let Some(value) = value {
            let _ = cell.value.set(value);
            cell.init.close();
        }
        cell
    }

    /// The value, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = waitrt::sync::OnceCell::new();
    /// assert_eq!(cell.get(), None);
    /// cell.set(1).unwrap();
    /// assert_eq!(cell.get(), Some(&1));
    /// ```
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, through `&mut self`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = waitrt::sync::OnceCell::new_with(Some(1));
    /// *cell.get_mut().unwrap() += 1;
    /// assert_eq!(cell.get(), Some(&2));
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// Whether the value is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = waitrt::sync::OnceCell::new_with(Some(()));
    /// assert!(cell.initialized());
    /// ```
    pub fn initialized(&self) -> bool {
        self.value.get().is_some()
    }

    /// Sets the value unless it is set or being initialized.
    ///
    /// # Errors
    ///
    /// [`SetError`], with `value` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{OnceCell, SetError};
    /// let cell = OnceCell::new();
    /// assert!(cell.set(1).is_ok());
    /// assert_eq!(cell.set(2), Err(SetError::AlreadyInitializedError(2)));
    /// ```
    pub fn set(&self, value: T) -> Result<(), SetError<T>> {
        if self.initialized() {
            return Err(SetError::AlreadyInitializedError(value));
        }
        match self.init.try_acquire() {
            Ok(_permit) => {
                self.store(value);
                Ok(())
            }
            Err(crate::sync::TryAcquireError::NoPermits) => Err(SetError::InitializingError(value)),
            Err(_) => Err(SetError::AlreadyInitializedError(value)),
        }
    }

    /// The value, running `f` to make it if it is not set. One initializer
    /// runs at a time; the others wait, in FIFO order, and return the
    /// value it stored.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future (waiting, or while its `f` runs) gives the next
    /// waiter its turn to initialize; nothing is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let cell = waitrt::sync::OnceCell::new();
    ///     assert_eq!(*cell.get_or_init(|| async { 1 }).await, 1);
    ///     assert_eq!(*cell.get_or_init(|| async { 2 }).await, 1);
    /// });
    /// ```
    #[track_caller]
    pub fn get_or_init<F, Fut>(&self, f: F) -> impl Future<Output = &T> + use<'_, T, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        // Not through `get_or_try_init`: a future awaited inside another
        // is kept twice (the captured one and the awaited one), and the
        // acquire future made out here would be kept as long as the outer
        // one: 392 bytes for a trivial initializer, three times tokio's
        // 128 (now 112).
        let site = Location::caller();
        async move {
            if let Some(value) = self.get() {
                return value;
            }
            // Closed: the value was set meanwhile.
            let Ok(_permit) = self.init.acquire_many_at(1, site).await else {
                return self.set_value();
            };
            if let Some(value) = self.get() {
                return value;
            }
            let value = f().await;
            self.store(value);
            self.set_value()
        }
    }

    /// [`get_or_init`](Self::get_or_init) with an initializer that may
    /// fail: on `Err` nothing is stored, the error is returned, and the
    /// next waiter tries.
    ///
    /// # Errors
    ///
    /// The error `f` returned.
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_init`](Self::get_or_init).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let cell = waitrt::sync::OnceCell::new();
    ///     assert!(cell.get_or_try_init(|| async { Err::<u8, _>("down") }).await.is_err());
    ///     assert_eq!(*cell.get_or_try_init(|| async { Ok::<_, ()>(7) }).await.unwrap(), 7);
    /// });
    /// ```
    #[track_caller]
    pub fn get_or_try_init<E, F, Fut>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<&T, E>> + use<'_, T, E, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // A wait for another initializer is listed at our caller's site.
        let site = Location::caller();
        async move {
            if let Some(value) = self.get() {
                return Ok(value);
            }
            // Closed: the value was set meanwhile.
            let Ok(_permit) = self.init.acquire_many_at(1, site).await else {
                return Ok(self.set_value());
            };
            if let Some(value) = self.get() {
                return Ok(value);
            }
            let value = f().await?;
            self.store(value);
            Ok(self.set_value())
        }
    }

    /// Stores `value` (the caller holds the permit) and lets every waiter
    /// read it.
    fn store(&self, value: T) {
        if self.value.set(value).is_err() {
            unreachable!("only the permit's holder sets the value");
        }
        self.init.close();
    }

    fn set_value(&self) -> &T {
        match self.value.get() {
            Some(value) => value,
            None => unreachable!("the permits close only once the value is set"),
        }
    }

    /// The value, consuming the cell.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitrt::sync::OnceCell::new_with(Some(1)).into_inner(), Some(1));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Takes the value out, leaving the cell empty (and initializable
    /// again).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = waitrt::sync::OnceCell::new_with(Some(1));
    /// assert_eq!(cell.take(), Some(1));
    /// assert!(cell.set(2).is_ok());
    /// ```
    pub fn take(&mut self) -> Option<T> {
        let value = self.value.take();
        self.init = Semaphore::new(1);
        value
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        OnceCell::new()
    }
}

impl<T> From<T> for OnceCell<T> {
    fn from(value: T) -> Self {
        OnceCell::new_with(Some(value))
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceCell")
            .field("value", &self.get())
            .finish()
    }
}

// ===== impl SetError =====

impl<T> SetError<T> {
    /// Whether the cell was already set.
    pub fn is_already_init_err(&self) -> bool {
        matches!(self, SetError::AlreadyInitializedError(_))
    }

    /// Whether an initializer was running.
    pub fn is_initializing_err(&self) -> bool {
        matches!(self, SetError::InitializingError(_))
    }
}

impl<T> fmt::Display for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::AlreadyInitializedError(_) => f.write_str("value already initialized"),
            SetError::InitializingError(_) => f.write_str("value is being initialized"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for SetError<T> {}
