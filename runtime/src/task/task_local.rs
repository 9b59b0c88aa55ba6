//! Task-local storage: [`task_local!`](crate::task_local), [`LocalKey`]
//! and [`TaskLocalFuture`], as tokio's.
//!
//! # How it works
//!
//! A key is a thread-local slot (`RefCell<Option<T>>`). A
//! [`TaskLocalFuture`] owns the value; around each poll of its inner
//! future it swaps the value into the slot, and swaps it back out when
//! the poll returns (or unwinds). So the value is in the slot exactly
//! while code inside the scope runs, on whichever thread polls it: a
//! task that moves to another worker takes the value with it, and other
//! tasks on the same thread see their own value or none. Nested scopes
//! of one key swap the outer value out for the inner one and back.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// Declares task-local keys: `static` items of type [`LocalKey`], whose
/// value is set for the span of a future with [`LocalKey::scope`] (or a
/// closure with [`LocalKey::sync_scope`]) and read inside it with
/// [`LocalKey::with`], [`try_with`](LocalKey::try_with) or
/// [`get`](LocalKey::get).
///
/// As tokio's `task_local!`. A key has no value outside its scopes:
/// reading it there panics (`with`, `get`) or gives an [`AccessError`]
/// (`try_with`). A task spawned inside a scope does not inherit the
/// value: give it its own scope.
///
/// # Examples
///
/// ```
/// waitrt::task_local! {
///     static REQUEST_ID: u64;
///     pub static USER: String;
/// }
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     REQUEST_ID
///         .scope(7, async {
///             waitrt::task::yield_now().await; // kept across awaits
///             assert_eq!(REQUEST_ID.get(), 7);
///             USER.sync_scope("ada".to_string(), || {
///                 USER.with(|user| assert_eq!(user, "ada"));
///             });
///             assert!(USER.try_with(|_| ()).is_err()); // out of its scope
///         })
///         .await;
/// });
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__task_local_inner!($(#[$attr])* $vis $name, $t);
    };
}

/// One key of [`task_local!`]: a thread-local slot wrapped in a
/// [`LocalKey`] that knows its name (for the panic outside a scope).
#[doc(hidden)]
#[macro_export]
macro_rules! __task_local_inner {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __TASK_LOCAL: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            $crate::task::LocalKey::__new(__TASK_LOCAL, ::std::stringify!($name))
        };
    };
}

/// A task-local key, declared with [`task_local!`](crate::task_local).
///
/// Its value is set by [`scope`](Self::scope) (for a future: the value
/// lives in the returned [`TaskLocalFuture`] and is visible whenever that
/// future is polled) or [`sync_scope`](Self::sync_scope) (for a closure).
pub struct LocalKey<T: 'static> {
    inner: std::thread::LocalKey<RefCell<Option<T>>>,
    name: &'static str,
}

impl<T: 'static> LocalKey<T> {
    /// For [`task_local!`](crate::task_local) only.
    #[doc(hidden)]
    pub const fn __new(
        inner: std::thread::LocalKey<RefCell<Option<T>>>,
        name: &'static str,
    ) -> LocalKey<T> {
        LocalKey { inner, name }
    }

    /// Runs `future` with this key set to `value`: every poll of the
    /// returned future sees `value`, on whichever thread it runs.
    ///
    /// The inner future is dropped inside the scope (when it completes,
    /// or when the returned future is dropped before that), so its
    /// destructors can read the value. `value` is dropped with the
    /// returned [`TaskLocalFuture`], after the inner future: at once when
    /// it is `.await`ed to completion, or when a task that owns it ends
    /// or is aborted. [`TaskLocalFuture::take_value`] takes it back.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::task_local! { static DEPTH: u32; }
    ///
    /// waitrt::Runtime::new().unwrap().block_on(async {
    ///     let depth = DEPTH.scope(1, async {
    ///         DEPTH.scope(2, async { DEPTH.get() }).await + DEPTH.get()
    ///     });
    ///     assert_eq!(depth.await, 3);
    /// });
    /// ```
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            local: self,
            slot: Some(value),
            future: Some(future),
        }
    }

    /// Runs `f` with this key set to `value`, then drops `value` and
    /// restores what the key held before (also if `f` panics).
    ///
    /// # Panics
    ///
    /// Inside [`with`](Self::with)'s closure of the same key (the value is
    /// borrowed there, and cannot be swapped out).
    pub fn sync_scope<F, R>(&'static self, value: T, f: F) -> R
    where
        F: FnOnce() -> R,
    {
        let mut slot = Some(value);
        match self.scope_inner(&mut slot, f) {
            Ok(result) => result,
            Err(err) => err.panic(self.name),
        }
    }

    /// Swaps `slot` in, runs `f`, swaps it back out (also on unwind).
    fn scope_inner<F, R>(&'static self, slot: &mut Option<T>, f: F) -> Result<R, ScopeError>
    where
        F: FnOnce() -> R,
    {
        /// Swaps the value back out when `f` returns or unwinds.
        struct Restore<'a, T: 'static> {
            key: &'static LocalKey<T>,
            slot: &'a mut Option<T>,
        }

        impl<T: 'static> Drop for Restore<'_, T> {
            fn drop(&mut self) {
                // Cannot fail: the swap in below succeeded on this thread,
                // and every borrow made inside `f` ended when `f` did.
                let _ = self.key.inner.try_with(|cell| {
                    if let Ok(mut current) = cell.try_borrow_mut() {
                        mem::swap(self.slot, &mut *current);
                    }
                });
            }
        }

        self.inner
            .try_with(|cell| {
                cell.try_borrow_mut()
                    .map(|mut current| mem::swap(slot, &mut *current))
                    .map_err(|_| ScopeError::Borrowed)
            })
            .map_err(|_| ScopeError::Destroyed)??;
        let restore = Restore { key: self, slot };
        let result = f();
        drop(restore);
        Ok(result)
    }

    /// Calls `f` with a reference to the value.
    ///
    /// # Panics
    ///
    /// Outside this key's scopes, with a message naming the key; or while
    /// this thread's thread-locals are being destroyed.
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(result) => result,
            Err(_) => panic!(
                "task-local `{name}` read outside its scope: set it with \
                 `{name}.scope(value, future)` or `{name}.sync_scope(value, f)` around the \
                 code that reads it (a spawned task does not inherit its spawner's task-locals)",
                name = self.name
            ),
        }
    }

    /// Calls `f` with a reference to the value, or gives an
    /// [`AccessError`] outside this key's scopes.
    ///
    /// # Errors
    ///
    /// Outside this key's scopes (or while this thread's thread-locals are
    /// being destroyed).
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let value = self.inner.try_with(|cell| {
            // A borrow fails only during a `scope`'s swap, which runs no
            // user code: treat it as "no value".
            let value = cell.try_borrow().ok()?;
            value.as_ref().map(f)
        });
        match value {
            Ok(Some(result)) => Ok(result),
            _ => Err(AccessError { name: self.name }),
        }
    }
}

