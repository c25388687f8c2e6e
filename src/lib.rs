//! Fabrikam: step-up authentication in Rust.
//!
//! - [`intranet`]: the relying party, an actix-web site whose salary pages demand a fresh
//!   multi-factor login, checked from the ID token's `acr`, `amr` and `auth_time`.
//! - [`idp`]: Fabrikam ID, a small but honest OpenID Provider used by the demo and the tests.
//!
//! The two never import each other: they speak only HTTP, as a real RP and OP do. What both
//! need lives in [`web`], [`config`] and [`clock`].

pub mod clock;
pub mod config;
pub mod idp;
pub mod intranet;
pub mod startup;
pub mod telemetry;
pub mod web;
