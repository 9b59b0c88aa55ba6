//! The one-line `cargo test` command a failure report prints to replay its
//! schedule, for whichever kind of target the failing test is in.
//!
//! Cargo does not tell a test binary which target it is, so the kind is
//! read from what the process can see at run time:
//!
//! - the binary's path: `target/<profile>/examples/<name>-<hash>` is an
//!   example, `target/<profile>/deps/<name>-<hash>` is a lib, bin,
//!   integration test or bench, and a `rust_out` under a `rustdoctest`
//!   directory is a doc test;
//! - for `deps/`, the file of the code that called [`Check::run`] (its
//!   `#[track_caller]` location): under `tests/` an integration test,
//!   under `benches/` a bench, `src/main.rs` or `src/bin/` a bin, any
//!   other file under `src/` the lib (or the bin, without a `src/lib.rs`);
//! - `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`, which `cargo test` sets
//!   for the test process (not only at compile time), for `-p <package>`;
//! - the test thread's name, which libtest sets to the test's path, for
//!   `-- <path> --exact --include-ignored`.
//!
//! When the kind cannot be told, the command names no target: `cargo test
//! -p <package> -- <path> --exact` builds every target of the package, but
//! still runs only the failing test. Known gap: an integration test whose
//! file name has a `-` and whose check is called from a helper module is
//! named with `_` (the binary's name), which cargo does not accept.
//!
//! [`Check::run`]: super::Check::run

use std::path::{Component, Path};

use super::check::REPLAY_VAR;

/// The kind of target a test binary was built from, with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Unit tests of the library: `--lib`.
    Lib,
    /// Unit tests of a binary: `--bin <name>`.
    Bin(String),
    /// An integration test in `tests/`: `--test <name>`.
    Test(String),
    /// An example's tests: `--example <name>`.
    Example(String),
    /// A bench run as a test: `--bench <name>`.
    Bench(String),
    /// A doc test: `--doc`.
    Doc,
    /// Not known: no target flag.
    Unknown,
}

/// What the running test process knows about itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Process<'a> {
    /// `std::env::current_exe()`.
    pub(crate) exe: Option<&'a Path>,
    /// The file of the code that called the check.
    pub(crate) caller: Option<&'a str>,
    /// `CARGO_PKG_NAME`.
    pub(crate) package: Option<&'a str>,
    /// Whether `CARGO_MANIFEST_DIR/src/lib.rs` exists.
    pub(crate) has_lib: bool,
    /// The test thread's name (`None` for `main`).
    pub(crate) test: Option<&'a str>,
    /// Whether the test crate was built without optimisations, when the
    /// binary's path does not say (`cfg!(debug_assertions)`).
    pub(crate) debug_assertions: bool,
}

/// The replay command for `schedule` in the current process.
pub(crate) fn replay_command(schedule: &str, caller: &str) -> String {
    let exe = std::env::current_exe().ok();
    let package = std::env::var("CARGO_PKG_NAME").ok();
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR");
    let has_lib = manifest.is_some_and(|dir| Path::new(&dir).join("src/lib.rs").is_file());
    let thread = std::thread::current();
    let process = Process {
        exe: exe.as_deref(),
        caller: Some(caller),
        package: package.as_deref().filter(|p| !p.is_empty()),
        has_lib,
        test: thread.name().filter(|n| *n != "main"),
        debug_assertions: cfg!(debug_assertions),
    };
    command(&process, schedule)
}

/// `RUNTIME_TEST_REPLAY='<schedule>' cargo test [profile] [-p <package>]
/// [target] [-- <filter> [--exact --include-ignored]]`.
pub(crate) fn command(process: &Process<'_>, schedule: &str) -> String {
    let mut cmd = format!("{REPLAY_VAR}='{schedule}' cargo test");
    match process.exe.and_then(profile) {
        Some(Profile::Dev) => {}
        Some(Profile::Release) => cmd.push_str(" --release"),
        Some(Profile::Named(name)) => cmd.push_str(&format!(" --profile {name}")),
        None if process.debug_assertions => {}
        None => cmd.push_str(" --release"),
    }
    if let Some(package) = process.package {
        cmd.push_str(&format!(" -p {package}"));
    }
    let target = target(process);
    match &target {
        Target::Lib => cmd.push_str(" --lib"),
        Target::Bin(name) => cmd.push_str(&format!(" --bin {name}")),
        Target::Test(name) => cmd.push_str(&format!(" --test {name}")),
        Target::Example(name) => cmd.push_str(&format!(" --example {name}")),
        Target::Bench(name) => cmd.push_str(&format!(" --bench {name}")),
        Target::Doc => cmd.push_str(" --doc"),
        Target::Unknown => {}
    }
    match (process.test, &target) {
        // `--include-ignored`: the test ran, so it runs again even if it
        // is `#[ignore]`d (and was run with `--ignored`).
        (Some(test), _) => cmd.push_str(&format!(" -- {test} --exact --include-ignored")),
        // Doc tests run on `main`; their names start with their file.
        (None, Target::Doc) => {
            if let Some(file) = process.caller {
                cmd.push_str(&format!(" -- '{file}'"));
            }
        }
        (None, _) => {}
    }
    cmd
}

