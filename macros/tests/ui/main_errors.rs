// `#[runtime::main]`: not async, and `check` (tests only). No "`main`
// not found" error follows either.

#[runtime::main(check)]
async fn main() {}

mod not_async {
    #[runtime::main(flavor = "current_thread")]
    pub fn main() {}
}
