//! `Form`: axum's form extractor, with a body that does not parse (a number that is not one, a
//! value of the wrong type) answered as a 400 in the visitor's language and the page's or
//! script's flavour, like every other error.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::context::{browser_locale_of, flavor_of};
use crate::error::WebError;
use crate::i18n::Tr;

/// A form body deserialized into `T`.
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let tr = Tr::new(browser_locale_of(request.headers()));
        let flavor = flavor_of(request.headers(), request.uri());
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => {
                // Too large stays 413; anything else about the body is the client's mistake.
                let status = match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                let message = tr.t_with("error.bad_form", "detail", &rejection.body_text());
                Err(WebError { status, message, flavor, tr, redirect: None })
            }
        }
    }
}
