//! The Fabrikam intranet: the relying party.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::IntranetConfig;

/// Builds the intranet on an already-bound listener.
pub async fn build(config: IntranetConfig, listener: TcpListener) -> anyhow::Result<Server> {
    let _ = config;
    let server = HttpServer::new(|| App::new().route("/", web::get().to(|| async { "Fabrikam" })))
        .listen(listener)?
        .run();
    Ok(server)
}
