// The function itself: not async, with arguments, generic, or a second
// test attribute.

#[runtime::test]
fn not_async() {}

#[runtime::test]
async fn with_an_argument(n: u32) {
    let _ = n;
}

#[runtime::test]
async fn generic<T>() {}

#[runtime::test]
#[test]
async fn two_test_attributes() {}

fn main() {}
