//! The load benchmark's baseline: a bare actix-web server with one handler that returns a
//! fixed HTML page, no middleware. `scripts/load.sh` starts it beside Fabrikam in the same
//! run, with a page as large as the salary page, and prints every page's throughput as a
//! ratio to it (these machines are shared: compare ratios, not requests per second).
//!
//! ```sh
//! BARE_ADDR=127.0.0.1:0 BARE_BYTES=930 cargo run --release --example bare
//! ```
//!
//! Prints `listening on <addr>` once bound.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("BARE_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    let bytes: usize = std::env::var("BARE_BYTES")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(930);
    let body = web::Bytes::from(page(bytes));
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/",
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(body)
                }
            }),
        )
    })
    .listen(listener)?
    .run()
    .await
}

/// An HTML page of exactly `bytes` bytes (at least the skeleton's length).
fn page(bytes: usize) -> String {
    let head = "<!doctype html><html><head><title>bare</title></head><body><p>";
    let tail = "</p></body></html>\n";
    let filler = bytes.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(filler))
}
