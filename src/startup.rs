//! Starting both servers from one `Settings`, on listeners the caller has bound: what
//! `cargo run` does, and what the end-to-end and browser tests do on port 0.

use std::net::TcpListener;

use actix_web::dev::Server;
use url::Url;

use crate::config::{IdpConfig, Settings, issuer_id};
use crate::{idp, intranet};

/// The intranet and Fabrikam ID, built and ready to run (await or spawn both servers).
pub struct Demo {
    pub intranet: Server,
    pub idp: Server,
    /// The intranet's public URL, e.g. `http://127.0.0.1:8080/`.
    pub intranet_url: Url,
    /// Fabrikam ID's issuer identifier, e.g. `http://127.0.0.1:9090`.
    pub issuer: String,
    /// The configuration Fabrikam ID was built with (its clients, for test helpers).
    pub idp_config: IdpConfig,
}

/// Builds Fabrikam ID with the intranet registered as its client, and the intranet against
/// it (or against `OIDC_ISSUER_URL` when that is set).
pub async fn demo(
    s: &Settings,
    intranet_listener: TcpListener,
    idp_listener: TcpListener,
) -> anyhow::Result<Demo> {
    let intranet_url = s.intranet_public_url(intranet_listener.local_addr()?);
    let idp_config = s.idp_config(idp_listener.local_addr()?, &intranet_url);
    let issuer = issuer_id(&idp_config.issuer);
    let intranet_config = s.intranet_config(intranet_url.clone(), issuer.clone());
    Ok(Demo {
        idp: idp::build(idp_config.clone(), idp_listener).await?,
        intranet: intranet::build(intranet_config, intranet_listener).await?,
        intranet_url,
        issuer,
        idp_config,
    })
}
