// An option the attribute does not know: the error points at its name.

#[runtime::test(flavour = "multi_thread")]
async fn misspelt() {}

#[runtime::test(check(seed = 5))]
async fn misspelt_check_option() {}

#[runtime::test(start_paused = true, start_paused = false)]
async fn given_twice() {}

fn main() {}
