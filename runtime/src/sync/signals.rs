//! The current task's signals as a [`SignalSource`], for the
//! `_interruptible` and `_killable` forms of every primitive.

use std::task::{Context, Poll};

use waitq::{SignalKind, SignalSource, TaskState};

use crate::task::{try_signals, Signals};

/// The signals of the task that calls [`current`]; none outside a task
/// (a `block_on` future or another executor cannot be signalled, so a
/// wait there never ends by a signal).
#[derive(Debug, Clone)]
pub(crate) struct CurrentSignals(Option<Signals>);

/// The calling task's signals (taken at the call, as the kernel reads
/// `current`'s).
pub(crate) fn current() -> CurrentSignals {
    CurrentSignals(try_signals())
}

impl SignalSource for CurrentSignals {
    fn poll_signal(&self, state: TaskState, cx: &mut Context<'_>) -> Poll<SignalKind> {
        match &self.0 {
            Some(signals) => signals.poll_signal(state, cx),
            None => Poll::Pending,
        }
    }
}
