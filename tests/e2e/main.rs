//! End-to-end tests: Fabrikam ID and the intranet on port 0 in this process, driven over HTTP
//! with a cookie-keeping client, as a browser would.

mod app;
mod audit;
mod intranet;
