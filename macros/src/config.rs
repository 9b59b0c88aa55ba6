//! The attribute's arguments: parsed, checked against each other, and
//! turned into the builder calls the expansion makes.
//!
//! Every error points at the argument at fault (its key for an unknown or
//! repeated option, its value for a value of the wrong type), and all of
//! them are reported at once, combined into one `syn::Error`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitBool, LitInt, LitStr, Meta, MetaNameValue, Token};

/// Which attribute is being expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Test,
    Main,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Test => "test",
            Kind::Main => "main",
        }
    }
}

/// `flavor = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
}

/// Everything the attribute was given.
pub(crate) struct Config {
    pub(crate) kind: Kind,
    /// The flavor and the `flavor = ".."` argument it came from.
    flavor: Option<(Flavor, Meta)>,
    worker_threads: Option<(LitInt, Meta)>,
    start_paused: Option<(LitBool, Meta)>,
    thread_name: Option<(LitStr, Meta)>,
    /// `crate = "path"`: where the runtime crate is (default `::waitrt`).
    krate: Option<syn::Path>,
    /// `check` or `check(...)`.
    check: Option<Check>,
}

/// `check(...)`: the toolkit's builder calls, in order, and the policy.
pub(crate) struct Check {
    calls: Vec<TokenStream>,
    /// The `Policy` variant, e.g. `Pct { depth: 3 }`.
    policy: Option<TokenStream>,
}

/// `Check`'s builder methods that take an integer, in the order the
/// unknown-option error lists them (`seeds` and `first_seed` first).
const INT_OPTIONS: &[&str] = &[
    "seeds",
    "first_seed",
    "max_polls",
    "max_poll_decisions",
    "max_depth",
];

/// `Check`'s builder methods that take a `Duration`, written as a string
/// with a unit (`max_time = "10s"`), or `"off"` for `Duration::MAX` (no
/// limit).
const DURATION_OPTIONS: &[&str] = &["max_time", "watchdog", "late_wake_grace"];

/// `Check`'s builder methods that take a `bool`.
const BOOL_OPTIONS: &[&str] = &[
    "spurious_wakeups",
    "weak_memory",
    "inject_signals",
    "time_jumps",
    "oracle",
    "allow_task_panics",
    "check_determinism",
    "shrink",
    "quiet",
    "coverage",
];

// ===== parsing =====

