//! A fake identity provider (axum on 127.0.0.1) for SSO tests: an OpenID Connect IdP under
//! `/oidc` (discovery, JWKS, authorize, token, userinfo) issuing real RS256-signed ID tokens,
//! and GitHub's OAuth endpoints and REST API at the root (`/login/oauth/authorize`,
//! `/login/oauth/access_token`, `/user`, `/user/emails`). There is no UI: `authorize`
//! redirects straight back with a code. It checks what a strict IdP checks — client
//! credentials, `redirect_uri`, the PKCE verifier, single-use codes — records every token
//! request, and can be told to hand out a bad ID token next (tampered signature, wrong
//! audience, expired, wrong nonce), to announce another issuer, or to rotate its key.

mod github;
mod keys;
mod token;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use self::keys::SigningKey;

const CLIENT_ID: &str = "loquat-test-client";
const CLIENT_SECRET: &str = "fake-client-secret-9f3b";

/// The person who signs in. For the GitHub face, `subject` is the numeric user id (GitHub's
/// ids are numbers; a non-numeric subject shows as 583231).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

impl Default for FakeUser {
    fn default() -> Self {
        Self {
            subject: "1001".to_owned(),
            email: Some("ada@example.com".to_owned()),
            email_verified: true,
            name: Some("Ada Lovelace".to_owned()),
        }
    }
}

/// How the client authenticated at a token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form (`client_secret_post`; GitHub's way).
    Post,
    None,
}

/// One request to a token endpoint, as the fake saw it, and whether it issued tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `"oidc"` or `"github"`.
    pub flow: &'static str,
    pub client_auth: ClientAuth,
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    /// `None` when tokens were issued, else the OAuth error code answered.
    pub error: Option<String>,
}

/// A running fake IdP; stops when dropped.
pub struct FakeIdp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    base: String,
    keys: [SigningKey; 2],
    state: Mutex<IdpState>,
}

#[derive(Default)]
struct Bad {
    tampered: bool,
    wrong_audience: bool,
    expired: bool,
    wrong_nonce: bool,
}

struct IdpState {
    user: FakeUser,
    codes: HashMap<String, Grant>,
    spent_codes: HashSet<String>,
    access_tokens: HashMap<String, FakeUser>,
    next_bad: Bad,
    token_requests: Vec<TokenRequest>,
    discovery_requests: usize,
    jwks_requests: usize,
    discovery_issuer: Option<String>,
    auth_methods: Vec<String>,
    active_key: usize,
    email_in_id_token: bool,
    /// Extra claims every ID token carries (`groups`, `realm_access`…).
    extra_claims: serde_json::Map<String, serde_json::Value>,
    /// Claims only the userinfo endpoint answers with.
    userinfo_claims: serde_json::Map<String, serde_json::Value>,
}

