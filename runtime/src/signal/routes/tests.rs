use std::future::pending;

use super::*;
use crate::Builder;

// Finished tasks leave the list as it grows: routing 10,000 tasks one
// after another, each finished before the next, holds no more than the
// list's pruning floor, however many were routed.
#[test]
fn routes_of_finished_tasks_are_pruned_as_the_list_grows() {
    let rt = Builder::new_current_thread().build().unwrap();
    let mut routes = Routes::new();
    rt.block_on(async {
        for _ in 0..10_000 {
            let task = crate::spawn(async {});
            routes.push(
                ProcessSignal::Terminate,
                &task.abort_handle(),
                SignalKind::Interrupt,
            );
            task.await.unwrap();
        }
    });
    assert!(routes.len() <= MIN_PRUNE, "{} routes held", routes.len());
}

// A route keeps nothing of its task, so nothing of its runtime: once the
// runtime is dropped (its tasks cancelled), every route is dead and the
// next prune empties the list.
#[test]
fn routes_keep_nothing_of_a_dropped_runtime() {
    let rt = Builder::new_current_thread().build().unwrap();
    let mut routes = Routes::new();
    let tasks: Vec<_> = (0..1000)
        .map(|_| rt.spawn(pending::<()>()).abort_handle())
        .collect();
    for task in &tasks {
        routes.push(ProcessSignal::CtrlC, task, SignalKind::Kill);
    }
    assert_eq!(routes.live(), 1000);
    drop(tasks);
    drop(rt);
    assert_eq!(routes.live(), 0, "routes keep tasks of a dropped runtime");
    routes.prune();
    assert_eq!(routes.len(), 0);
}

// Pruning never drops a live route, and a delivery reaches each of them.
#[test]
fn live_routes_survive_pruning() {
    let rt = Builder::new_current_thread().build().unwrap();
    let mut routes = Routes::new();
    let tasks: Vec<_> = (0..5 * MIN_PRUNE)
        .map(|_| rt.spawn(pending::<()>()))
        .collect();
    for (i, task) in tasks.iter().enumerate() {
        let signal = match i % 2 {
            0 => ProcessSignal::Terminate,
            _ => ProcessSignal::CtrlC,
        };
        routes.push(signal, &task.abort_handle(), SignalKind::Interrupt);
        // A finished task's route in between, to be pruned.
        let done = rt.block_on(async {
            let done = crate::spawn(async {});
            let handle = done.abort_handle();
            done.await.unwrap();
            handle
        });
        routes.push(signal, &done, SignalKind::Interrupt);
    }
    assert_eq!(
        routes.targets(ProcessSignal::Terminate).len(),
        tasks.len() / 2
    );
    assert_eq!(routes.len(), tasks.len());
    raise_on(routes.targets(ProcessSignal::CtrlC));
    let signalled = |task: &crate::task::JoinHandle<()>| {
        task.abort_handle()
            .downgrade()
            .upgrade()
            .unwrap()
            .header()
            .signals()
            .pending()
    };
    for (i, task) in tasks.iter().enumerate() {
        let expected = (i % 2 == 1).then_some(SignalKind::Interrupt);
        assert_eq!(signalled(task), expected, "task {i}");
    }
}
