//! Timers allocate nothing per registration once the wheel has grown: a
//! counting global allocator watches register / poll / reset / fire /
//! cancel on a current-thread runtime with a paused clock, and hyper's
//! timer resets through `waitrt::hyper::RuntimeTimer`.

use std::pin::pin;
use std::time::Duration;

use futures::poll;
use waitrt::time::{sleep, sleep_until};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

const ROUNDS: u64 = 100;

#[test]
fn register_reset_fire_and_cancel_allocate_nothing_after_warm_up() {
    let rt = waitrt::Builder::new_current_thread()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm-up: the wheel's slab and the fired batch get their memory.
        for _ in 0..2 {
            let mut a = pin!(sleep(Duration::from_secs(3600)));
            let mut b = pin!(sleep(Duration::from_millis(1)));
            assert!(poll!(a.as_mut()).is_pending());
            assert!(poll!(b.as_mut()).is_pending());
            waitrt::time::advance(Duration::from_millis(1)).await;
            assert!(poll!(b.as_mut()).is_ready());
        }
        let before = allocs();
        let mut sleep = pin!(sleep(Duration::from_secs(3600)));
        assert!(poll!(sleep.as_mut()).is_pending());
        for i in 0..ROUNDS {
            let at = waitrt::time::now() + Duration::from_secs(60 + i);
            sleep.as_mut().reset(at);
            assert!(poll!(sleep.as_mut()).is_pending());
        }
        let start = waitrt::time::now();
        sleep.as_mut().reset(start + Duration::from_millis(2));
        waitrt::time::advance(Duration::from_millis(2)).await;
        assert!(poll!(sleep.as_mut()).is_ready());
        // Re-armed after it completed: a fresh node, no allocation.
        sleep.as_mut().reset(start + Duration::from_secs(7));
        assert!(poll!(sleep.as_mut()).is_pending());
        let mut other = pin!(sleep_until(start + Duration::from_secs(8)));
        assert!(poll!(other.as_mut()).is_pending());
        assert_eq!(allocs() - before, 0, "allocations by timers after warm-up");
    });
}

/// hyper's timer through `waitrt::hyper::RuntimeTimer`: `reset` of a sleep
/// it made re-arms our `Sleep` in place (a downcast, no new box), so
/// hyper's per-request header-read timer allocates nothing after its
/// first `sleep`.
#[test]
fn hyper_timer_reset_allocates_nothing() {
    use hyper::rt::Timer;
    use waitrt::hyper::RuntimeTimer;

    let rt = waitrt::Builder::new_current_thread()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let timer = RuntimeTimer::new();
        let mut sleep = timer.sleep(Duration::from_secs(3600));
        assert!(poll!(sleep.as_mut()).is_pending());
        // Warm-up: the wheel's slab and the fired batch.
        timer.reset(&mut sleep, waitrt::time::now() + Duration::from_secs(30));
        assert!(poll!(sleep.as_mut()).is_pending());
        let mut fired = pin!(waitrt::time::sleep(Duration::from_millis(1)));
        assert!(poll!(fired.as_mut()).is_pending());
        waitrt::time::advance(Duration::from_millis(1)).await;
        assert!(poll!(fired.as_mut()).is_ready());
        let before = allocs();
        for i in 0..ROUNDS {
            let at = waitrt::time::now() + Duration::from_secs(60 + i);
            timer.reset(&mut sleep, at);
            assert!(poll!(sleep.as_mut()).is_pending());
        }
        let soon = waitrt::time::now() + Duration::from_millis(2);
        timer.reset(&mut sleep, soon);
        waitrt::time::advance(Duration::from_millis(2)).await;
        assert!(poll!(sleep.as_mut()).is_ready());
        assert_eq!(allocs() - before, 0, "allocations by RuntimeTimer::reset");
    });
}
