//! Fabrikam ID: a small but honest OpenID Provider (code flow, PKCE, RS256 and ES256, TOTP
//! step-up), configured in code or by an `IDP_CONFIG` file, and scriptable by tests.
//!
//! The modules form layers; each imports only those below it:
//!
//! 1. [`paths`], [`clock`], [`keys`], [`errors`], [`expiring`], [`passwords`] — URLs, the one
//!    clock, signing keys, errors, the bounded table of expiring records, argon2 on reused
//!    memory;
//! 2. [`config`] (clients, users, the `IDP_CONFIG` file), [`protocol`] (the pure authorize
//!    decision), [`directory`] (users, passwords, TOTP), [`throttle`] (password guesses, per
//!    name and per known browser), [`sessions`] (the server-side provider sessions), [`control`]
//!    (test control's state);
//! 3. [`state`] (what requests share), then [`backchannel`] (logout tokens to the clients of an
//!    ended session), [`session`] (the browser's cookies: the session id, the encrypted pending
//!    sign-in, the device cookie) and [`views`] (pages, redirects, the error page);
//! 4. one module per endpoint group: [`discovery`], [`authorize`], [`pages`] (login, second
//!    factor, enrolment), [`token`], [`userinfo`], [`logout`], [`test_control`];
//! 5. [`server`] (`build`: the routes, middleware and error handlers), and [`TestProvider`]
//!    (in [`testing`]) for test suites.

pub mod authorize;
pub mod backchannel;
pub mod config;
pub mod control;
pub mod directory;
pub mod discovery;
pub mod errors;
pub mod expiring;
pub mod keys;
pub mod logout;
pub mod pages;
pub mod passkey_pages;
pub mod passkeys;
pub mod passwords;
pub mod paths;
pub mod protocol;
pub mod server;
pub mod session;
pub mod sessions;
pub mod state;
pub mod test_control;
pub mod testing;
pub mod throttle;
pub mod token;
pub mod userinfo;
pub mod views;

pub use self::config::{
    ClientRegistration, ConfigError, ConfigFile, IdpConfig, IdpLimits, TokenAuthMethod, UserSpec,
};
pub use self::keys::{KeySource, SigningAlg};
pub use self::server::build;
pub use self::testing::{TestProvider, TestProviderBuilder};
