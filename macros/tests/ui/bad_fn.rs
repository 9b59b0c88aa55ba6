// The function itself: not async, with arguments, generic, or a second
// test attribute.

#[waitrt::test]
fn not_async() {}

#[waitrt::test]
async fn with_an_argument(n: u32) {
    let _ = n;
}

#[waitrt::test]
async fn generic<T>() {}

#[waitrt::test]
#[test]
async fn two_test_attributes() {}

fn main() {}
