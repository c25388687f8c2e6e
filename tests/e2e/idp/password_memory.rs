//! Memory under wrong passwords, measured on the real `fabrikam idp` process: argon2 runs on
//! buffers the provider owns and reuses (one per permit), so a burst of wrong passwords does not
//! leave a 19 MiB buffer behind in a malloc arena for each blocking thread that ran one
//! (issue 11: 38 MB → 1,030 MB after 100–200 wrong passwords; the same binary before the fix
//! grew by ~780 MiB in this test's 60 posts).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fabrikam::idp::{ClientRegistration, IdpConfig};
use secrecy::SecretString;
use url::Url;

use crate::support::*;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// VmHWM (peak resident memory) of `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib / 1024
}

#[tokio::test]
async fn sixty_wrong_passwords_leave_the_provider_within_a_buffer_per_core() {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_fabrikam"))
        .arg("idp")
        .env_clear()
        .env("IDP_ADDR", addr.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the fabrikam binary starts");
    let pid = child.id();
    let _process = Process(child);
    let config = IdpConfig::demo(
        fabrikam::config::url_for(addr),
        ClientRegistration::for_intranet(
            CLIENT_ID,
            SecretString::from(CLIENT_SECRET),
            &Url::parse("http://127.0.0.1:8080/").unwrap(),
        ),
    );
    let idp = TestIdp::new(config);
    let mut up = false;
    for _ in 0..200 {
        if idp
            .api
            .get(idp.url("/jwks"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "fabrikam idp answers");
    let before = peak_rss_mib(pid);

    // 60 wrong passwords, 12 at a time, each for its own name so that every one reaches argon2.
    let mut tasks = tokio::task::JoinSet::new();
    let idp = std::sync::Arc::new(idp);
    for batch in 0..5 {
        for i in 0..12 {
            let idp = std::sync::Arc::clone(&idp);
            tasks.spawn(async move {
                let browser = idp.browser();
                let (_, login) = idp.at_the_login_page(&browser, &[]).await;
                let again = browser
                    .submit_login(&login, &format!("sprayed-{batch}-{i}"), "not-the-password")
                    .await
                    .expect_page("/login");
                assert!(again.text().contains("do not match"), "{}", again.text());
            });
        }
        let batch_done = async {
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(60), batch_done)
            .await
            .expect("a batch of 12 ends within a minute");
    }
    let after = peak_rss_mib(pid);
    // argon2 (19 MiB a hash) runs at most once per core, each on a reused buffer: growth stays
    // within one buffer per core plus slack for everything else.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let bound = 20 * (cores + 2);
    assert!(
        after.saturating_sub(before) <= bound,
        "peak RSS grew from {before} MiB to {after} MiB (bound: {bound} MiB more)"
    );
}
