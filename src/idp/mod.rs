//! Fabrikam ID: a small but honest OpenID Provider.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::IdpConfig;

/// Builds Fabrikam ID on an already-bound listener (port 0 works; read the port back from it).
pub async fn build(config: IdpConfig, listener: TcpListener) -> anyhow::Result<Server> {
    let _ = config;
    let server = HttpServer::new(|| App::new().route("/", web::get().to(|| async { "Fabrikam ID" })))
        .listen(listener)?
        .run();
    Ok(server)
}
