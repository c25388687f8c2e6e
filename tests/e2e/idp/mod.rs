//! Fabrikam ID end to end, one file per endpoint or concern: a relying party's view over
//! HTTP, with tokens verified by the `openidconnect` crate. The journeys (`login`, `step_up`,
//! `at_the_code_page`, ...) are `support::TestIdp`'s.

mod authorize;
mod backchannel;
mod config;
mod discovery;
mod issuer_path;
mod login_pages;
mod logout;
mod passkeys;
mod password_memory;
mod sdk;
mod sessions;
mod signing;
mod test_control;
mod test_provider;
mod testing_doc;
mod throttle;
mod token;
mod userinfo;
mod ways_out;
