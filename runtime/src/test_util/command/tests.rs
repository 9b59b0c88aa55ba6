//! The replay command for each kind of test target, from what a test
//! process sees at run time (binary path, caller file, package, thread).

use std::path::Path;

use super::{command, target, Process, Target};

fn process<'a>(exe: &'a str, caller: &'a str, test: &'a str) -> Process<'a> {
    Process {
        exe: Some(Path::new(exe)),
        caller: Some(caller),
        package: Some("waitrt"),
        has_lib: true,
        test: Some(test),
        debug_assertions: true,
    }
}

#[test]
fn integration_test_in_tests() {
    let p = Process {
        package: Some("waitq-workspace"),
        ..process(
            "/w/target/debug/deps/toolkit_features-0123abcd",
            "tests/toolkit_features.rs",
            "replay_and_seed_pinning_reproduce_the_failure",
        )
    };
    assert_eq!(target(&p), Target::Test("toolkit_features".into()));
    assert_eq!(
        command(&p, "3:1"),
        "RUNTIME_TEST_REPLAY='3:1' cargo test -p waitq-workspace --test toolkit_features \
         -- replay_and_seed_pinning_reproduce_the_failure --exact --include-ignored"
    );
}

#[test]
fn integration_test_called_from_a_helper_module_or_a_member_package() {
    // A helper under tests/: the binary names the target.
    let p = process(
        "/w/target/debug/deps/net_tcp-1f",
        "tests/support/mod.rs",
        "a::b",
    );
    assert_eq!(target(&p), Target::Test("net_tcp".into()));
    // A member package's tests/, a dir test, and a `-` in the file name.
    let p = process(
        "/w/target/debug/deps/rt_x-1f",
        "runtime/tests/rt_x/main.rs",
        "t",
    );
    assert_eq!(target(&p), Target::Test("rt_x".into()));
    let p = process(
        "/w/target/debug/deps/wait_list-1f",
        "tests/wait-list.rs",
        "t",
    );
    assert_eq!(target(&p), Target::Test("wait-list".into()));
}

#[test]
fn unit_test_in_a_library() {
    let p = process(
        "/w/target/debug/deps/waitrt-89ab",
        "runtime/src/test_util/check.rs",
        "test_util::check::tests::replays",
    );
    assert_eq!(target(&p), Target::Lib);
    assert_eq!(
        command(&p, "fifo"),
        "RUNTIME_TEST_REPLAY='fifo' cargo test -p waitrt --lib \
         -- test_util::check::tests::replays --exact --include-ignored"
    );
    // A package with a `-`: its crate (and binary) name has a `_`.
    let p = Process {
        package: Some("my-lib"),
        ..process("/w/target/debug/deps/my_lib-89ab", "src/a.rs", "a::t")
    };
    assert_eq!(target(&p), Target::Lib);
}

#[test]
fn unit_test_in_a_binary() {
    let p = Process {
        package: Some("smb-tool"),
        has_lib: false,
        ..process(
            "/w/target/debug/deps/smb_tool-77",
            "src/main.rs",
            "tests::t",
        )
    };
    assert_eq!(target(&p), Target::Bin("smb-tool".into()));
    // Another file of a package without a lib: its bin.
    let p = Process {
        caller: Some("src/cli.rs"),
        ..p
    };
    assert_eq!(target(&p), Target::Bin("smb-tool".into()));
    let p = process(
        "/w/target/debug/deps/extra-77",
        "runtime/src/bin/extra.rs",
        "t",
    );
    assert_eq!(target(&p), Target::Bin("extra".into()));
    assert!(command(&p, "fifo").contains(" -p waitrt --bin extra -- t --exact --include-ignored"));
}

#[test]
fn example() {
    let p = Process {
        package: Some("waitq-workspace"),
        ..process(
            "/w/target/debug/examples/smbiod-5e1f",
            "examples/smbiod/daemon/tests.rs",
            "daemon::tests::t",
        )
    };
    assert_eq!(target(&p), Target::Example("smbiod".into()));
    assert_eq!(
        command(&p, "1:1"),
        "RUNTIME_TEST_REPLAY='1:1' cargo test -p waitq-workspace --example smbiod \
         -- daemon::tests::t --exact --include-ignored"
    );
}

#[test]
fn bench_run_as_a_test() {
    let p = process("/w/target/debug/deps/wake-9", "benches/wake.rs", "t");
    assert_eq!(target(&p), Target::Bench("wake".into()));
}

#[test]
fn doc_test() {
    let p = Process {
        test: None,
        ..process(
            "/tmp/rustdoctestAbC123/rust_out",
            "runtime/src/test_util/check.rs",
            "",
        )
    };
    assert_eq!(target(&p), Target::Doc);
    assert_eq!(
        command(&p, "fifo"),
        "RUNTIME_TEST_REPLAY='fifo' cargo test -p waitrt --doc \
         -- 'runtime/src/test_util/check.rs'"
    );
}

#[test]
fn profiles_from_the_binary_path() {
    let p = process("/w/target/release/deps/net-1", "tests/net.rs", "t");
    assert!(command(&p, "fifo").contains("cargo test --release -p waitrt --test net"));
    let p = process("/w/target/ci/deps/net-1", "tests/net.rs", "t");
    assert!(command(&p, "fifo").contains("cargo test --profile ci -p waitrt"));
    // A binary outside a target dir: the build's own debug_assertions.
    let p = Process {
        debug_assertions: false,
        ..process("/opt/net", "tests/net.rs", "t")
    };
    assert!(command(&p, "fifo").starts_with("RUNTIME_TEST_REPLAY='fifo' cargo test --release"));
}

#[test]
fn unknown_targets_name_none_but_still_filter_the_test() {
    // Called from another crate's source: not this binary's lib.
    let p = process(
        "/w/target/debug/deps/toolkit_x-1",
        "runtime/src/helper.rs",
        "a::t",
    );
    assert_eq!(target(&p), Target::Unknown);
    assert_eq!(
        command(&p, "fifo"),
        "RUNTIME_TEST_REPLAY='fifo' cargo test -p waitrt -- a::t --exact --include-ignored"
    );
    // Code outside the workspace, or no binary path at all.
    let p = process("/w/target/debug/deps/x-1", "/registry/src/lib.rs", "t");
    assert_eq!(target(&p), Target::Unknown);
    let p = Process {
        exe: None,
        package: None,
        ..process("", "tests/x.rs", "t")
    };
    assert_eq!(
        command(&p, "fifo"),
        "RUNTIME_TEST_REPLAY='fifo' cargo test -- t --exact --include-ignored"
    );
}

/// The command a real failing check prints here, in this lib's unit tests.
#[test]
fn a_failing_check_in_this_lib_prints_a_lib_command() {
    let failure = crate::test_util::Check::new()
        .try_run(|| async { panic!("on purpose") })
        .unwrap_err();
    let report = failure.report();
    let name = "test_util::command::tests::a_failing_check_in_this_lib_prints_a_lib_command";
    // This test binary's own profile: `cargo test --release` runs it too.
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    assert!(
        report.contains(&format!(
            "' cargo test{profile} -p waitrt --lib -- {name} --exact --include-ignored"
        )) || std::env::var_os("CARGO_PKG_NAME").is_none(),
        "{report}"
    );
    assert!(
        report.contains(&format!(" --lib -- {name} --exact --include-ignored")),
        "{report}"
    );
}
