//! The command line: parse the arguments, start the embedded server (or
//! name a real one), run the workload with a live progress line, print
//! the summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::client::api::{dialect_name, Client, ConnectOptions};
use crate::report::{summary, ticker};
use crate::server::{async_driver, ShareConfig};
use crate::workload::{self, Plan, Progress};

/// The `--help` text.
pub const HELP: &str = "\
smbiod: an SMB2 client daemon (after Linux's fs/smbfs/smbiod.c) on a wait-queue runtime

USAGE:
  smbiod [OPTIONS]                         embedded server (default)
  smbiod --server HOST:PORT --share NAME   any SMB2/3 server, e.g. Samba

With no --server, smbiod starts its own SMB2 server on 127.0.0.1 (an
ephemeral port) serving a temporary directory seeded with sample files (or
--serve DIR), then runs the workload against it over one connection:
every caller writes files, checks their size, reads them back, verifies
every byte, lists the share and deletes its files. A live progress line
runs meanwhile; the summary gives requests, bytes, throughput, p50/p99
latency, how often the daemon slept and was woken, and 'all N verified'.
Ctrl-C or SIGTERM stops the daemon cleanly (callers get an error, the session is
logged off). The exit code is non-zero on any verification failure.

OPTIONS:
  --server HOST:PORT   use this server instead of the embedded one
  --share NAME         share to connect (default: share)
  --user U             user name: empty = anonymous (default); a name the
                       server does not know = guest on Samba
  --dialect LIST       dialects to offer, comma-separated: 2.0.2, 2.1, 3.0,
                       3.0.2, 3.1.1 (or 0202,0210,0300,0302,0311); default all
  --serve DIR          embedded server: serve DIR instead of a temp dir
  --stay               embedded server: keep serving after the workload
                       (for smbclient -p PORT //127.0.0.1/share)
  --max-open N         embedded server: handles one session may hold
                       (default 256, or 2 per caller if more)
  --callers N          concurrent callers (default 64)
  --rounds N           files per caller (default 8)
  --size BYTES         bytes per file (default 524288)
  --credits N          credits to ask for per request (default 64)
  --timeout SECS       a request with no reply in SECS fails with a timeout
                       (default 30); an idle connection gets an ECHO every
                       SECS/2, and a server that answers nothing for SECS
                       is declared dead (every caller gets an error)
  --hung-timeout SECS  report a task asleep in an uninterruptible wait
                       longer than SECS on stderr, once per sleep (the
                       kernel's hung-task detector; default off)
  -h, --help           this text

kill -QUIT PID (Ctrl-\\) prints who sleeps on what to stderr (the daemon
\"smbiod\", its reader, every \"caller N\": the wait queue, the wait,
for how long, where) and keeps running.
";

/// Parsed arguments.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--server`.
    pub server: Option<String>,
    /// `--serve`.
    pub serve: Option<PathBuf>,
    /// `--stay`.
    pub stay: bool,
    /// `--max-open`.
    pub max_open: Option<usize>,
    /// `--hung-timeout`.
    pub hung_timeout: Option<Duration>,
    /// Connection options.
    pub connect: ConnectOptions,
    /// The workload.
    pub plan: Plan,
}

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Config, String> {
    let mut cfg = Config {
        server: None,
        serve: None,
        stay: false,
        max_open: None,
        hung_timeout: None,
        connect: ConnectOptions::new("share"),
        plan: Plan {
            callers: 64,
            rounds: 8,
            size: 512 * 1024,
            tag: format!("smbiod-{}", std::process::id()),
        },
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--server" => cfg.server = Some(val()?),
            "--share" => cfg.connect.share = val()?,
            "--user" => cfg.connect.user = val()?,
            "--dialect" => cfg.connect.dialects = parse_dialects(&val()?)?,
            "--serve" => cfg.serve = Some(val()?.into()),
            "--stay" => cfg.stay = true,
            "--max-open" => cfg.max_open = Some(num(val()?)?.max(1)),
            "--callers" => cfg.plan.callers = num(val()?)?.max(1),
            "--rounds" => cfg.plan.rounds = num(val()?)?,
            "--size" => cfg.plan.size = num(val()?)?,
            "--credits" => cfg.connect.credit_request = num(val()?)?.clamp(1, 8192) as u16,
            "--timeout" => cfg.connect.timeout = parse_secs("--timeout", &val()?)?,
            "--hung-timeout" => cfg.hung_timeout = Some(parse_secs("--hung-timeout", &val()?)?),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(cfg)
}

/// "30" or "0.5" seconds → a timeout given with `flag`; it must be
/// positive and at most a day.
pub fn parse_secs(flag: &str, v: &str) -> Result<Duration, String> {
    let secs: f64 = v.parse().map_err(|e| format!("{flag} {v}: {e}"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{flag} {v}: want seconds in (0, 86400]"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// "3.1.1,0202" → [0x0311, 0x0202].
pub fn parse_dialects(list: &str) -> Result<Vec<u16>, String> {
    list.split(',')
        .map(|d| {
            let code = match d.trim() {
                "2.0.2" | "0202" => 0x0202,
                "2.1" | "2.1.0" | "0210" => 0x0210,
                "3.0" | "3.0.0" | "0300" => 0x0300,
                "3.0.2" | "0302" => 0x0302,
                "3.1.1" | "0311" => 0x0311,
                other => return Err(format!("unknown dialect {other:?}")),
            };
            Ok(code)
        })
        .collect()
}

/// Runs the program; returns the exit code.
pub fn main() -> i32 {
    main_with(std::env::args().skip(1).collect())
}

/// [`main`] with these arguments (without the program name).
pub fn main_with(args: Vec<String>) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return 0;
    }
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smbiod: {e}");
            return 2;
        }
    };
    let rt = match runtime_builder(&cfg).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smbiod: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(cfg))
}

