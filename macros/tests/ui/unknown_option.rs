// An option the attribute does not know: the error points at its name.

#[waitrt::test(flavour = "multi_thread")]
async fn misspelt() {}

#[waitrt::test(check(seed = 5))]
async fn misspelt_check_option() {}

#[waitrt::test(start_paused = true, start_paused = false)]
async fn given_twice() {}

fn main() {}
