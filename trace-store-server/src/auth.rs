//! Bearer-token authentication for every protected route.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::{ApiError, Kind};

/// Lets the request through when no token is configured or the request carries
/// `Authorization: Bearer <token>`; otherwise answers 401.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.options.token.as_deref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(credentials.trim())
        });
    match presented {
        // Constant time, so response timing reveals nothing of the token.
        Some(presented) if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => unauthorized("the bearer token is wrong"),
        None => unauthorized("this server requires `Authorization: Bearer <token>`"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(Kind::Unauthorized, message).into_response();
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}
