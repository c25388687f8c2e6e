//! End-to-end tests: Fabrikam ID and the intranet on port 0, driven over HTTP.
//!
//! One test binary with modules (it links once): `support` starts servers and drives a
//! cookie-keeping browser through the OIDC dance; each other module tests one server.

mod idp;
mod support;
