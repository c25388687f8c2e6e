//! End-to-end tests: Fabrikam ID and the intranet on port 0 in this process, driven over HTTP
//! with a cookie-keeping client, as a browser would.
//!
//! One test binary with modules (it links once): `support` starts Fabrikam ID alone and acts
//! as a relying party; `app` starts both servers and acts as a browser on the intranet, and
//! `scenarios` adds one helper per user journey; `intranet/` has a file per journey.

mod app;
mod audit;
mod audit_load;
mod authenticator;
mod html;
mod idp;
pub mod intranet;
mod logs;
mod redis;
mod scenarios;
mod stepup_example;
mod stub_provider;
mod support;
mod tutorial;
