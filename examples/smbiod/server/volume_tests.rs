//! The volume size the server reports is the served file system's
//! (issue 25: it was made up, 1 TiB with half free), checked against
//! `df`.

use std::process::Command as Proc;

use super::blocking;
use super::tests::fresh;
use crate::client::blocking::SyncClient;
use crate::client::tests::skip;
use crate::wire::create::{FILE_DIRECTORY_FILE, FILE_OPEN};
use crate::wire::info::{fs as fsc, QueryInfoRequest, INFO_FILESYSTEM};
use crate::wire::message::{Request, Response};
use crate::wire::negotiate::DIALECTS;

/// Bytes the free space may move by between our readings (other
/// processes write to the same file system meanwhile).
const SLACK: u64 = 64 << 20;

/// `df -B1 --output=size,avail DIR`: (size, available) in bytes.
fn df(dir: &std::path::Path) -> Option<(u64, u64)> {
    let out = match Proc::new("df")
        .args(["-B1", "--output=size,avail"])
        .arg(dir)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip("df not installed");
            return None;
        }
        Err(e) => panic!("running df: {e}"),
    };
    assert!(out.status.success(), "df failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).expect("df printed no figures");
    let mut nums = line.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    Some((nums.next().unwrap(), nums.next().unwrap()))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// FileFsSizeInformation and FileFsFullSizeInformation give the size and
/// free space `df` gives. Watched failing with the old made-up figures.
#[test]
fn volume_size_is_the_file_systems() {
    let (base, share) = fresh("volume");
    let dir = base.join("share");
    let addr = blocking::spawn("127.0.0.1:0", share).unwrap().to_string();
    let mut c = SyncClient::connect(&addr, &DIALECTS, "", "share").unwrap();
    let root = c
        .create("", 0x0012_0089, FILE_OPEN, FILE_DIRECTORY_FILE)
        .unwrap();
    let Some(before) = df(&dir) else { return };
    let mut query = |class, len| {
        let req = QueryInfoRequest {
            info_type: INFO_FILESYSTEM,
            class,
            output_length: len,
            file_id: root,
            ..QueryInfoRequest::default()
        };
        match c.call(Request::QueryInfo(req), &[]).unwrap().1 {
            Response::QueryInfo(b) => b,
            other => panic!("{other:?}"),
        }
    };
    let full = query(fsc::FULL_SIZE, 32);
    let small = query(fsc::SIZE, 24);
    let after = df(&dir).unwrap();
    assert_eq!(before.0, after.0, "the file system's size changed");
    let (low, high) = (
        before.1.min(after.1).saturating_sub(SLACK),
        before.1.max(after.1) + SLACK,
    );
    for (buf, tail) in [(&full, 24), (&small, 16)] {
        let unit = u64::from(u32_at(buf, tail)) * u64::from(u32_at(buf, tail + 4));
        assert!(unit >= 512, "allocation unit {unit}");
        assert_eq!(u64_at(buf, 0) * unit, before.0, "total size vs df");
        let avail = u64_at(buf, 8) * unit;
        assert!(
            (low..=high).contains(&avail),
            "available {avail} vs df's {} .. {}",
            before.1,
            after.1
        );
    }
    assert!(
        u64_at(&full, 16) >= u64_at(&full, 8),
        "actual >= caller available"
    );
    c.close(root).unwrap();
    c.logoff().unwrap();
    std::fs::remove_dir_all(base).unwrap();
}
