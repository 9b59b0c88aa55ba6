// `#[waitrt::main]`: not async, and `check` (tests only). No "`main`
// not found" error follows either.

#[waitrt::main(check)]
async fn main() {}

mod not_async {
    #[waitrt::main(flavor = "current_thread")]
    pub fn main() {}
}
