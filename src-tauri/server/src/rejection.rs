//! Every error this server answers has Anthropic's shape, those of the framework too:
//! extractors that reject a query string, a path or a JSON body say why in an
//! `invalid_request_error`, a wrong method is a `405` with a message, and
//! [`super::serve`] gives hyper's own parse errors a body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use pai_core::wire::ApiError;

/// The HTTP form of the core's errors (which are data): a status and Anthropic's error
/// body, marked `x-pai-error: proxy` so a client can tell the proxy's own answers.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        HttpError(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.0.status, axum::Json(self.0.body())).into_response();
        response
            .headers_mut()
            .insert("x-pai-error", HeaderValue::from_static("proxy"));
        response
    }
}

/// `error` as a response.
pub fn error_response(error: ApiError) -> Response {
    HttpError(error).into_response()
}

/// A JSON body; a bad one is an `invalid_request_error`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(HttpError))]
pub struct Json<T>(pub T);

/// A query string; a bad one is an `invalid_request_error`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(HttpError))]
pub struct Query<T>(pub T);

/// Path parameters; bad ones are an `invalid_request_error`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(HttpError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for HttpError {
    fn from(rejection: JsonRejection) -> Self {
        HttpError(ApiError::new(
            rejection.status(),
            pai_core::wire::error::error_type(rejection.status().as_u16()),
            rejection.body_text(),
        ))
    }
}

impl From<QueryRejection> for HttpError {
    fn from(rejection: QueryRejection) -> Self {
        HttpError(ApiError::invalid_request(rejection.body_text()))
    }
}

impl From<PathRejection> for HttpError {
    fn from(rejection: PathRejection) -> Self {
        HttpError(ApiError::invalid_request(rejection.body_text()))
    }
}

/// A known path with a method it does not take.
pub async fn method_not_allowed(request: Request) -> Response {
    error_response(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!(
            "{} is not a method {} takes",
            request.method(),
            request.uri().path()
        ),
    ))
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