/// The runtime smbiod runs on: `kill -QUIT` prints who sleeps on what
/// (the process keeps running), and `--hung-timeout` reports hung tasks.
pub fn runtime_builder(cfg: &Config) -> waitrt::Builder {
    let mut builder = waitrt::Builder::new_multi_thread();
    builder.enable_all().dump_on_sigquit(true);
    if let Some(timeout) = cfg.hung_timeout {
        builder.hung_task_timeout(timeout);
    }
    builder
}

async fn run(cfg: Config) -> i32 {
    let mut temp = None;
    let addr = match &cfg.server {
        Some(a) => a.clone(),
        None => {
            let dir = match &cfg.serve {
                Some(d) => d.clone(),
                None => match seed_temp_dir() {
                    Ok(d) => {
                        temp = Some(d.clone());
                        d
                    }
                    Err(e) => return fail(&format!("cannot seed a temp dir: {e}")),
                },
            };
            let share = match ShareConfig::new(&cfg.connect.share, &dir) {
                Ok(mut s) => {
                    s.max_open = cfg.max_open.unwrap_or(s.max_open.max(2 * cfg.plan.callers));
                    s
                }
                Err(e) => return fail(&format!("cannot serve {}: {e}", dir.display())),
            };
            match async_driver::spawn("127.0.0.1:0", share).await {
                Ok((a, _)) => {
                    println!("embedded SMB2 server on {a} serving {}", dir.display());
                    a.to_string()
                }
                Err(e) => return fail(&format!("cannot bind: {e}")),
            }
        }
    };
    let code = session(&cfg, &addr).await;
    if cfg.stay && cfg.server.is_none() {
        use waitrt::signal::{recv, ProcessSignal};
        // Listen before saying so: a signal sent on reading the line below
        // must not fall between the line and the listening.
        let stop = futures::future::select(
            Box::pin(recv(ProcessSignal::CtrlC)),
            Box::pin(recv(ProcessSignal::Terminate)),
        );
        println!("serving until Ctrl-C or SIGTERM: smbclient //127.0.0.1/share -p PORT -N");
        let _ = stop.await;
    }
    if let Some(d) = temp {
        let _ = std::fs::remove_dir_all(d);
    }
    code
}

async fn session(cfg: &Config, addr: &str) -> i32 {
    let client = match Client::connect(addr, &cfg.connect).await {
        Ok(c) => c,
        Err(e) => return fail(&format!("connect to {addr}: {e}")),
    };
    if let Err(e) = client.daemon().route_ctrl_c() {
        eprintln!("smbiod: Ctrl-C will not stop the daemon cleanly: {e}");
    }
    let who = match (cfg.connect.user.as_str(), client.session_flags() & 1) {
        ("", _) => "anonymous".to_string(),
        (u, 1) => format!("{u} (guest)"),
        (u, _) => u.to_string(),
    };
    let p = &cfg.plan;
    println!(
        "connected to //{addr}/{} as {who}, dialect {}; {} callers x {} files of {} bytes",
        cfg.connect.share,
        dialect_name(client.daemon().dialect()),
        p.callers,
        p.rounds,
        p.size
    );
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let tick = waitrt::task::Builder::new().name("progress").spawn(ticker(
        progress.clone(),
        p.callers * p.rounds,
        done.clone(),
    ));
    let outcome = workload::run(&client, p, progress).await;
    done.store(true, Ordering::Release);
    let _ = tick.await;
    if let Some(why) = client
        .daemon()
        .dead_reason()
        .filter(|_| !outcome.all_verified())
    {
        println!("  connection  {why}");
    }
    let logoff = client.logoff().await;
    print!("{}", summary(&outcome));
    if client.daemon().logged_off() {
        println!("  session     logged off");
    }
    match (outcome.all_verified(), logoff) {
        (true, Ok(())) => 0,
        (true, Err(e)) => fail(&format!("logoff: {e}")),
        (false, _) => 1,
    }
}

fn fail(msg: &str) -> i32 {
    eprintln!("smbiod: {msg}");
    1
}

/// A fresh temp dir with a few sample files.
fn seed_temp_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("smbiod-share-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs"))?;
    std::fs::write(dir.join("hello.txt"), "hello from smbiod\n")?;
    std::fs::write(dir.join("docs/notes.txt"), "wait queues all the way down\n")?;
    std::fs::write(dir.join("sample.bin"), workload::pattern(999, 0, 1 << 20))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn timeout_defaults_to_30_s_and_takes_fractions() {
        let cfg = parse(&[]).unwrap();
        assert_eq!(cfg.connect.timeout, Duration::from_secs(30));
        let cfg = parse(&args(&["--timeout", "0.25"])).unwrap();
        assert_eq!(cfg.connect.timeout, Duration::from_millis(250));
        for bad in ["0", "-1", "abc", "NaN", "inf", "1e9"] {
            assert!(parse(&args(&["--timeout", bad])).is_err(), "{bad}");
        }
        assert!(parse(&args(&["--timeout"])).is_err());
    }

    /// A bad value is reported under the flag it was given with (a bad
    /// `--hung-timeout` was reported as `--timeout`).
    #[test]
    fn a_bad_seconds_value_names_its_flag() {
        for flag in ["--timeout", "--hung-timeout"] {
            for bad in ["abc", "0"] {
                let err = parse(&args(&[flag, bad])).err().unwrap();
                assert!(err.starts_with(&format!("{flag} {bad}:")), "{err}");
            }
        }
        let cfg = parse(&args(&["--hung-timeout", "1.5"])).unwrap();
        assert_eq!(cfg.hung_timeout, Some(Duration::from_millis(1500)));
    }
}
