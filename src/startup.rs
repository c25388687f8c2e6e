//! Starting both servers from one `Settings`, on listeners the caller has bound: what
//! `cargo run` does, and what the end-to-end and browser tests do on port 0.

use std::net::TcpListener;

use actix_web::dev::Server;
use url::Url;

use crate::config::{DemoUser, Settings};
use crate::idp::IdpConfig;
use crate::{idp, intranet};

/// The intranet and Fabrikam ID, built and ready to run (await or spawn both servers).
pub struct Demo {
    pub intranet: Server,
    pub idp: Server,
    /// The intranet's public URL, e.g. `http://localhost:8080/`.
    pub intranet_url: Url,
    /// Fabrikam ID's issuer identifier, e.g. `http://localhost:9090`.
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
    let idp_config = IdpConfig::from_settings(s, idp_listener.local_addr()?, &intranet_url)?;
    let issuer = idp_config.issuer_id.clone();
    if s.oidc_issuer_url.is_none() {
        intranet_is_registered(&idp_config, &s.oidc_client_id, &intranet_url)?;
    }
    let mut intranet_config = s.intranet_config(intranet_url.clone(), issuer.clone());
    if s.oidc_issuer_url.is_none() {
        intranet_config.demo_users = demo_users(&idp_config);
    }
    Ok(Demo {
        idp: idp::build(idp_config.clone(), idp_listener).await?,
        intranet: intranet::build(intranet_config, intranet_listener).await?,
        intranet_url,
        issuer,
        idp_config,
    })
}

/// The embedded provider's users for the intranet's demo guide (the two servers still share
/// nothing at run time: this is configuration, handed over once at start).
fn demo_users(config: &IdpConfig) -> Vec<DemoUser> {
    use secrecy::SecretString;
    config
        .users
        .iter()
        .map(|u| DemoUser {
            username: u.username.clone(),
            name: u.name.clone().unwrap_or_else(|| u.username.clone()),
            roles: u.roles.clone(),
            documented_password: u.documented_password(),
            totp_secret: u.totp_secret.clone().map(SecretString::from),
        })
        .collect()
}

/// With the embedded provider, the intranet must be one of its clients, or no sign-in could
/// work: say so at start rather than at the first sign-in (an `IDP_CONFIG` file replaces the
/// default client unless it sets `include_default_client = true`).
fn intranet_is_registered(config: &IdpConfig, client_id: &str, public_url: &Url) -> anyhow::Result<()> {
    let callback = crate::config::with_trailing_slash(public_url).join("callback")?;
    match config.client(client_id) {
        Some(client) if client.has_redirect_uri(callback.as_str()) => Ok(()),
        found => {
            let origin = config.origin.as_deref().unwrap_or("Fabrikam ID's configuration");
            let problem = match found {
                Some(_) => format!("does not register the redirect URI {callback}"),
                None => "is not registered".to_owned(),
            };
            anyhow::bail!(
                "{origin}: the intranet's client {client_id:?} {problem}, so nobody could sign in to the \
                 demo; set include_default_client = true in the file (or register the client)"
            )
        }
    }
}