#[derive(Debug, PartialEq, Eq)]
enum Profile<'a> {
    Dev,
    Release,
    Named(&'a str),
}

/// The profile from `target/<dir>/{deps,examples}/<binary>`.
fn profile(exe: &Path) -> Option<Profile<'_>> {
    let dir = exe.parent()?;
    if !matches!(name_of(dir), Some("deps" | "examples")) {
        return None;
    }
    Some(match name_of(dir.parent()?)? {
        "debug" => Profile::Dev,
        "release" => Profile::Release,
        other => Profile::Named(other),
    })
}

/// Which target the process was built from.
pub(crate) fn target(process: &Process<'_>) -> Target {
    let Some(exe) = process.exe else {
        return Target::Unknown;
    };
    let stem = binary_name(exe);
    let dir = exe.parent().and_then(name_of);
    if dir == Some("examples") {
        return stem.map_or(Target::Unknown, |s| Target::Example(s.to_string()));
    }
    let in_rustdoc = exe.components().any(
        |c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with("rustdoctest")),
    );
    if in_rustdoc || name_of(exe) == Some("rust_out") {
        return Target::Doc;
    }
    let (Some("deps"), Some(stem)) = (dir, stem) else {
        return Target::Unknown;
    };
    let Some((area, rest)) = process.caller.and_then(area_of) else {
        return Target::Unknown;
    };
    // The target's own name, when the caller is its root file (keeps a `-`
    // that the binary's name turns into `_`).
    let named = |rest: &[&str]| -> String {
        let root = match rest {
            [file] => file.strip_suffix(".rs"),
            [dir, "main.rs"] => Some(*dir),
            _ => None,
        };
        match root {
            Some(name) if name.replace('-', "_") == stem => name.to_string(),
            _ => stem.to_string(),
        }
    };
    let crate_name = process.package.map(|p| p.replace('-', "_"));
    match area {
        "tests" => Target::Test(named(&rest)),
        "benches" => Target::Bench(named(&rest)),
        "src" => match rest.as_slice() {
            ["main.rs"] => match process.package {
                Some(package) if crate_name.as_deref() == Some(stem) => {
                    Target::Bin(package.to_string())
                }
                _ => Target::Unknown,
            },
            ["bin", rest @ ..] => Target::Bin(named(rest)),
            _ if crate_name.as_deref() != Some(stem) => Target::Unknown,
            _ if process.has_lib => Target::Lib,
            _ => Target::Bin(process.package.unwrap_or(stem).to_string()),
        },
        _ => Target::Unknown,
    }
}

/// `<name>` of `<name>-<hash>`.
fn binary_name(exe: &Path) -> Option<&str> {
    let stem = exe.file_stem()?.to_str()?;
    Some(stem.rsplit_once('-').map_or(stem, |(name, _)| name))
}

fn name_of(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()
}

/// The first `src`, `tests`, `examples` or `benches` component of a
/// relative source path, and the components after it. Absolute paths
/// (code outside the workspace) have none.
fn area_of(file: &str) -> Option<(&'static str, Vec<&str>)> {
    let file = Path::new(file);
    if file.is_absolute() {
        return None;
    }
    let parts: Vec<&str> = file.iter().filter_map(|c| c.to_str()).collect();
    parts.iter().enumerate().find_map(|(i, part)| {
        let area = ["src", "tests", "examples", "benches"]
            .into_iter()
            .find(|a| a == part)?;
        Some((area, parts[i + 1..].to_vec()))
    })
}

#[cfg(test)]
mod tests;
