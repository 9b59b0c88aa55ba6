//! Process signals routed to tasks: `SIGTERM`/`SIGINT` end the routed
//! tasks' interruptible and killable waits; `ctrl_c()` wakes on `SIGINT`.
//! One test per process-wide signal flow, run in sequence in one test.

use runtime::signal::{self, ProcessSignal};
use runtime::sync::{SignalKind, WaitQueue};

static NEVER: WaitQueue = WaitQueue::new();

#[test]
fn process_signals_reach_routed_tasks() {
    let rt = runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        // SIGTERM as an interrupt ends an interruptible wait.
        let interruptible = runtime::spawn(async {
            let signals = runtime::task::signals();
            NEVER.wait_event_interruptible(&signals, || false).await
        });
        // SIGTERM as a kill ends a killable wait (an interrupt would not).
        let killable = runtime::spawn(async {
            let signals = runtime::task::signals();
            NEVER.wait_event_killable(&signals, || false).await
        });
        signal::route(
            ProcessSignal::Terminate,
            &interruptible.abort_handle(),
            SignalKind::Interrupt,
        )
        .unwrap();
        signal::route(
            ProcessSignal::Terminate,
            &killable.abort_handle(),
            SignalKind::Kill,
        )
        .unwrap();
        // Not routed: must keep sleeping.
        let bystander = runtime::spawn(async {
            let signals = runtime::task::signals();
            NEVER.wait_event_interruptible(&signals, || false).await
        });
        signal::raise(ProcessSignal::Terminate).unwrap();
        let err = interruptible.await.unwrap().unwrap_err();
        assert!(!err.is_closed() && !err.is_fatal(), "{err:?}");
        let err = killable.await.unwrap().unwrap_err();
        assert!(!err.is_closed(), "{err:?}");
        assert!(!bystander.is_finished());
        bystander.abort();
        assert!(bystander.await.unwrap_err().is_cancelled());

        // ctrl_c() wakes on the next SIGINT.
        let waiter = runtime::spawn(signal::ctrl_c());
        runtime::task::yield_now().await;
        std::thread::spawn(|| {
            // Keep raising until the waiter has seen one (it may not have
            // registered its baseline count before the first).
            for _ in 0..1000 {
                signal::raise(ProcessSignal::CtrlC).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(5));
                if DONE.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
            }
        });
        waiter.await.unwrap().unwrap();
        DONE.store(true, std::sync::atomic::Ordering::Release);
    });
}

static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
