//! `GET /report` needs role `hr` and a multi-factor login at most 5 minutes old, read from RFC 9068
//! access tokens of Fabrikam ID (`cargo run` at the repository root); a weaker token gets RFC 9470's
//! 401 challenge. Run: `cargo run -p actix-web-stepup --example bearer_api` (`OIDC_ISSUER_URL`,
//! `ADDR`); tokens: `docs/tutorial.md` §9. Not done, to stay short: refetching the keys (rate-limited)
//! on an unknown `kid` after a key rotation; checking `scope`, `client_id` or revocation; requiring https.

use actix_web::{App, Error, HttpRequest, HttpResponse, HttpServer, error::InternalError, web};
use actix_web_stepup::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use serde_json::{Map, Value};

struct Report;
impl Protected for Report {
    const NAME: &'static str = "report";
}

/// The issuer (the one discovery names: OpenID Connect Discovery §4.3) and its keys.
struct Api(String, JwkSet);

impl StepUpApp for Api {
    fn current_auth<'a>(&'a self, req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
        let value = req.headers().get("authorization").and_then(|v| v.to_str().ok());
        // RFC 6750 §2.1 (the scheme in any case); another scheme is no token at all (§3.1).
        let token = value.filter(|v| v.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("bearer ")));
        let login = token.map(|t| self.validate(t[7..].trim()));
        Box::pin(async move { login.map(|l| l.ok_or_else(invalid_token)).transpose() })
    }
}

impl Api {
    /// RFC 9068 §4: `typ` (in any case, `application/` optional), `alg`, signature, `iss`, `aud`, `exp`.
    fn validate(&self, token: &str) -> Option<AuthState> {
        let header = decode_header(token).ok()?;
        let typ = header.typ.map(|t| t.to_ascii_lowercase());
        let asymmetric = matches!(header.alg, Algorithm::RS256 | Algorithm::ES256 | Algorithm::PS256);
        if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) || !asymmetric {
            return None;
        }
        let key = DecodingKey::from_jwk(self.1.find(header.kid.as_deref()?)?).ok()?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.0]);
        validation.set_audience(&["fabrikam-api"]);
        let claims = decode::<Map<String, Value>>(token, &key, &validation).ok()?;
        AuthState::from_claims(&claims.claims, "roles", self.now()).ok()
    }
}

fn invalid_token() -> Error {
    let challenge = ("WWW-Authenticate", r#"Bearer error="invalid_token""#);
    let res = HttpResponse::Unauthorized().insert_header(challenge).finish();
    InternalError::from_response("invalid token", res).into()
}

async fn report(access: StepUp<Report>) -> String {
    format!("Quarterly report for {}\n", access.user().display_name())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("OIDC_ISSUER_URL").unwrap_or_else(|_| "http://localhost:9090".into());
    let url = issuer.trim_end_matches('/').to_owned() + "/.well-known/openid-configuration";
    let discovery: Value = reqwest::get(&url).await?.json().await?;
    if discovery["issuer"] != issuer.as_str() {
        return Err(format!("{url} has issuer {}, not {issuer:?}", discovery["issuer"]).into());
    }
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or("no jwks_uri")?;
    let keys = reqwest::get(jwks_uri).await?.json().await?;
    let needs = Requirement::builder("report").profile(Profile::Custom).role("hr");
    let requirements =
        Requirements::new().with(needs.max_age(std::time::Duration::from_secs(300)).build()?)?;
    let (requirements, api) = (web::Data::new(requirements), Api(issuer, keys).into_app_data());
    let server = HttpServer::new(move || {
        let app = App::new().app_data(requirements.clone()).app_data(api.clone());
        app.route("/report", web::get().to(report))
    });
    let server = server.bind(std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8081".into()))?;
    println!("listening on http://{}/report", server.addrs()[0]);
    Ok(server.run().await?)
}
