//! Compile errors of `#[waitrt::test]` and `#[waitrt::main]`: each case
//! in `ui/` must fail to compile with exactly the messages and spans in its
//! `.stderr` file. `TRYBUILD=overwrite cargo test -p waitrt-macros --test ui`
//! rewrites them after a deliberate change.

#[test]
fn compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
