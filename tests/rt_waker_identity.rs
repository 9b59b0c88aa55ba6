//! A task's waker stays the same waker from poll to poll: a clone kept from
//! one poll `will_wake` the waker of the next, which is how wait queues and
//! hand-written futures skip re-registering (waitq's poll waiters, task
//! signals, `run_until`'s waker list).
#[macro_use]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Pending `polls` times (waking itself), recording whether each poll's
/// waker `will_wake` a clone kept from the first poll.
struct CompareWakers {
    kept: Option<Waker>,
    polls: usize,
    same: Vec<bool>,
}

impl Future for CompareWakers {
    type Output = Vec<bool>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<bool>> {
        match &self.kept {
            None => self.kept = Some(cx.waker().clone()),
            Some(kept) => {
                let same = kept.will_wake(cx.waker()) && cx.waker().will_wake(kept);
                self.same.push(same);
            }
        }
        if self.same.len() == self.polls {
            return Poll::Ready(std::mem::take(&mut self.same));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

rt_test! {
    fn a_tasks_waker_will_wake_its_clones_on_later_polls(rt) {
        let same = rt.block_on(async {
            waitrt::spawn(CompareWakers { kept: None, polls: 8, same: Vec::new() })
                .await
                .unwrap()
        });
        assert_eq!(same, vec![true; 8], "a kept clone no longer matched the task's waker");
    }
}
