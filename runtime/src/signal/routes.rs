//! The route list: which tasks a process signal is raised on.
//!
//! A route holds a *weak* reference to its task. A strong one (an
//! `AbortHandle`) kept every routed task, and through the task's
//! scheduler its whole runtime (threads' queues, the reactor's file
//! descriptors), alive until the next delivery of that signal, which may
//! never come; a dropped runtime stayed allocated with all its routes.
//!
//! A dead route (its task freed) costs only its entry and the task's
//! allocation, which a weak reference holds on to. They go at the next
//! prune: on each delivery, and amortised on [`Routes::push`], once the
//! list has doubled since the last prune (at least [`MIN_PRUNE`]
//! entries). So the list is at most about twice the routes that were live
//! at the last prune, and each push costs O(1) amortised.

use std::sync::Weak;

use waitq::SignalKind;

use super::ProcessSignal;
use crate::task::raw::{Runnable, TaskRef};
use crate::task::AbortHandle;

/// Below this many entries the list is not pruned on push.
pub(super) const MIN_PRUNE: usize = 64;

/// The routes of every process signal.
#[derive(Debug)]
pub(super) struct Routes {
    list: Vec<Route>,
    /// `push` prunes when the list reaches this length.
    prune_at: usize,
}

struct Route {
    signal: ProcessSignal,
    task: Weak<dyn Runnable>,
    kind: SignalKind,
}

// ===== impl Routes =====

impl Routes {
    pub(super) const fn new() -> Self {
        Routes {
            list: Vec::new(),
            prune_at: MIN_PRUNE,
        }
    }

    /// Adds a route: each `signal` raises `kind` on `task`.
    pub(super) fn push(&mut self, signal: ProcessSignal, task: &AbortHandle, kind: SignalKind) {
        if self.list.len() >= self.prune_at {
            self.prune();
        }
        self.list.push(Route {
            signal,
            task: task.downgrade(),
            kind,
        });
    }

    /// Removes every route of `signal` to `task`; how many there were.
    pub(super) fn remove(&mut self, signal: ProcessSignal, task: &AbortHandle) -> usize {
        let task = task.downgrade();
        let before = self.list.len();
        self.list
            .retain(|route| !(route.signal == signal && route.task.ptr_eq(&task)));
        before - self.list.len()
    }

    /// Drops the routes of freed tasks.
    ///
    /// It reads reference counts only: upgrading here could make this
    /// thread the one that frees a task (and perhaps its runtime), under
    /// the caller's lock.
    pub(super) fn prune(&mut self) {
        self.list.retain(|route| route.task.strong_count() > 0);
        self.prune_at = (2 * self.list.len()).max(MIN_PRUNE);
    }

    /// Prunes, then gives the live tasks routed `signal`, with the kind to
    /// raise on each. The caller raises them with [`raise_on`] (which
    /// drops the references) after it has let go of the list.
    pub(super) fn targets(&mut self, signal: ProcessSignal) -> Vec<(TaskRef, SignalKind)> {
        self.prune();
        self.list
            .iter()
            .filter(|route| route.signal == signal)
            .filter_map(|route| Some((route.task.upgrade()?, route.kind)))
            .collect()
    }

    /// How many routes are held, dead ones included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// How many of them are live (their task not freed).
    #[cfg(test)]
    pub(super) fn live(&self) -> usize {
        let live = |route: &&Route| route.task.strong_count() > 0;
        self.list.iter().filter(live).count()
    }
}

/// Raises each target's signal kind on it, unless it has finished.
pub(super) fn raise_on(targets: Vec<(TaskRef, SignalKind)>) {
    for (task, kind) in targets {
        if task.header().state.load().is_complete() {
            continue;
        }
        let signals = task.header().signals();
        match kind {
            SignalKind::Kill => signals.kill(),
            _ => signals.interrupt(),
        }
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("signal", &self.signal)
            .field("live", &(self.task.strong_count() > 0))
            .field("kind", &self.kind)
            .finish()
    }
}

#[cfg(test)]
mod tests;
