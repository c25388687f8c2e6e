//! End-to-end tests: Fabrikam ID and the intranet on port 0, driven over HTTP.
