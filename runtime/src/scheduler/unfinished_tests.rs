//! A task found running after shutdown abandoned the unfinished ones (a
//! worker ending the tasks after a fatal panic, outliving the shutdown's
//! wait for it) is abandoned at once: kept, it would never be (nothing
//! drains the list again), its joiner would wait for good, and the task
//! would keep the whole runtime alive (each task holds it).

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{abandon_unfinished, cancel_all_tasks};

#[test]
fn a_task_found_running_after_the_abandon_is_abandoned_at_once() {
    let rt = crate::Builder::new_current_thread().build().unwrap();
    let gate = Arc::new((Mutex::new((false, false)), Condvar::new()));
    let job = {
        let gate = gate.clone();
        rt.spawn_blocking(move || {
            let (lock, cond) = &*gate;
            let mut state = lock.lock().unwrap();
            state.0 = true; // started
            cond.notify_all();
            while !state.1 {
                state = cond.wait(state).unwrap();
            }
        })
    };
    {
        let (lock, cond) = &*gate;
        let mut state = lock.lock().unwrap();
        while !state.0 {
            state = cond.wait(state).unwrap();
        }
    }
    let common = rt.handle().scheduler.common();
    // The shutdown's last step first, then a late worker's cancel.
    abandon_unfinished(common);
    cancel_all_tasks(common);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(futures::executor::block_on(job));
    });
    let joined = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the joiner of a job found running late still waits");
    assert!(joined.unwrap_err().is_abandoned());
    let (lock, cond) = &*gate;
    lock.lock().unwrap().1 = true;
    cond.notify_all();
    rt.shutdown_timeout(Duration::from_secs(30));
}
