// A value of the wrong type or out of range: the error points at the value.

#[waitrt::test(flavor = "multi_thread", worker_threads = "4")]
async fn string_for_an_integer() {}

#[waitrt::test(start_paused = 1)]
async fn integer_for_a_bool() {}

#[waitrt::test(flavor = "many_threads")]
async fn unknown_flavor() {}

#[waitrt::test(flavor = "multi_thread", worker_threads = 0)]
async fn no_workers() {}

#[waitrt::test(start_paused)]
async fn no_value() {}

#[waitrt::test(check(seeds = "many", policy = "round_robin"))]
async fn bad_check_values() {}

#[waitrt::test(check(max_time = 10, oracle = "no", max_poll_decisions = true))]
async fn bad_check_types() {}

#[waitrt::test(check(max_time = "10 parsecs", coverage))]
async fn bad_duration_and_no_value() {}

fn main() {}
