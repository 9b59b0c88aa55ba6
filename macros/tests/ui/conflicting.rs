// Options that cannot go together: the error points at the one at fault.

#[waitrt::test(worker_threads = 2)]
async fn workers_on_the_default_current_thread() {}

#[waitrt::test(flavor = "current_thread", worker_threads = 2)]
async fn workers_on_current_thread() {}

#[waitrt::test(check, flavor = "multi_thread")]
async fn check_on_multi_thread() {}

#[waitrt::test(start_paused = true, check(seeds = 8))]
async fn check_with_a_runtime_option() {}

#[waitrt::test(check(depth = 3))]
async fn depth_without_pct() {}

#[waitrt::test(check(policy = "pct", preemption_bound = 1))]
async fn bound_without_dfs() {}

fn main() {}
