//! `GET /healthz` (liveness: the process answers; nothing else is asked) and `GET /readyz`
//! (readiness: the database, the session store and the provider, each asked with a short
//! deadline, all at once; `503` when one is down, with a JSON body naming each).

use crate::web::JsonLine;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::state::AppState;

/// How long each readiness check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// `/healthz`: liveness. Asks no dependency.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json_line(json!({"status": "ok"}))
}

/// `/readyz`: `{"status": "ready" | "unavailable", "checks": {"database": {...},
/// "session_store": {...}, "provider": {...}}}`, each check `{"status": "up" | "down"}` with
/// an `error` when down (the session store also says its `kind`, `cookie` or `redis`).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = async { state.db.probe(CHECK_TIMEOUT).await };
    let session_store = async {
        match &state.redis {
            Some(redis) => redis.ping(CHECK_TIMEOUT).await,
            // The cookie store needs nothing but the database (for ended logins), checked above.
            None => Ok(()),
        }
    };
    let provider = state.oidc.probe(CHECK_TIMEOUT);
    let (database, session_store, provider) = tokio::join!(database, session_store, provider);
    let ready = database.is_ok() && session_store.is_ok() && provider.is_ok();
    let mut session_store = check(session_store);
    session_store["kind"] = json!(state.store.as_str());
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {
            "database": check(database),
            "session_store": session_store,
            "provider": check(provider),
        },
    });
    if ready {
        HttpResponse::Ok().json_line(body)
    } else {
        HttpResponse::ServiceUnavailable().json_line(body)
    }
}

fn check(result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"status": "up"}),
        Err(error) => json!({"status": "down", "error": error}),
    }
}