impl<T: Clone + 'static> LocalKey<T> {
    /// A clone of the value.
    ///
    /// # Panics
    ///
    /// Outside this key's scopes, as [`with`](Self::with).
    pub fn get(&'static self) -> T {
        self.with(T::clone)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`LocalKey::scope`]: its inner future, run with the
    /// key set to the value this future owns.
    ///
    /// # Cancel safety
    ///
    /// As the inner future's. Dropping this drops the inner future inside
    /// the scope (its destructors see the value), then the value.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct TaskLocalFuture<T: 'static, F> {
        local: &'static LocalKey<T>,
        slot: Option<T>,
        #[pin]
        future: Option<F>,
    }

    impl<T: 'static, F> PinnedDrop for TaskLocalFuture<T, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut future = this.future;
            if future.is_some() {
                let dropped = this.local.scope_inner(this.slot, || future.set(None));
                // Outside the scope if it cannot be entered (thread-locals
                // being destroyed, or dropped inside `with`'s closure).
                if dropped.is_err() {
                    future.set(None);
                }
            }
        }
    }
}

impl<T: 'static, F> TaskLocalFuture<T, F> {
    /// Takes the value out: `None` if it was taken already. The inner
    /// future, if polled again, runs without it (reads panic).
    pub fn take_value(self: Pin<&mut Self>) -> Option<T> {
        self.project().slot.take()
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut future = this.future;
        let polled = this.local.scope_inner(this.slot, || {
            let fut = future.as_mut().as_pin_mut()?;
            let poll = fut.poll(cx);
            if poll.is_ready() {
                // Dropped inside the scope, as on cancellation.
                future.set(None);
            }
            Some(poll)
        });
        match polled {
            Ok(Some(poll)) => poll,
            Ok(None) => panic!("`TaskLocalFuture` polled after it completed"),
            Err(err) => err.panic(this.local.name),
        }
    }
}

impl<T: fmt::Debug + 'static, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture")
            .field("key", &self.local.name)
            .field("value", &self.slot)
            .field("done", &self.future.is_none())
            .finish()
    }
}

/// Why a scope could not be entered.
#[derive(Debug)]
enum ScopeError {
    /// Inside `with`'s closure of the same key.
    Borrowed,
    /// This thread's thread-locals are being destroyed.
    Destroyed,
}

impl ScopeError {
    fn panic(self, name: &str) -> ! {
        match self {
            ScopeError::Borrowed => panic!(
                "cannot enter a scope of task-local `{name}` inside `{name}.with`'s closure: \
                 the value is borrowed there"
            ),
            ScopeError::Destroyed => panic!(
                "cannot enter a scope of task-local `{name}`: this thread's thread-locals \
                 are being destroyed"
            ),
        }
    }
}

/// The error of [`LocalKey::try_with`] outside the key's scopes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AccessError {
    name: &'static str,
}

impl fmt::Debug for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessError")
            .field("key", &self.name)
            .finish()
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task-local `{}` read outside its scope", self.name)
    }
}

impl Error for AccessError {}
