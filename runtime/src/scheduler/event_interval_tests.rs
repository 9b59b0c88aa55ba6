//! A busy scheduler turns the reactor once per `event_interval` polls,
//! even while every turn finds ready I/O (see `Builder::event_interval`:
//! checking more often let a busy worker feed itself from the reactor and
//! get preempted mid-run on a loaded machine).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use futures::AsyncReadExt as _;

use crate::net::UnixStream;
use crate::Runtime;

const YIELDERS: usize = 8;
const YIELDS: usize = 5_000;

/// Runs 8 tasks that only yield next to a writer that makes a new edge on
/// a socket before every yield (so each reactor turn finds I/O) and a
/// reader that takes it; returns (task polls, reactor turns) meanwhile.
fn polls_and_turns(rt: &Runtime) -> (u64, u64) {
    let reactor = rt
        .handle()
        .scheduler
        .common()
        .io
        .clone()
        .expect("I/O enabled");
    rt.block_on(async {
        let (mut reader, writer) = UnixStream::pair().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reading = crate::spawn(async move {
            let mut buf = [0; 64];
            // Ends at end-of-file, when the writer drops its end.
            while reader.read(&mut buf).await.unwrap() > 0 {}
        });
        let writing = crate::spawn({
            let done = done.clone();
            async move {
                let mut writer = writer.into_std().unwrap();
                // Bounded: the yielders end after YIELDS each.
                while !done.load(Relaxed) {
                    let _ = writer.write(b"x");
                    crate::task::yield_now().await;
                }
            }
        });
        let (polls, turns) = (rt.metrics().polls(), reactor.turns());
        let yielders: Vec<_> = (0..YIELDERS)
            .map(|_| {
                crate::spawn(async {
                    for _ in 0..YIELDS {
                        crate::task::yield_now().await;
                    }
                })
            })
            .collect();
        for yielder in yielders {
            yielder.await.unwrap();
        }
        let measured = (rt.metrics().polls() - polls, reactor.turns() - turns);
        done.store(true, Relaxed);
        writing.await.unwrap();
        reading.await.unwrap();
        measured
    })
}

fn check(rt: Runtime) {
    let (polls, turns) = polls_and_turns(&rt);
    let at_most = polls / 61 + polls / 61 / 5 + 20;
    assert!(
        turns <= at_most,
        "{turns} reactor turns in {polls} polls: more than one per 61 polls (at most {at_most})"
    );
}

#[test]
fn a_busy_current_thread_scheduler_turns_the_reactor_once_per_interval() {
    check(
        crate::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn a_busy_worker_turns_the_reactor_once_per_interval() {
    check(
        crate::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    );
}