/// What an authorization code stands for.
struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    user: FakeUser,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeIdp {
    /// Starts the fake on a free port of 127.0.0.1. Panics if it cannot listen.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(error) => panic!("the fake IdP could not start: {error}"),
        }
    }

    pub async fn try_start() -> io::Result<Self> {
        let keys = keys::load().map_err(io::Error::other)?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            keys,
            state: Mutex::new(IdpState {
                user: FakeUser::default(),
                codes: HashMap::new(),
                spent_codes: HashSet::new(),
                access_tokens: HashMap::new(),
                next_bad: Bad::default(),
                token_requests: Vec::new(),
                discovery_requests: 0,
                jwks_requests: 0,
                discovery_issuer: None,
                auth_methods: vec!["client_secret_basic".to_owned(), "client_secret_post".to_owned()],
                active_key: 0,
                email_in_id_token: true,
                extra_claims: serde_json::Map::new(),
                userinfo_claims: serde_json::Map::new(),
            }),
        });
        let app = Router::new()
            .route("/oidc/.well-known/openid-configuration", get(discovery))
            .route("/oidc/jwks", get(jwks))
            .route("/oidc/authorize", get(authorize))
            .route("/oidc/token", post(token::token))
            .route("/oidc/userinfo", get(userinfo))
            .merge(github::routes())
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the fake IdP stopped");
            }
        });
        Ok(Self { addr, shared, server })
    }

    /// `http://127.0.0.1:<port>/oidc`: configure it as the OIDC issuer.
    pub fn issuer(&self) -> String {
        format!("{}/oidc", self.shared.base)
    }

    /// `http://127.0.0.1:<port>`: GitHub's web and API base for the GitHub face.
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The only client the fake knows (both faces).
    pub fn client_id(&self) -> &'static str {
        CLIENT_ID
    }

    pub fn client_secret(&self) -> &'static str {
        CLIENT_SECRET
    }

    /// A claim every ID token carries from now on (`groups`: a directory's groups).
    pub fn set_claim(&self, name: &str, value: serde_json::Value) {
        lock(&self.shared.state).extra_claims.insert(name.to_owned(), value);
    }

    /// A claim only userinfo answers with (some IdPs leave groups out of ID tokens).
    pub fn set_userinfo_claim(&self, name: &str, value: serde_json::Value) {
        lock(&self.shared.state).userinfo_claims.insert(name.to_owned(), value);
    }

    /// Who signs in from now on (codes already issued keep their user).
    pub fn set_user(&self, user: FakeUser) {
        lock(&self.shared.state).user = user;
    }

    /// The next ID token gets one signature byte flipped.
    pub fn next_token_tampered(&self) {
        lock(&self.shared.state).next_bad.tampered = true;
    }

    /// The next ID token is for another client (`aud`).
    pub fn next_token_wrong_audience(&self) {
        lock(&self.shared.state).next_bad.wrong_audience = true;
    }

    /// The next ID token expired an hour ago.
    pub fn next_token_expired(&self) {
        lock(&self.shared.state).next_bad.expired = true;
    }

    /// The next ID token carries a nonce other than the one the login sent.
    pub fn next_token_wrong_nonce(&self) {
        lock(&self.shared.state).next_bad.wrong_nonce = true;
    }

    /// The discovery document announces this issuer instead of the real one (`None`: the real one).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        lock(&self.shared.state).discovery_issuer = issuer;
    }

    /// The client authentication methods announced and accepted at `/oidc/token` (default:
    /// `client_secret_basic` and `client_secret_post`).
    pub fn set_token_auth_methods(&self, methods: &[&str]) {
        lock(&self.shared.state).auth_methods = methods.iter().map(|method| (*method).to_owned()).collect();
    }

    /// Whether ID tokens carry `email`/`email_verified` (default true; else only userinfo has them).
    pub fn set_email_in_id_token(&self, included: bool) {
        lock(&self.shared.state).email_in_id_token = included;
    }

    /// Signs with the other key from now on, and publishes only that one in the JWKS.
    pub fn rotate_signing_key(&self) {
        let mut state = lock(&self.shared.state);
        state.active_key = 1 - state.active_key;
    }

    /// Every request to either token endpoint, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.state).token_requests.clone()
    }

    pub fn discovery_requests(&self) -> usize {
        lock(&self.shared.state).discovery_requests
    }

    pub fn jwks_requests(&self) -> usize {
        lock(&self.shared.state).jwks_requests
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let issuer = format!("{}/oidc", shared.base);
    let (announced, methods) = {
        let mut state = lock(&shared.state);
        state.discovery_requests += 1;
        (state.discovery_issuer.clone().unwrap_or_else(|| issuer.clone()), state.auth_methods.clone())
    };
    Json(json!({
        "issuer": announced,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let active = {
        let mut state = lock(&shared.state);
        state.jwks_requests += 1;
        state.active_key
    };
    Json(json!({ "keys": [shared.keys[active].jwk] }))
}

/// `GET /oidc/authorize`: no login page; straight back to `redirect_uri` with a code.
async fn authorize(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let param = |name: &str| query.get(name).cloned();
    if param("client_id").as_deref() != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    if param("response_type").as_deref() != Some("code")
        || !param("scope").is_some_and(|scope| scope.split(' ').any(|s| s == "openid"))
    {
        return redirect_error(&redirect_uri, "invalid_request", param("state").as_deref());
    }
    if param("code_challenge").is_some() && param("code_challenge_method").as_deref() != Some("S256") {
        return redirect_error(&redirect_uri, "invalid_request", param("state").as_deref());
    }
    let grant = Grant {
        client_id: CLIENT_ID.to_owned(),
        redirect_uri: redirect_uri.clone(),
        nonce: param("nonce"),
        code_challenge: param("code_challenge"),
        user: lock(&shared.state).user.clone(),
    };
    issue_code(&shared, grant, &redirect_uri, param("state").as_deref())
}

/// Remembers the grant under a fresh code and redirects back with it (and the `state`).
fn issue_code(shared: &Shared, grant: Grant, redirect_uri: &str, state: Option<&str>) -> Response {
    let code = uuid::Uuid::new_v4().simple().to_string();
    lock(&shared.state).codes.insert(code.clone(), grant);
    let mut params = vec![("code", code.as_str())];
    params.extend(state.map(|state| ("state", state)));
    redirect(redirect_uri, &params)
}

fn redirect_error(redirect_uri: &str, error: &str, state: Option<&str>) -> Response {
    let mut params = vec![("error", error)];
    params.extend(state.map(|state| ("state", state)));
    redirect(redirect_uri, &params)
}

fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let query: Vec<String> = params.iter().map(|(key, value)| format!("{key}={}", percent_encode(value))).collect();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{}", query.join("&"));
    (StatusCode::FOUND, [(LOCATION, location)]).into_response()
}

/// `GET /oidc/userinfo` with the access token as a Bearer token.
async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers, &["Bearer "]) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_token" }))).into_response();
    };
    let mut info = json!({
        "sub": user.subject,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
    });
    for (name, value) in &lock(&shared.state).userinfo_claims {
        info[name] = value.clone();
    }
    Json(info).into_response()
}

/// The user an access token was issued for, from `Authorization: <scheme><token>`.
fn bearer_user(shared: &Shared, headers: &HeaderMap, schemes: &[&str]) -> Option<FakeUser> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = schemes.iter().find_map(|scheme| value.strip_prefix(scheme))?;
    lock(&shared.state).access_tokens.get(token.trim()).cloned()
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
