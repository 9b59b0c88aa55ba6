//! The guides' claims (`runtime::guide`) and the server of
//! `examples/server.rs` (the "write a server" guide), tested.

use std::time::Duration;

/// How long any wait in these tests may take before it is a failure.
const LIMIT: Duration = Duration::from_secs(30);

/// "Coming from tokio": a crate that needs tokio's runtime (here its
/// timer) builds, then panics at run time on ours with tokio's message;
/// `tokio::sync` needs no tokio runtime and works.
#[test]
fn tokio_timers_panic_on_our_runtime_and_tokio_sync_works() {
    let rt = runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let timer = runtime::spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        });
        let err = runtime::time::timeout(LIMIT, timer)
            .await
            .expect("the task ended in time")
            .expect_err("tokio's timer has no runtime here");
        let panic = err.into_panic();
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        assert!(
            message.contains("there is no reactor running"),
            "tokio's message: {message:?}"
        );

        let (tx, rx) = tokio::sync::oneshot::channel();
        runtime::spawn(async move {
            runtime::time::sleep(Duration::from_millis(1)).await;
            tx.send(7).unwrap();
        });
        let got = runtime::time::timeout(LIMIT, rx).await.expect("in time");
        assert_eq!(got.unwrap(), 7);
    });
}