impl Config {
    /// Parses the attribute's arguments for `kind`.
    pub(crate) fn parse(kind: Kind, args: TokenStream) -> syn::Result<Config> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
        let mut config = Config {
            kind,
            flavor: None,
            worker_threads: None,
            start_paused: None,
            thread_name: None,
            krate: None,
            check: None,
        };
        let mut errors = Errors::default();
        for meta in metas {
            errors.push(config.option(meta));
        }
        errors.push(config.validate());
        errors.finish()?;
        Ok(config)
    }

    /// One `key = value`, `key` or `key(...)`.
    fn option(&mut self, meta: Meta) -> syn::Result<()> {
        let key = key(&meta)?;
        match key.as_str() {
            "flavor" => {
                let lit = str_value(&meta, "flavor = \"multi_thread\"")?;
                let flavor = match lit.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    other => {
                        return Err(syn::Error::new_spanned(
                            &lit,
                            format!(
                            "unknown flavor `{other}`: expected `current_thread` or `multi_thread`"
                        ),
                        ))
                    }
                };
                once(&mut self.flavor, (flavor, meta.clone()), &meta)
            }
            "worker_threads" => {
                let lit = int_value(&meta, "worker_threads = 4")?;
                if lit.base10_parse::<usize>()? == 0 {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "`worker_threads` must be at least 1",
                    ));
                }
                once(&mut self.worker_threads, (lit, meta.clone()), &meta)
            }
            "start_paused" => {
                let lit = bool_value(&meta, "start_paused = true")?;
                once(&mut self.start_paused, (lit, meta.clone()), &meta)
            }
            "thread_name" => {
                let lit = str_value(&meta, "thread_name = \"app\"")?;
                once(&mut self.thread_name, (lit, meta.clone()), &meta)
            }
            "crate" => {
                let lit = str_value(&meta, "crate = \"runtime\"")?;
                let path = lit.parse::<syn::Path>().map_err(|_| {
                    syn::Error::new_spanned(
                        &lit,
                        "`crate` takes a path, e.g. `crate = \"runtime\"`",
                    )
                })?;
                once(&mut self.krate, path, &meta)
            }
            "check" if self.kind == Kind::Main => Err(syn::Error::new_spanned(
                &meta,
                "`check` is for `#[waitrt::test]`: a program's `main` cannot run many times",
            )),
            "check" => {
                let check = Check::parse(&meta)?;
                once(&mut self.check, check, &meta)
            }
            _ => Err(syn::Error::new_spanned(
                meta.path(),
                format!(
                    "unknown option `{key}` for `#[waitrt::{}]`: expected one of `flavor`, \
                     `worker_threads`, `start_paused`, `thread_name`, `crate`{}",
                    self.kind.name(),
                    if self.kind == Kind::Test {
                        ", `check`"
                    } else {
                        ""
                    },
                ),
            )),
        }
    }

    /// The rules that concern two options at once.
    fn validate(&self) -> syn::Result<()> {
        let mut errors = Errors::default();
        if self.check.is_some() {
            let runtime_options = [
                self.flavor.as_ref().map(|(_, m)| m),
                self.worker_threads.as_ref().map(|(_, m)| m),
                self.start_paused.as_ref().map(|(_, m)| m),
                self.thread_name.as_ref().map(|(_, m)| m),
            ];
            for meta in runtime_options.into_iter().flatten() {
                errors.add(syn::Error::new_spanned(
                    meta,
                    format!(
                        "`{}` cannot go with `check`: a check runs the body on the test \
                         toolkit's own runtime (current-thread, clock paused)",
                        key(meta).unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some((_, meta)) = &self.worker_threads {
            if self.flavor() == Flavor::CurrentThread && self.check.is_none() {
                errors.add(syn::Error::new_spanned(
                    meta,
                    "`worker_threads` needs `flavor = \"multi_thread\"`: the current-thread \
                     runtime runs every task on the calling thread",
                ));
            }
        }
        errors.finish()
    }
}

impl Check {
    fn parse(meta: &Meta) -> syn::Result<Check> {
        let nested = match meta {
            Meta::Path(_) => Punctuated::new(),
            Meta::List(list) => {
                list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?
            }
            Meta::NameValue(nv) => {
                return Err(syn::Error::new_spanned(
                    nv,
                    "write `check` or `check(seeds = 500, policy = \"pct\")`",
                ))
            }
        };
        let mut errors = Errors::default();
        let mut seen: Vec<String> = Vec::new();
        let mut policy: Option<(String, LitStr)> = None;
        let mut depth: Option<(LitInt, Meta)> = None;
        let mut bound: Option<(LitInt, Meta)> = None;
        let mut calls = Vec::new();
        for option in nested {
            let result = (|| {
                let key = key(&option)?;
                if seen.contains(&key) {
                    return Err(syn::Error::new_spanned(
                        option.path(),
                        format!("`{key}` given twice"),
                    ));
                }
                seen.push(key.clone());
                let method = syn::Ident::new(&key, option.path().span());
                match key.as_str() {
                    key if INT_OPTIONS.contains(&key) => {
                        let lit = int_value(&option, &format!("{key} = 8"))?;
                        // Unsuffixed: the method's own integer type
                        // (`max_depth` takes a `usize`, the others `u64`).
                        let n = proc_macro2::Literal::u64_unsuffixed(lit.base10_parse::<u64>()?);
                        calls.push(quote_spanned!(lit.span()=> .#method(#n)));
                    }
                    key if BOOL_OPTIONS.contains(&key) => {
                        let lit = bool_value(&option, &format!("{key} = true"))?;
                        calls.push(quote_spanned!(lit.span()=> .#method(#lit)));
                    }
                    key if DURATION_OPTIONS.contains(&key) => {
                        let example = format!("{key} = \"10s\"");
                        let lit = duration_value(&option, &example)?;
                        if lit.value().trim() == "off" {
                            calls.push(quote_spanned!(lit.span()=>
                                .#method(::core::time::Duration::MAX)
                            ));
                            return Ok(());
                        }
                        let nanos = parse_duration(&lit.value()).ok_or_else(|| {
                            syn::Error::new_spanned(
                                &lit,
                                format!(
                                    "`{key}` takes a duration: a whole number and a unit \
                                     (`ns`, `us`, `ms`, `s`, `min` or `h`), e.g. `{example}`, \
                                     or `\"off\"` for no limit"
                                ),
                            )
                        })?;
                        calls.push(quote_spanned!(lit.span()=>
                            .#method(::core::time::Duration::from_nanos(#nanos))
                        ));
                    }
                    "policy" => {
                        let lit = str_value(&option, "policy = \"pct\"")?;
                        let name = lit.value();
                        if !["random", "pct", "dfs", "fifo"].contains(&name.as_str()) {
                            return Err(syn::Error::new_spanned(
                                &lit,
                                format!(
                                    "unknown policy `{name}`: expected `random`, `pct`, `dfs` or `fifo`"
                                ),
                            ));
                        }
                        policy = Some((name, lit));
                    }
                    "depth" => depth = Some((int_value(&option, "depth = 3")?, option.clone())),
                    "preemption_bound" => {
                        bound = Some((int_value(&option, "preemption_bound = 1")?, option.clone()))
                    }
                    _ => {
                        return Err(syn::Error::new_spanned(
                            option.path(),
                            format!(
                                "unknown `check` option `{key}`: expected one of `seeds`, \
                                 `first_seed`, `policy`, `depth` (pct), `preemption_bound` (dfs), \
                                 {}",
                                INT_OPTIONS[2..]
                                    .iter()
                                    .chain(DURATION_OPTIONS)
                                    .chain(BOOL_OPTIONS)
                                    .map(|o| format!("`{o}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ))
                    }
                }
                Ok(())
            })();
            errors.push(result);
        }
        let policy = policy_variant(policy, depth, bound);
        errors.finish()?;
        Ok(Check {
            calls,
            policy: policy?,
        })
    }
}

/// The `Policy` variant from `policy`, `depth` and `preemption_bound`;
/// `depth` goes with `pct` only, `preemption_bound` with `dfs` only.
fn policy_variant(
    policy: Option<(String, LitStr)>,
    depth: Option<(LitInt, Meta)>,
    bound: Option<(LitInt, Meta)>,
) -> syn::Result<Option<TokenStream>> {
    let name = policy.as_ref().map(|(name, _)| name.as_str());
    if let Some((_, meta)) = &depth {
        if name != Some("pct") {
            return Err(syn::Error::new_spanned(
                meta,
                "`depth` goes with `policy = \"pct\"`",
            ));
        }
    }
    if let Some((_, meta)) = &bound {
        if name != Some("dfs") {
            return Err(syn::Error::new_spanned(
                meta,
                "`preemption_bound` goes with `policy = \"dfs\"`",
            ));
        }
    }
    let Some((name, lit)) = policy else {
        return Ok(None);
    };
    let span = lit.span();
    let policy = match name.as_str() {
        "random" => quote_spanned!(span=> Random),
        "fifo" => quote_spanned!(span=> Fifo),
        "pct" => {
            let depth = match depth {
                Some((lit, _)) => lit.base10_parse::<u32>()?,
                None => 3,
            };
            quote_spanned!(span=> Pct { depth: #depth })
        }
        _ => {
            let bound = match bound {
                Some((lit, _)) => lit.base10_parse::<u32>()?,
                None => 2,
            };
            quote_spanned!(span=> Dfs { preemption_bound: #bound })
        }
    };
    Ok(Some(policy))
}

// ===== what the expansion asks for =====

impl Config {
    pub(crate) fn flavor(&self) -> Flavor {
        match (&self.flavor, self.kind) {
            (Some((flavor, _)), _) => *flavor,
            (None, Kind::Test) => Flavor::CurrentThread,
            (None, Kind::Main) => Flavor::MultiThread,
        }
    }

    /// The path the expansion names the runtime crate by.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::waitrt),
        }
    }

    /// The `check(...)` builder calls, if the body runs under the toolkit.
    pub(crate) fn check_calls(&self) -> Option<TokenStream> {
        let check = self.check.as_ref()?;
        let krate = self.krate();
        let calls = &check.calls;
        let policy = check
            .policy
            .as_ref()
            .map(|variant| quote!(.policy(#krate::test_util::Policy::#variant)));
        Some(quote!(#(#calls)* #policy))
    }

    /// `Builder::new_*()` and the calls after it, up to `build()`.
    pub(crate) fn builder(&self) -> TokenStream {
        let krate = self.krate();
        let mut builder = match self.flavor() {
            Flavor::CurrentThread => quote!(#krate::Builder::new_current_thread()),
            Flavor::MultiThread => quote!(#krate::Builder::new_multi_thread()),
        };
        if let Some((n, _)) = &self.worker_threads {
            builder.extend(quote!(.worker_threads(#n)));
        }
        if let Some((paused, _)) = &self.start_paused {
            builder.extend(quote!(.start_paused(#paused)));
        }
        if let Some((name, _)) = &self.thread_name {
            builder.extend(quote!(.thread_name(#name)));
        }
        builder.extend(quote!(.enable_all()));
        builder
    }
}

// ===== helpers =====

/// Collects errors so every bad argument is reported, not only the first.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push<T>(&mut self, result: syn::Result<T>) {
        if let Err(error) = result {
            self.add(error);
        }
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The option's name: a single identifier (`crate` included).
fn key(meta: &Meta) -> syn::Result<String> {
    let path = meta.path();
    match path.get_ident() {
        Some(ident) if path.leading_colon.is_none() => Ok(ident.to_string()),
        _ => Err(syn::Error::new_spanned(
            path,
            "expected an option name, e.g. `flavor`",
        )),
    }
}

/// Sets `slot` once; a second time is an error at the second key.
fn once<T>(slot: &mut Option<T>, value: T, meta: &Meta) -> syn::Result<()> {
    if slot.is_some() {
        let name = key(meta).unwrap_or_default();
        return Err(syn::Error::new_spanned(
            meta.path(),
            format!("`{name}` given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// The literal of `key = literal`; any other form is an error that shows
/// `example`.
fn literal<'a>(meta: &'a Meta, example: &str, what: &str) -> syn::Result<&'a Lit> {
    let name = key(meta)?;
    let wrong = |span: &dyn ToTokens| {
        syn::Error::new_spanned(span, format!("`{name}` takes {what}, e.g. `{example}`"))
    };
    match meta {
        Meta::NameValue(MetaNameValue {
            value: Expr::Lit(lit),
            ..
        }) => Ok(&lit.lit),
        Meta::NameValue(nv) => Err(wrong(&nv.value)),
        other => Err(wrong(other)),
    }
}

fn str_value(meta: &Meta, example: &str) -> syn::Result<LitStr> {
    match literal(meta, example, "a string")? {
        Lit::Str(lit) => Ok(lit.clone()),
        lit => Err(type_error(meta, lit, example, "a string")),
    }
}

fn int_value(meta: &Meta, example: &str) -> syn::Result<LitInt> {
    match literal(meta, example, "an integer")? {
        Lit::Int(lit) => Ok(lit.clone()),
        lit => Err(type_error(meta, lit, example, "an integer")),
    }
}

fn bool_value(meta: &Meta, example: &str) -> syn::Result<LitBool> {
    match literal(meta, example, "`true` or `false`")? {
        Lit::Bool(lit) => Ok(lit.clone()),
        lit => Err(type_error(meta, lit, example, "`true` or `false`")),
    }
}

/// The string of `key = "10s"` (a duration is written as a string: an
/// integer literal would leave its unit unsaid).
fn duration_value(meta: &Meta, example: &str) -> syn::Result<LitStr> {
    let what = "a duration string";
    match literal(meta, example, what)? {
        Lit::Str(lit) => Ok(lit.clone()),
        lit => Err(type_error(meta, lit, example, what)),
    }
}

/// `"10s"`, `"500 ms"`, `"2min"`: a whole number and a unit, in
/// nanoseconds; `None` for anything else (or more than `u64` nanoseconds,
/// 584 years).
fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

fn type_error(meta: &Meta, lit: &Lit, example: &str, what: &str) -> syn::Error {
    let name = key(meta).unwrap_or_default();
    syn::Error::new_spanned(lit, format!("`{name}` takes {what}, e.g. `{example}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every builder method of `Check` can be set from `check(...)` under
    /// its own name (the attribute could not set `weak_memory`, `oracle`,
    /// `coverage`, `max_time` or `max_poll_decisions`: an independent
    /// probe), and the attribute knows no method `Check` lacks. Read from
    /// the source, so a new method without its option fails here.
    #[test]
    fn every_check_method_is_an_option() {
        let source = include_str!("../../runtime/src/test_util/check.rs");
        let methods: Vec<&str> = source
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub fn "))
            .filter(|rest| rest.contains("(mut self"))
            .filter_map(|rest| rest.split('(').next())
            .collect();
        assert!(
            methods.len() > 10,
            "the builder methods were found: {methods:?}"
        );
        let options: Vec<&str> = INT_OPTIONS
            .iter()
            .chain(DURATION_OPTIONS)
            .chain(BOOL_OPTIONS)
            .copied()
            .chain(["policy"])
            .collect();
        for method in &methods {
            assert!(
                options.contains(method),
                "`Check::{method}` has no `check` option"
            );
        }
        for option in &options {
            assert!(methods.contains(option), "`{option}` is no `Check` method");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(10_000_000_000));
        assert_eq!(parse_duration(" 500 ms "), Some(500_000_000));
        assert_eq!(parse_duration("2min"), Some(120_000_000_000));
        assert_eq!(parse_duration("1h"), Some(3_600_000_000_000));
        assert_eq!(parse_duration("7us"), Some(7_000));
        assert_eq!(parse_duration("3ns"), Some(3));
        for bad in ["", "s", "10", "1.5s", "-1s", "10 parsecs", "99999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
