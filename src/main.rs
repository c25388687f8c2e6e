//! The `fabrikam` binary: parse settings, bind, run. Everything else lives in the library.

use std::net::TcpListener;

use anyhow::Context;
use clap::Parser;
use fabrikam::config::{Cli, Command, Settings};
use fabrikam::{idp, intranet, startup, telemetry};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    return_large_blocks_to_the_system();
    // Kept to the end of main: dropping it writes the lines still queued.
    let _log = telemetry::init();
    let cli = Cli::parse();
    let s = cli.settings;
    match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => demo(s).await,
        Command::Intranet => {
            let listener = bind(s.fabrikam_addr, "intranet")?;
            let public = s.intranet_public_url(listener.local_addr()?);
            let issuer = s.idp_issuer_id(s.idp_addr);
            let config = s.intranet_config(public.clone(), issuer);
            println!("Fabrikam intranet: {public}  (provider: {})", config.issuer_url);
            intranet::build(config, listener).await?.await?;
            Ok(())
        }
        Command::Idp => {
            let listener = bind(s.idp_addr, "Fabrikam ID")?;
            let public = s.intranet_public_url(s.fabrikam_addr);
            let config = idp::IdpConfig::from_settings(&s, listener.local_addr()?, &public)?;
            let clients: Vec<&str> = config.clients.iter().map(|c| c.client_id.as_str()).collect();
            println!(
                "Fabrikam ID: {}  (clients: {}; users: {})",
                config.issuer_id,
                clients.join(", "),
                config.users.len()
            );
            idp::build(config, listener).await?.await?;
            Ok(())
        }
    }
}

/// Both servers in one process, as a newcomer runs them with `cargo run`.
async fn demo(s: Settings) -> anyhow::Result<()> {
    let intranet_listener = bind(s.fabrikam_addr, "intranet")?;
    let idp_listener = bind(s.idp_addr, "Fabrikam ID")?;
    let demo = startup::demo(&s, intranet_listener, idp_listener).await?;
    let (public, issuer) = (&demo.intranet_url, &demo.issuer);
    let logins = match &demo.idp_config.origin {
        None => "Demo logins (password = user name + \"-password\"):\n\
                 \x20 alice  role hr     TOTP secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\
                 \x20 bob    role sales  TOTP secret KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU\n\
                 \x20 carol  role hr     no second factor yet: enrolls one at her first step-up"
            .to_owned(),
        Some(file) => {
            let users: Vec<&str> = demo
                .idp_config
                .users
                .iter()
                .map(|u| u.username.as_str())
                .collect();
            format!("Users from {file}: {}", users.join(", "))
        }
    };
    println!(
        "\n  Fabrikam intranet  {public}\n  Fabrikam ID        {issuer}\n\n{logins}\n\n\
         Open {public} and sign in; salary pages ask for the authenticator code.\n"
    );
    tokio::try_join!(demo.idp, demo.intranet)?;
    Ok(())
}

fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("cannot bind the {what} to {addr}"))
}

/// Makes glibc serve every block of 4 MiB or more with its own mapping, unmapped when freed.
/// Fabrikam ID's argon2 buffers (19 MiB each) are dropped after an idle spell
/// (`idp::passwords`); without this, glibc raises its mmap threshold after the first such free
/// (its dynamic threshold, `mallopt(3)`) and keeps later buffers in its arenas for good.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt takes no pointer and only sets a malloc parameter; it is called first
    // in main, before the workers and the log thread exist. 4 MiB is within the range
    // mallopt(3) documents for 64-bit (on 32-bit it refuses, and the warning says so).
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20) };
    if set != 1 {
        eprintln!(
            "warning: could not fix glibc's mmap threshold: idle argon2 memory may stay in the process"
        );
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}
