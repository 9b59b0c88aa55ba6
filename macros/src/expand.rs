//! The expansion: the `async fn` becomes a plain `fn` whose body builds a
//! runtime and blocks on the original body, or hands a closure that makes
//! the body's future to the test toolkit's `Check`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::config::{Config, Kind};

/// Expands `#[waitrt::test]` or `#[waitrt::main]` (`kind`).
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item: ItemFn = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let what = match kind {
                Kind::Test => "`#[waitrt::test]` goes on an `async fn`",
                Kind::Main => "`#[waitrt::main]` goes on an `async fn`",
            };
            let error = syn::Error::new_spanned(&item, what).to_compile_error();
            return quote!(#error #item);
        }
    };
    let config = Config::parse(kind, args);
    let checked = check_fn(kind, &item);
    match (config, checked) {
        (Ok(config), Ok(())) => match config.check_calls() {
            Some(calls) => expand_check(&config, calls, item),
            None => expand_runtime(&config, item),
        },
        (config, checked) => {
            let mut errors = config.err();
            if let Err(error) = checked {
                match &mut errors {
                    Some(first) => first.combine(error),
                    None => errors = Some(error),
                }
            }
            let errors = errors.map(|e| e.to_compile_error());
            // Only the errors: the function itself would add more of its
            // own (an `async fn main`, an `async` test), except that a
            // binary still gets a `main` so that no "`main` not found"
            // error follows.
            let stand_in = (kind == Kind::Main && item.sig.ident == "main").then(|| {
                quote!(
                    fn main() {}
                )
            });
            quote!(#errors #stand_in)
        }
    }
}

/// The function the attribute sits on: `async`, no parameters, no
/// generics, and (for a test) no second test attribute.
fn check_fn(kind: Kind, item: &ItemFn) -> syn::Result<()> {
    let sig = &item.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "the `async` keyword is missing from the function declaration",
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            match kind {
                Kind::Test => "a test function takes no arguments",
                Kind::Main => "`main` takes no arguments",
            },
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "the function cannot be generic",
        ));
    }
    if kind == Kind::Test {
        for attr in &item.attrs {
            let path = attr.path();
            if path.is_ident("test") || path.segments.last().is_some_and(|s| s.ident == "test") {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "a second test attribute: `#[waitrt::test]` already makes this a test",
                ));
            }
        }
    }
    let mut errors = errors.into_iter();
    let Some(mut first) = errors.next() else {
        return Ok(());
    };
    errors.for_each(|e| first.combine(e));
    Err(first)
}

/// `#[test]` for a test, nothing for `main`.
fn test_attr(config: &Config) -> Option<TokenStream> {
    (config.kind == Kind::Test).then(|| quote!(#[::core::prelude::v1::test]))
}

/// Builds the runtime and blocks on the body: the body's output is the
/// function's.
fn expand_runtime(config: &Config, item: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = item;
    sig.asyncness = None;
    let test_attr = test_attr(config);
    let builder = config.builder();
    // `return` at the call site, so the output's type comes from the
    // signature (and `?` inside the body converts into it).
    let build = quote_spanned! {block.span()=>
        #builder
            .build()
            .expect("failed to build the runtime")
            .block_on(body)
    };
    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            let body = async #block;
            #[allow(clippy::needless_return, clippy::expect_used)]
            {
                return #build;
            }
        }
    }
}

/// Runs the body under `Check`: a closure makes a fresh future per seed.
/// The function returns `()`; a body that returns `Result<(), E>` fails
/// the run with its error.
fn expand_check(config: &Config, calls: TokenStream, item: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = item;
    sig.asyncness = None;
    let output = match std::mem::replace(&mut sig.output, ReturnType::Default) {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.into_token_stream(),
    };
    let test_attr = test_attr(config);
    let krate = config.krate();
    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            /// What a run makes of the body's output: `()` passes, `Err`
            /// fails the run.
            trait __CheckOutput {
                fn __check_output(self);
            }
            impl __CheckOutput for () {
                fn __check_output(self) {}
            }
            impl<E: ::core::fmt::Debug> __CheckOutput for ::core::result::Result<(), E> {
                fn __check_output(self) {
                    if let ::core::result::Result::Err(error) = self {
                        ::core::panic!("the test body returned Err({:?})", error);
                    }
                }
            }
            #krate::test_util::Check::new()
                #calls
                .run(|| async {
                    let body = async #block;
                    let output: #output = body.await;
                    __CheckOutput::__check_output(output);
                });
        }
    }
}
